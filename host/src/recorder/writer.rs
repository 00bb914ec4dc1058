//! Writes Events to the API server: `events.k8s.io/v1` (the default), or `core/v1` for
//! clusters without it, with the same series semantics expressed in each API's fields.

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::events::v1 as events;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::correlator::{Write, WriteResult};

/// The `action` of every events.k8s.io Event: the API requires one, and the contract's Event /
/// Eventf / AnnotatedEventf (like client-go's `tools/record`) has none, so it names what the
/// reporting controller was doing.
pub(crate) const ACTION: &str = "Reconcile";
/// Longest `reportingInstance` the API accepts.
const MAX_REPORTING_INSTANCE: usize = 128;
/// Where events about cluster-scoped objects go, as in client-go.
pub(crate) const CLUSTER_SCOPED_EVENT_NAMESPACE: &str = "default";

/// Which Events API to write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EventsApi {
    /// `events.k8s.io/v1`: series as `series.count` / `series.lastObservedTime`.
    #[default]
    EventsV1,
    /// `core/v1`: series as `count` / `firstTimestamp` / `lastTimestamp`.
    CoreV1,
}

/// Performs the correlator's writes.
pub(crate) struct Writer {
    client: kube::Client,
    api: EventsApi,
    host: String,
}

impl Writer {
    pub(crate) fn new(client: kube::Client, api: EventsApi, host: String) -> Self {
        Self { client, api, host }
    }

    pub(crate) async fn write(&self, write: &Write) -> WriteResult {
        let namespace = namespace_of(write);
        let result = match (self.api, write.create) {
            (EventsApi::EventsV1, true) => {
                let api: Api<events::Event> = Api::namespaced(self.client.clone(), namespace);
                api.create(
                    &PostParams::default(),
                    &events_v1(write, namespace, &self.host),
                )
                .await
                .map(drop)
            }
            (EventsApi::EventsV1, false) => {
                let api: Api<events::Event> = Api::namespaced(self.client.clone(), namespace);
                let patch = json!({"series": {
                    "count": write.count,
                    "lastObservedTime": MicroTime(write.last_time),
                }});
                api.patch(&write.name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .map(drop)
            }
            (EventsApi::CoreV1, true) => {
                let api: Api<core::Event> = Api::namespaced(self.client.clone(), namespace);
                api.create(
                    &PostParams::default(),
                    &core_v1(write, namespace, &self.host),
                )
                .await
                .map(drop)
            }
            (EventsApi::CoreV1, false) => {
                let api: Api<core::Event> = Api::namespaced(self.client.clone(), namespace);
                let patch = json!({
                    "count": write.count,
                    "lastTimestamp": Time(write.last_time),
                });
                api.patch(&write.name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .map(drop)
            }
        };
        match result {
            Ok(()) => WriteResult::Written,
            Err(kube::Error::Api(status)) if status.code == 404 && !write.create => {
                WriteResult::NotFound
            }
            Err(kube::Error::Api(status))
                if (400..500).contains(&status.code) && status.code != 429 =>
            {
                tracing::warn!(event = %write.name, reason = %write.first.reason, error = %status, "event refused by the API server");
                WriteResult::Rejected
            }
            Err(error) => {
                tracing::debug!(event = %write.name, %error, "event write failed; will retry");
                WriteResult::Failed
            }
        }
    }
}

fn events_v1(write: &Write, namespace: &str, host: &str) -> events::Event {
    let first = &write.first;
    events::Event {
        metadata: metadata(write, namespace),
        event_time: Some(MicroTime(first.time)),
        series: (write.count >= 2).then(|| events::EventSeries {
            count: i32::try_from(write.count).unwrap_or(i32::MAX),
            last_observed_time: MicroTime(write.last_time),
        }),
        action: Some(ACTION.to_owned()),
        reason: Some(first.reason.clone()),
        note: Some(write.note.clone()),
        type_: Some(first.event_type.as_str().to_owned()),
        regarding: Some(object_reference(write)),
        reporting_controller: Some(first.plugin.to_string()),
        reporting_instance: Some(reporting_instance(&first.plugin, host)),
        ..events::Event::default()
    }
}

fn core_v1(write: &Write, namespace: &str, host: &str) -> core::Event {
    let first = &write.first;
    core::Event {
        metadata: metadata(write, namespace),
        involved_object: object_reference(write),
        reason: Some(first.reason.clone()),
        message: Some(write.note.clone()),
        type_: Some(first.event_type.as_str().to_owned()),
        count: Some(i32::try_from(write.count).unwrap_or(i32::MAX)),
        first_timestamp: Some(Time(first.time)),
        last_timestamp: Some(Time(write.last_time)),
        source: Some(core::EventSource {
            component: Some(first.plugin.to_string()),
            host: Some(host.to_owned()),
        }),
        reporting_component: Some(first.plugin.to_string()),
        reporting_instance: Some(reporting_instance(&first.plugin, host)),
        action: Some(ACTION.to_owned()),
        ..core::Event::default()
    }
}

fn namespace_of(write: &Write) -> &str {
    write
        .first
        .regarding
        .namespace
        .as_deref()
        .unwrap_or(CLUSTER_SCOPED_EVENT_NAMESPACE)
}

fn metadata(write: &Write, namespace: &str) -> ObjectMeta {
    let annotations = &write.first.annotations;
    ObjectMeta {
        name: Some(write.name.clone()),
        namespace: Some(namespace.to_owned()),
        annotations: (!annotations.is_empty()).then(|| annotations.clone()),
        ..ObjectMeta::default()
    }
}

fn object_reference(write: &Write) -> core::ObjectReference {
    let regarding = &write.first.regarding;
    core::ObjectReference {
        api_version: Some(regarding.api_version.clone()),
        kind: Some(regarding.kind.clone()),
        namespace: regarding.namespace.clone(),
        name: Some(regarding.name.clone()),
        uid: Some(regarding.uid.clone()),
        resource_version: regarding.resource_version.clone(),
        field_path: None,
    }
}

/// `<plugin>-<host>`, cut to what the API accepts.
pub(crate) fn reporting_instance(plugin: &str, host: &str) -> String {
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
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::object::ReconciledObject;
    use crate::recorder::EventType;
    use crate::recorder::correlator::{Correlator, CorrelatorConfig, Occurrence};

    fn write_about(namespace: Option<&str>, count: u32) -> Write {
        let mut correlator = Correlator::new(CorrelatorConfig::default());
        let now = std::time::Instant::now();
        for _ in 0..count {
            correlator.observe(
                Occurrence {
                    plugin: Arc::from("myresource"),
                    regarding: Arc::new(ReconciledObject {
                        api_version: "mygroup.example.com/v1alpha1".into(),
                        kind: "MyResource".into(),
                        namespace: namespace.map(str::to_owned),
                        name: "demo".into(),
                        uid: "1234".into(),
                        resource_version: Some("7".into()),
                    }),
                    event_type: EventType::Normal,
                    reason: "Created".into(),
                    message: "Created deployment demo".into(),
                    annotations: BTreeMap::from([("example.com/k".into(), "v".into())]),
                    time: Timestamp::now(),
                },
                now,
                true,
            );
        }
        correlator.due_writes(now, false, usize::MAX).remove(0)
    }

    #[test]
    fn events_v1_body_is_about_the_object_and_names_the_plugin() {
        let write = write_about(Some("team-a"), 1);
        assert_eq!(namespace_of(&write), "team-a");
        let event = events_v1(&write, "team-a", "host-1");
        let regarding = event.regarding.expect("regarding is set");
        assert_eq!(regarding.uid.as_deref(), Some("1234"));
        assert_eq!(event.reporting_controller.as_deref(), Some("myresource"));
        assert_eq!(
            event.reporting_instance.as_deref(),
            Some("myresource-host-1")
        );
        assert_eq!(
            (event.type_.as_deref(), event.action.as_deref()),
            (Some("Normal"), Some(ACTION))
        );
        assert!(event.series.is_none(), "a single event has no series");
        assert!(event.metadata.name.is_some_and(|n| n.starts_with("demo.")));
        assert_eq!(event.metadata.annotations.map(|a| a.len()), Some(1));
    }

    #[test]
    fn a_repeated_event_is_created_with_its_series() {
        let write = write_about(Some("team-a"), 3);
        let event = events_v1(&write, "team-a", "h");
        assert_eq!(event.series.map(|s| s.count), Some(3));
    }

    #[test]
    fn events_about_cluster_scoped_objects_go_to_default() {
        assert_eq!(
            namespace_of(&write_about(None, 1)),
            CLUSTER_SCOPED_EVENT_NAMESPACE
        );
    }

    #[test]
    fn reporting_instance_is_cut_to_128_bytes() {
        assert_eq!(
            reporting_instance("plugin", &"h".repeat(300)).len(),
            MAX_REPORTING_INSTANCE
        );
    }
}
