//! The event recorder on a real API server, driven by the `event-storm` fixture plugin:
//! series with exact counts, bounded writes, aggregation, the spam filter, expired Events,
//! and the core/v1 mode.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use testenv::TestEnv;
use wasm_reconciler::{EventsApi, Host, RecorderConfig, SandboxConfig};

use crate::util::{
    RunningHost, built_plugin, events_regarding, eventually, kubectl, metric, plugins_dir,
};

const NAMESPACE: &str = "default";

/// A control plane with the event-storm plugin running on it.
struct Storm {
    env: TestEnv,
    host: Option<RunningHost>,
    metrics: std::sync::Arc<wasm_reconciler::Metrics>,
    _plugins: tempfile::TempDir,
}

impl Storm {
    async fn start(recorder: RecorderConfig) -> Self {
        Self::start_with(|host| host.recorder(recorder)).await
    }

    async fn start_with(configure: impl FnOnce(Host) -> Host) -> Self {
        let env = TestEnv::start().await.expect("control plane starts");
        let plugins = plugins_dir(&[&built_plugin("event_storm")]);
        let host = configure(Host::new(plugins.path()));
        let metrics = host.metrics();
        let host = RunningHost::start(host, env.client());
        Self {
            env,
            host: Some(host),
            metrics,
            _plugins: plugins,
        }
    }

    /// Stops the host (flushing its events) and checks that it ran cleanly.
    async fn stop_host(&mut self) {
        if let Some(host) = self.host.take() {
            host.stop().await.expect("host ran and stopped cleanly");
        }
    }

    fn config_maps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.env.client(), NAMESPACE)
    }

    /// Creates a ConfigMap asking the plugin for events; returns its uid.
    async fn ask(&self, name: &str, settings: &[(&str, &str)]) -> String {
        let data: BTreeMap<String, String> = settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut config_map = ConfigMap::default();
        config_map.metadata.name = Some(name.to_owned());
        config_map.data = Some(data);
        let created = self
            .config_maps()
            .create(&PostParams::default(), &config_map)
            .await
            .expect("create ConfigMap");
        created.metadata.uid.expect("uid")
    }

    async fn events_about(&self, uid: &str) -> Vec<Event> {
        events_regarding(&self.env.client(), NAMESPACE, uid).await
    }

    fn writes(&self, reason: &str) -> (f64, f64) {
        let text = self.metrics.encode();
        let count = |outcome: &str| {
            metric(
                &text,
                &format!(
                    r#"wasm_reconciler_events_total{{plugin="event-storm",reason="{reason}",outcome="{outcome}"}}"#
                ),
            )
        };
        (count("created"), count("patched"))
    }
}

fn series_count(event: &Event) -> i32 {
    event.series.as_ref().map_or(1, |series| series.count)
}

#[tokio::test]
async fn ten_thousand_identical_events_are_one_event_with_the_exact_count() {
    let mut storm = Storm::start(RecorderConfig::default()).await;
    let uid = storm.ask("storm", &[("events", "10000")]).await;

    let event = eventually("one Event counting 10000", || async {
        let events = storm.events_about(&uid).await;
        (events.len() == 1 && series_count(&events[0]) == 10_000).then(|| events[0].clone())
    })
    .await;
    assert_eq!(event.reason.as_deref(), Some("Storm"));
    assert_eq!(event.reporting_controller.as_deref(), Some("event-storm"));

    let describe = kubectl(
        &storm.env,
        &["describe", "configmap", "storm", "-n", NAMESPACE],
    )
    .await;
    assert!(describe.contains("(x10000 over"), "{describe}");

    // One reconcile of 10,000 events: one create, and at most one patch per second after the
    // first; the whole storm takes well under three seconds here.
    let (created, patched) = storm.writes("Storm");
    assert_eq!(created, 1.0);
    assert!(patched <= 4.0, "{patched} patches for one storm");

    storm.stop_host().await;
    let events = storm.events_about(&uid).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        series_count(&events[0]),
        10_000,
        "nothing lost or added at shutdown"
    );
}

#[tokio::test]
async fn a_thousand_reconciles_recording_one_event_each_stay_one_event_with_few_writes() {
    let mut storm = Storm::start(RecorderConfig::default()).await;
    let uid = storm
        .ask("ticking", &[("events", "1"), ("tick", "0")])
        .await;
    eventually("the first event", || async {
        (storm.events_about(&uid).await.len() == 1).then_some(())
    })
    .await;
    // The plugin reconciles every ConfigMap, including the API server's own in kube-system:
    // count from when each has been reconciled once, so that from there only ours count.
    let all: Api<ConfigMap> = Api::all(storm.env.client());
    let existing = all
        .list(&ListParams::default())
        .await
        .expect("list ConfigMaps")
        .items
        .len();
    let reconciles_before = eventually("every ConfigMap reconciled once", || async {
        let done = metric(
            &storm.metrics.encode(),
            r#"wasm_reconciler_reconciles_total{plugin="event-storm",result="success"}"#,
        );
        #[allow(clippy::cast_precision_loss, reason = "a handful of ConfigMaps")]
        (done >= existing as f64).then_some(done)
    })
    .await;
    let started = std::time::Instant::now();
    // Every change to the ConfigMap is a reconcile recording one identical event (changes that
    // arrive while a reconcile runs are coalesced into one more, as in any controller).
    for tick in 1..=1000 {
        storm
            .config_maps()
            .patch(
                "ticking",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"data": {"tick": tick.to_string()}})),
            )
            .await
            .expect("change the ConfigMap");
    }
    storm.stop_host().await;
    let elapsed = started.elapsed().as_secs_f64();

    let text = storm.metrics.encode();
    let reconciles =
        1.0 + metric(
            &text,
            r#"wasm_reconciler_reconciles_total{plugin="event-storm",result="success"}"#,
        ) - reconciles_before;
    assert!(reconciles > 100.0, "only {reconciles} reconciles");
    let events = storm.events_about(&uid).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(
        f64::from(series_count(&events[0])),
        reconciles,
        "one count per reconcile, none lost"
    );
    let (created, patched) = storm.writes("Storm");
    assert_eq!(created, 1.0);
    // The first two writes at once, then at most one per second, and the final flush.
    assert!(
        patched <= 1.0 + elapsed.ceil() + 1.0,
        "{patched} patches over {elapsed:.1} s for {reconciles} reconciles"
    );
}

#[tokio::test]
async fn ten_distinct_messages_fold_into_one_combined_event() {
    let mut storm = Storm::start(RecorderConfig::default()).await;
    let uid = storm
        .ask(
            "scaled",
            &[
                ("events", "12"),
                ("reason", "Scaled"),
                ("distinct-messages", "true"),
            ],
        )
        .await;
    let events = eventually("nine events and a combined one counting 3", || async {
        let events = storm.events_about(&uid).await;
        let combined = events.iter().find(|e| {
            e.note
                .as_deref()
                .is_some_and(|note| note.starts_with("(combined from similar events): "))
        })?;
        (events.len() == 10 && series_count(combined) == 3).then_some(events)
    })
    .await;
    let singles = events.iter().filter(|e| e.series.is_none()).count();
    assert_eq!(singles, 9);
    storm.stop_host().await;
}

#[tokio::test]
async fn the_spam_filter_caps_new_events_per_object_and_counts_the_rest() {
    let mut storm = Storm::start(RecorderConfig::default()).await;
    let uid = storm
        .ask(
            "spammy",
            &[
                ("events", "30"),
                ("reason", "Spam"),
                ("distinct-reasons", "true"),
            ],
        )
        .await;
    eventually("25 events", || async {
        (storm.events_about(&uid).await.len() == 25).then_some(())
    })
    .await;
    let text = storm.metrics.encode();
    let filtered: f64 = (0..30)
        .map(|i| {
            metric(
                &text,
                &format!(r#"wasm_reconciler_events_total{{plugin="event-storm",reason="Spam{i}",outcome="filtered"}}"#),
            )
        })
        .sum();
    assert_eq!(filtered, 5.0, "{text}");
    storm.stop_host().await;
}

#[tokio::test]
async fn a_deleted_event_is_created_again_with_the_full_count() {
    let mut storm = Storm::start(RecorderConfig::default()).await;
    let uid = storm.ask("expiring", &[("events", "2")]).await;
    let first = eventually("an Event counting 2", || async {
        let events = storm.events_about(&uid).await;
        (events.len() == 1 && series_count(&events[0]) == 2).then(|| events[0].clone())
    })
    .await;
    let name = first.metadata.name.clone().expect("event name");
    let events: Api<Event> = Api::namespaced(storm.env.client(), NAMESPACE);
    events
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete the Event");

    // Another reconcile records the same event once more: the patch finds nothing (404), and
    // the recorder creates the Event again with everything it counted.
    storm
        .config_maps()
        .patch(
            "expiring",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"events": "1"}})),
        )
        .await
        .expect("change the ConfigMap");
    let again = eventually("the Event created again counting 3", || async {
        let events = storm.events_about(&uid).await;
        (events.len() == 1 && series_count(&events[0]) == 3).then(|| events[0].clone())
    })
    .await;
    assert_eq!(again.metadata.name.as_deref(), Some(name.as_str()));
    storm.stop_host().await;
}

#[tokio::test]
async fn core_v1_mode_writes_count_and_timestamps() {
    let mut storm = Storm::start(RecorderConfig::default().events_api(EventsApi::CoreV1)).await;
    let uid = storm
        .ask(
            "legacy",
            &[("events", "5"), ("type", "Warning"), ("reason", "Legacy")],
        )
        .await;
    let events: Api<CoreEvent> = Api::namespaced(storm.env.client(), NAMESPACE);
    let event = eventually("a core/v1 Event counting 5", || async {
        let list = events
            .list(&ListParams::default())
            .await
            .expect("list events");
        list.items
            .into_iter()
            .find(|e| e.involved_object.uid.as_deref() == Some(uid.as_str()) && e.count == Some(5))
    })
    .await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(
        event.source.and_then(|s| s.component).as_deref(),
        Some("event-storm")
    );
    assert!(event.first_timestamp.is_some() && event.last_timestamp.is_some());
    storm.stop_host().await;
}

#[tokio::test]
async fn waiting_for_room_lasts_as_long_as_events_are_being_written_and_goes_in_turn() {
    // Room for one new Event at a time and a longest wait of 300 ms without progress, against
    // 128 reconciles at once recording 5 Events each: one write takes milliseconds, but 128
    // recordings queue for each slot, so the last in line waits far longer than 300 ms. As
    // Events keep being written, every recording waits its turn and nothing is dropped.
    let mut storm = Storm::start_with(|host| {
        host.sandbox(SandboxConfig::default().max_instances(128))
            // Room in the budget for 128 slots (a bound, not memory taken).
            .memory_budget(1 << 30)
            .recorder(
                RecorderConfig::default()
                    .queue_capacity(1)
                    .max_wait(Duration::from_millis(300)),
            )
    })
    .await;
    let mut uids = Vec::new();
    for i in 0..128 {
        uids.push(
            storm
                .ask(
                    &format!("crowd-{i}"),
                    &[
                        ("events", "5"),
                        ("reason", "Crowd"),
                        ("distinct-reasons", "true"),
                    ],
                )
                .await,
        );
    }
    for uid in &uids {
        eventually("all 5 Events of each object", || async {
            (storm.events_about(uid).await.len() == 5).then_some(())
        })
        .await;
    }
    let text = storm.metrics.encode();
    assert!(
        !text.contains(r#"outcome="dropped_queue_full""#),
        "nothing was dropped"
    );
    storm.stop_host().await;
}

#[tokio::test]
async fn a_full_queue_makes_the_plugin_wait_and_loses_no_event() {
    // Room for 5 new Events; one reconcile records 20 distinct ones at once.
    let mut storm = Storm::start(RecorderConfig::default().queue_capacity(5)).await;
    let uid = storm
        .ask(
            "crowd",
            &[
                ("events", "20"),
                ("reason", "Crowd"),
                ("distinct-reasons", "true"),
            ],
        )
        .await;
    eventually("all 20 Events", || async {
        (storm.events_about(&uid).await.len() == 20).then_some(())
    })
    .await;
    let text = storm.metrics.encode();
    assert!(
        metric(
            &text,
            r#"wasm_reconciler_event_waits_total{plugin="event-storm"}"#
        ) >= 1.0,
        "the reconcile waited for room"
    );
    assert!(
        !text.contains(r#"outcome="dropped_queue_full""#),
        "nothing was dropped"
    );
    storm.stop_host().await;
}
