//! What `reconcile` prints: the outcome, the Events the host would write, the objects applied,
//! the status patches and the reads, as YAML or JSON, with nothing that changes between runs.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::GroupVersionKind;
use serde::Serialize;
use serde_json::Value;

use super::api::{Call, ObjectKey};
use crate::object::ReconciledObject;
use crate::plugin::{CallError, Outcome};

/// How to print the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A YAML document.
    #[default]
    Yaml,
    /// A JSON document.
    Json,
}

/// One offline reconcile, as printed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Report {
    plugin: String,
    object: ObjectReport,
    outcome: OutcomeReport,
    events: Vec<EventReport>,
    /// Events the host refused (invalid reason or annotations): the plugin got an error.
    #[serde(skip_serializing_if = "is_zero")]
    refused_events: u64,
    /// New Events the spam filter dropped (more than its burst about one object).
    #[serde(skip_serializing_if = "is_zero")]
    filtered_events: u64,
    applied: Vec<Value>,
    status_patches: Vec<Value>,
    reads: Vec<ReadReport>,
    /// Lists the plugin made (contract 0.2.0), when any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    lists: Vec<ListReport>,
    /// Deletes the plugin made (contract 0.2.0), when any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    deleted: Vec<ReadReport>,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

/// The reconciled object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ObjectReport {
    api_version: String,
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    name: String,
}

/// How the reconcile ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "camelCase")]
pub(crate) enum OutcomeReport {
    /// The plugin succeeded.
    #[serde(rename_all = "camelCase")]
    Done {
        /// `30s`, `250ms`: when the plugin asked to be called again.
        #[serde(skip_serializing_if = "Option::is_none")]
        requeue_after: Option<String>,
    },
    /// The plugin failed; the host would retry with backoff.
    TransientError { message: String },
    /// The plugin failed; the host would wait for a change.
    TerminalError { message: String },
    /// The host stopped the call: a trap or a limit.
    Failed {
        /// `trap`, `cpuLimit`, `memoryLimit`, `pluginMemory`, `timeout`, `tooMuchData`,
        /// `instantiate`.
        reason: &'static str,
        message: String,
    },
    /// The host would not call the plugin for this object.
    NotCalled { message: String },
}

impl OutcomeReport {
    /// The report of what [`crate::plugin::Plugin::reconcile`] returned.
    pub(crate) fn of(result: Result<Outcome, CallError>) -> Self {
        match result {
            Ok(Outcome::Done { requeue_after }) => OutcomeReport::Done {
                requeue_after: requeue_after.map(duration_text),
            },
            Ok(Outcome::Transient(message)) => OutcomeReport::TransientError { message },
            Ok(Outcome::Terminal(message)) => OutcomeReport::TerminalError { message },
            Err(error) => OutcomeReport::Failed {
                reason: match &error {
                    CallError::Trap { .. } => "trap",
                    CallError::CpuLimit(_) => "cpuLimit",
                    CallError::MemoryLimit { .. } => "memoryLimit",
                    CallError::PluginMemory { .. } => "pluginMemory",
                    CallError::Timeout(_) => "timeout",
                    CallError::TooMuchData { .. } => "tooMuchData",
                    CallError::Instantiate(_) => "instantiate",
                },
                message: crate::manager::error_chain(&error),
            },
        }
    }
}

/// An Event as `kubectl describe` would list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct EventReport {
    #[serde(rename = "type")]
    event_type: String,
    reason: String,
    message: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
    /// How many times it happened, when more than once.
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
}

impl EventReport {
    /// The fields that matter to a reader of an `events.k8s.io/v1` Event.
    fn of(event: &Value) -> Self {
        let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
        let annotations = event["metadata"]["annotations"]
            .as_object()
            .map(|annotations| {
                annotations
                    .iter()
                    .map(|(key, value)| (key.clone(), text(value)))
                    .collect()
            })
            .unwrap_or_default();
        EventReport {
            event_type: text(&event["type"]),
            reason: text(&event["reason"]),
            message: text(&event["note"]),
            annotations,
            count: event["series"]["count"].as_u64().filter(|&count| count > 1),
        }
    }
}

/// One object the plugin read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadReport {
    api_version: String,
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    name: String,
    found: bool,
}

/// One list the plugin made: of which kind, where, with which selector, and how many objects
/// it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
struct ListReport {
    api_version: String,
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    selector: String,
    found: usize,
}

impl Report {
    /// The report of a reconcile of `object` by `plugin` that ended in `outcome`, from what the
    /// API server saw and the host's metrics (`metrics`, as text) of Events never written.
    pub(crate) fn new(
        plugin: &str,
        object: &ReconciledObject,
        outcome: OutcomeReport,
        calls: &[Call],
        events: &[Value],
        metrics: &str,
    ) -> Self {
        let mut report = Report {
            plugin: plugin.to_owned(),
            object: ObjectReport {
                api_version: object.api_version.clone(),
                kind: object.kind.clone(),
                namespace: object.namespace.clone(),
                name: object.name.clone(),
            },
            outcome,
            events: events.iter().map(EventReport::of).collect(),
            refused_events: events_counted(metrics, "invalid"),
            filtered_events: events_counted(metrics, "filtered"),
            applied: Vec::new(),
            status_patches: Vec::new(),
            reads: Vec::new(),
            lists: Vec::new(),
            deleted: Vec::new(),
        };
        let kind_name = |kind: &Option<GroupVersionKind>, key: &ObjectKey| {
            kind.as_ref()
                .map_or_else(|| key.plural.clone(), |kind| kind.kind.clone())
        };
        for call in calls {
            match call {
                Call::Get { kind, key, found } => report.reads.push(ReadReport {
                    api_version: api_version(key),
                    kind: kind_name(kind, key),
                    namespace: key.namespace.clone(),
                    name: key.name.clone(),
                    found: *found,
                }),
                Call::List {
                    kind,
                    key,
                    selector,
                    found,
                } => report.lists.push(ListReport {
                    api_version: api_version(key),
                    kind: kind_name(kind, key),
                    namespace: key.namespace.clone(),
                    selector: selector.clone(),
                    found: *found,
                }),
                Call::Delete { kind, key, found } => report.deleted.push(ReadReport {
                    api_version: api_version(key),
                    kind: kind_name(kind, key),
                    namespace: key.namespace.clone(),
                    name: key.name.clone(),
                    found: *found,
                }),
                Call::Apply { object, .. } => report.applied.push(object.clone()),
                Call::StatusPatch { status, .. } => report.status_patches.push(status.clone()),
            }
        }
        report
    }

    /// The report as text in `format`, ending with a newline.
    pub(crate) fn render(&self, format: OutputFormat) -> Result<String, RenderError> {
        match format {
            OutputFormat::Yaml => Ok(serde_norway::to_string(self)?),
            OutputFormat::Json => Ok(serde_json::to_string_pretty(self)? + "\n"),
        }
    }
}

/// The report could not be written out.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// As YAML.
    #[error("cannot write the report as YAML")]
    Yaml(#[from] serde_norway::Error),
    /// As JSON.
    #[error("cannot write the report as JSON")]
    Json(#[from] serde_json::Error),
}

/// The sum of `wasm_reconciler_events_total{outcome="<outcome>"}` in the metrics `text`.
fn events_counted(text: &str, outcome: &str) -> u64 {
    let label = format!("outcome=\"{outcome}\"");
    text.lines()
        .filter(|line| line.starts_with("wasm_reconciler_events_total{") && line.contains(&label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn api_version(key: &ObjectKey) -> String {
    if key.group.is_empty() {
        key.version.clone()
    } else {
        format!("{}/{}", key.group, key.version)
    }
}

/// `30s`, `1500ms`: whole seconds when it is some, milliseconds otherwise.
fn duration_text(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object() -> ReconciledObject {
        ReconciledObject::test_config_map()
    }

    #[test]
    fn requeue_delays_are_whole_seconds_or_milliseconds() {
        assert_eq!(duration_text(Duration::from_secs(30)), "30s");
        assert_eq!(duration_text(Duration::from_millis(1500)), "1500ms");
        assert_eq!(duration_text(Duration::ZERO), "0s");
    }

    #[test]
    fn the_yaml_report_reads_in_a_fixed_order_and_leaves_out_what_is_not_there() {
        let key = ObjectKey {
            group: String::new(),
            version: "v1".into(),
            plural: "secrets".into(),
            namespace: Some("default".into()),
            name: "s".into(),
        };
        let calls = [
            Call::Get {
                kind: None,
                key: key.clone(),
                found: false,
            },
            Call::StatusPatch {
                key,
                status: json!({"ok": true}),
            },
        ];
        let events = [
            json!({"type": "Normal", "reason": "Seen", "note": "saw it", "series": {"count": 3},
                   "metadata": {"annotations": {"b": "2", "a": "1"}}}),
            json!({"type": "Warning", "reason": "Odd", "note": "once"}),
        ];
        let outcome = OutcomeReport::of(Ok(Outcome::Done {
            requeue_after: Some(Duration::from_secs(5)),
        }));
        let metrics = "\
# TYPE wasm_reconciler_events counter
wasm_reconciler_events_total{plugin=\"p\",reason=\"_invalid\",outcome=\"invalid\"} 2
wasm_reconciler_events_total{plugin=\"p\",reason=\"Seen\",outcome=\"created\"} 1
";
        let report = Report::new("p", &object(), outcome, &calls, &events, metrics);
        let yaml = report.render(OutputFormat::Yaml).expect("renders");
        assert_eq!(
            yaml,
            "\
plugin: p
object:
  apiVersion: v1
  kind: ConfigMap
  namespace: default
  name: c
outcome:
  result: done
  requeueAfter: 5s
events:
- type: Normal
  reason: Seen
  message: saw it
  annotations:
    a: '1'
    b: '2'
  count: 3
- type: Warning
  reason: Odd
  message: once
refusedEvents: 2
applied: []
statusPatches:
- ok: true
reads:
- apiVersion: v1
  kind: secrets
  namespace: default
  name: s
  found: false
"
        );
        let json: Value =
            serde_json::from_str(&report.render(OutputFormat::Json).expect("renders"))
                .expect("valid JSON");
        assert_eq!(
            json["outcome"],
            json!({"result": "done", "requeueAfter": "5s"})
        );
    }

    #[test]
    fn failures_name_the_limit() {
        let outcome = OutcomeReport::of(Err(CallError::CpuLimit(Duration::from_secs(2))));
        assert_eq!(
            outcome,
            OutcomeReport::Failed {
                reason: "cpuLimit",
                message: "plugin exceeded its CPU limit of 2s".into()
            }
        );
        assert_eq!(
            OutcomeReport::of(Ok(Outcome::Terminal("bad".into()))),
            OutcomeReport::TerminalError {
                message: "bad".into()
            }
        );
    }
}
