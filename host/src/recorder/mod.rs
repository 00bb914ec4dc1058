//! Kubernetes Events recorded by plugins: validated at the call, queued, and posted to
//! `events.k8s.io/v1` by one background task, so a guest never waits on the API server.
//!
//! ## RBAC
//!
//! The host's service account needs:
//!
//! ```yaml
//! - apiGroups: ["events.k8s.io"]
//!   resources: ["events"]
//!   verbs: ["create", "patch"]
//! ```

mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::object::ReconciledObject;
pub(crate) use validate::{InvalidEvent, is_dns1123_label};

/// The `action` of every Event: events.k8s.io/v1 requires one, and the contract's Event /
/// Eventf / AnnotatedEventf (like client-go's `tools/record`) has none, so it names what the
/// reporting controller was doing.
const ACTION: &str = "Reconcile";
/// Longest `reportingInstance` the API accepts.
const MAX_REPORTING_INSTANCE: usize = 128;
/// Where events about cluster-scoped objects go, as in client-go.
const CLUSTER_SCOPED_EVENT_NAMESPACE: &str = "default";
/// How often a transport failure is retried before the event is given up.
const MAX_ATTEMPTS: u32 = 12;
/// Pause between attempts, before jitter.
const RETRY_INTERVAL: Duration = Duration::from_secs(10);

/// Event severity, as in `corev1.EventTypeNormal` / `corev1.EventTypeWarning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One validated event, waiting for delivery.
#[derive(Debug, Clone)]
struct PendingEvent {
    reporting_controller: Arc<str>,
    regarding: Arc<ReconciledObject>,
    event_type: EventType,
    reason: String,
    message: String,
    annotations: BTreeMap<String, String>,
    time: Timestamp,
}

/// Why an event was not queued.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordError {
    /// The event itself is invalid.
    #[error(transparent)]
    Invalid(#[from] InvalidEvent),
    /// The delivery queue is full; the event is counted and dropped.
    #[error("event queue is full ({0} pending); event dropped")]
    QueueFull(usize),
    /// The recorder has shut down.
    #[error("event recorder has shut down")]
    Closed,
}

/// Recorder settings.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    queue_capacity: usize,
    host_name: String,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 1000,
            host_name: default_host_name(),
        }
    }
}

impl RecorderConfig {
    /// How many events may wait for delivery (default 1000). Past it, events are dropped and
    /// counted, never waited on.
    #[must_use]
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// The host's name in `reportingInstance` (default: `POD_NAME`, `HOSTNAME`, or the kernel's
    /// host name).
    #[must_use]
    pub fn host_name(mut self, name: impl Into<String>) -> Self {
        self.host_name = name.into();
        self
    }
}

fn default_host_name() -> String {
    std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "wasm-reconciler".to_owned())
}

/// A handle that queues events for delivery. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Recorder {
    queue: mpsc::Sender<PendingEvent>,
    capacity: usize,
}

impl Recorder {
    /// Starts the delivery task and returns the handle plus the task to await on shutdown.
    pub(crate) fn start(client: kube::Client, config: RecorderConfig) -> (Self, RecorderTask) {
        let (queue, pending) = mpsc::channel(config.queue_capacity);
        let task = tokio::spawn(deliver(client, pending, Arc::from(config.host_name)));
        (
            Self {
                queue,
                capacity: config.queue_capacity,
            },
            RecorderTask { task },
        )
    }

    /// Validates an event about `regarding` and queues it. Never waits.
    pub(crate) fn record(
        &self,
        reporting_controller: &Arc<str>,
        regarding: &Arc<ReconciledObject>,
        event_type: EventType,
        reason: String,
        message: String,
        annotations: Vec<(String, String)>,
    ) -> Result<(), RecordError> {
        validate::validate_reason(&reason)?;
        let annotations = validate::validate_annotations(annotations)?;
        let event = PendingEvent {
            reporting_controller: reporting_controller.clone(),
            regarding: regarding.clone(),
            event_type,
            reason,
            message: validate::truncate_message(message),
            annotations,
            time: Timestamp::now(),
        };
        self.queue.try_send(event).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => RecordError::QueueFull(self.capacity),
            mpsc::error::TrySendError::Closed(_) => RecordError::Closed,
        })
    }
}

/// The delivery task. It ends once every [`Recorder`] is dropped and the queue is drained.
pub(crate) struct RecorderTask {
    task: JoinHandle<()>,
}

impl RecorderTask {
    /// Waits for the queue to drain, at most `grace`; what is left after it is dropped.
    pub(crate) async fn flush(self, grace: Duration) {
        let abort = self.task.abort_handle();
        if tokio::time::timeout(grace, self.task).await.is_err() {
            tracing::warn!(?grace, "event queue not drained within the grace period");
            abort.abort();
        }
    }
}

async fn deliver(client: kube::Client, mut pending: mpsc::Receiver<PendingEvent>, host: Arc<str>) {
    while let Some(event) = pending.recv().await {
        let namespace = event
            .regarding
            .namespace
            .clone()
            .unwrap_or_else(|| CLUSTER_SCOPED_EVENT_NAMESPACE.to_owned());
        let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
        let body = to_event(&event, &namespace, &host);
        post_with_retries(&api, &body, &event).await;
    }
}

async fn post_with_retries(api: &Api<Event>, body: &Event, event: &PendingEvent) {
    for attempt in 1..=MAX_ATTEMPTS {
        match api.create(&PostParams::default(), body).await {
            Ok(_) => {
                tracing::debug!(reason = %event.reason, object = %event.regarding.name, "event posted");
                return;
            }
            // A 4xx will be answered the same way next time.
            Err(kube::Error::Api(status)) if (400..500).contains(&status.code) => {
                tracing::warn!(reason = %event.reason, object = %event.regarding.name, error = %status, "event refused by the API server; dropped");
                return;
            }
            Err(error) if attempt < MAX_ATTEMPTS => {
                tracing::warn!(attempt, %error, "event delivery failed; retrying");
                tokio::time::sleep(with_jitter(RETRY_INTERVAL, attempt)).await;
            }
            Err(error) => {
                tracing::error!(reason = %event.reason, object = %event.regarding.name, %error, "event dropped after {MAX_ATTEMPTS} attempts");
            }
        }
    }
}

/// Spreads retries so that many recorders failing together do not retry together.
fn with_jitter(base: Duration, attempt: u32) -> Duration {
    let nanos = Timestamp::now().subsec_nanosecond().unsigned_abs();
    let spread = (u64::from(nanos) ^ u64::from(attempt).wrapping_mul(0x9e37_79b9)) % 1000;
    base + Duration::from_millis(spread)
}

fn to_event(event: &PendingEvent, namespace: &str, host: &str) -> Event {
    let regarding = &event.regarding;
    let nanos = event.time.as_nanosecond();
    Event {
        metadata: ObjectMeta {
            // client-go names events `<object>.<unix nanos in hex>`.
            name: Some(format!("{}.{:x}", regarding.name, nanos)),
            namespace: Some(namespace.to_owned()),
            annotations: (!event.annotations.is_empty()).then(|| event.annotations.clone()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(event.time)),
        action: Some(ACTION.to_owned()),
        reason: Some(event.reason.clone()),
        note: Some(event.message.clone()),
        type_: Some(event.event_type.as_str().to_owned()),
        regarding: Some(ObjectReference {
            api_version: Some(regarding.api_version.clone()),
            kind: Some(regarding.kind.clone()),
            namespace: regarding.namespace.clone(),
            name: Some(regarding.name.clone()),
            uid: Some(regarding.uid.clone()),
            resource_version: regarding.resource_version.clone(),
            field_path: None,
        }),
        reporting_controller: Some(event.reporting_controller.to_string()),
        reporting_instance: Some(reporting_instance(&event.reporting_controller, host)),
        ..Event::default()
    }
}

/// `<plugin>-<host>`, cut to what the API accepts.
fn reporting_instance(plugin: &str, host: &str) -> String {
    let mut instance = format!("{plugin}-{host}");
    if instance.len() > MAX_REPORTING_INSTANCE {
        let mut end = MAX_REPORTING_INSTANCE;
        while !instance.is_char_boundary(end) {
            end -= 1;
        }
        instance.truncate(end);
    }
    instance
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(namespace: Option<&str>) -> Arc<ReconciledObject> {
        Arc::new(ReconciledObject {
            api_version: "mygroup.example.com/v1alpha1".into(),
            kind: "MyResource".into(),
            namespace: namespace.map(str::to_owned),
            name: "demo".into(),
            uid: "1234".into(),
            resource_version: Some("7".into()),
        })
    }

    #[test]
    fn event_is_about_the_reconciled_object_and_names_the_plugin() {
        let pending = PendingEvent {
            reporting_controller: Arc::from("myresource"),
            regarding: object(Some("team-a")),
            event_type: EventType::Normal,
            reason: "Created".into(),
            message: "Created deployment demo".into(),
            annotations: BTreeMap::from([("example.com/k".into(), "v".into())]),
            time: Timestamp::now(),
        };
        let event = to_event(&pending, "team-a", "host-1");
        let regarding = event.regarding.expect("regarding is set");
        assert_eq!(regarding.uid.as_deref(), Some("1234"));
        assert_eq!(regarding.namespace.as_deref(), Some("team-a"));
        assert_eq!(event.reporting_controller.as_deref(), Some("myresource"));
        assert_eq!(
            event.reporting_instance.as_deref(),
            Some("myresource-host-1")
        );
        assert_eq!(event.type_.as_deref(), Some("Normal"));
        assert_eq!(event.action.as_deref(), Some(ACTION));
        assert!(event.metadata.name.is_some_and(|n| n.starts_with("demo.")));
        assert_eq!(event.metadata.annotations.map(|a| a.len()), Some(1));
    }

    #[test]
    fn reporting_instance_is_cut_to_128_bytes() {
        let instance = reporting_instance("plugin", &"h".repeat(300));
        assert_eq!(instance.len(), MAX_REPORTING_INSTANCE);
    }
}
