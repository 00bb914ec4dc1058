//! The host's Prometheus metrics: reconciles, plugin loading, and the event recorder.
//!
//! Label values that come from plugins (event reasons) are bounded per plugin: past
//! [`MAX_REASONS_PER_PLUGIN`] distinct reasons of one plugin, its further reasons are counted
//! under `reason="_other"`, so that a plugin can neither grow the host's memory through its
//! metrics nor push another plugin's reasons out. Refused events are counted under
//! `reason="_invalid"`, never under the text the plugin sent.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

mod controller_runtime;

pub(crate) use controller_runtime::{ControllerRuntimeMetrics, ControllerSeries, Ended};

/// Most distinct reasons of one plugin on event counters.
pub(crate) const MAX_REASONS_PER_PLUGIN: usize = 200;
const OTHER_REASON: &str = "_other";
/// The reason label of every refused event.
pub(crate) const INVALID_REASON: &str = "_invalid";

/// How a reconcile ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(
    non_camel_case_types,
    reason = "label values are written as the variant names"
)]
pub(crate) enum ReconcileResult {
    success,
    transient_error,
    terminal_error,
    failed,
}

/// One plugin's `reconciles_total` and `reconcile_duration_seconds` series.
#[derive(Clone)]
pub(crate) struct ReconcileSeries {
    success: Counter,
    transient_error: Counter,
    terminal_error: Counter,
    failed: Counter,
    seconds: Histogram,
}

impl ReconcileSeries {
    /// Counts one reconcile that ended with `result` after `took`.
    pub(crate) fn reconciled(&self, result: ReconcileResult, took: Duration) {
        match result {
            ReconcileResult::success => &self.success,
            ReconcileResult::transient_error => &self.transient_error,
            ReconcileResult::terminal_error => &self.terminal_error,
            ReconcileResult::failed => &self.failed,
        }
        .inc();
        self.seconds.observe(took.as_secs_f64());
    }
}

/// What happened to a recorded event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(
    non_camel_case_types,
    reason = "label values are written as the variant names"
)]
pub(crate) enum EventOutcome {
    /// A new Event object was created.
    created,
    /// An existing Event's series was updated.
    patched,
    /// The spam filter dropped it.
    filtered,
    /// It was folded into a "(combined from similar events)" Event.
    aggregated,
    /// Dropped: the delivery queue was full.
    dropped_queue_full,
    /// Dropped: the API server refused it or could not be reached after all retries.
    dropped_delivery,
    /// Refused when recorded: invalid reason or annotations.
    invalid,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReconcileLabels {
    plugin: String,
    result: ReconcileResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EventLabels {
    plugin: String,
    reason: String,
    outcome: EventOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
}

/// Every metric the host exports. Cheap to share: clone the `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    leader: Family<LeaderLabels, Gauge>,
    /// controller-runtime's names, per plugin as `controller`.
    pub(crate) controller_runtime: ControllerRuntimeMetrics,
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_seconds: Family<PluginLabels, Histogram>,
    plugins_loaded: Gauge,
    plugin_load_failures: Counter,
    plugin_components: Family<ComponentLabels, Counter>,
    plugin_changes: Family<ChangeLabels, Counter>,
    pub(crate) plugin_versions: Family<VersionLabels, Gauge>,
    pub(crate) plugin_upgrade_failed: Family<PluginLabels, Gauge>,
    events: Family<EventLabels, Counter>,
    event_caches: Family<CacheLabels, Gauge>,
    event_pending: Gauge,
    event_bytes: Gauge,
    event_creates_pending: Gauge,
    reasons_seen: Mutex<HashMap<String, HashSet<String>>>,
    pub(crate) plugin: PluginMetrics,
}

/// Per-plugin metrics of isolation and fairness: what the host refused or throttled.
#[derive(Debug, Default)]
pub(crate) struct PluginMetrics {
    pub(crate) log_lines_dropped: Family<PluginLabels, Counter>,
    pub(crate) requeues_throttled: Family<PluginLabels, Counter>,
    pub(crate) api_calls_refused: Family<PluginLabels, Counter>,
    pub(crate) event_waits: Family<PluginLabels, Counter>,
    pub(crate) suspended: Family<PluginLabels, Gauge>,
    pub(crate) suspensions: Family<PluginLabels, Counter>,
    pub(crate) limit_failures: Family<LimitLabels, Counter>,
    pub(crate) memory_share_bytes: Family<PluginLabels, Gauge>,
    pub(crate) slots: Family<PluginLabels, Gauge>,
}

/// What a change in the plugins directory did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(
    non_camel_case_types,
    reason = "label values are written as the variant names"
)]
pub(crate) enum PluginChange {
    /// A new plugin started.
    added,
    /// A new version replaced the running one under the same controller.
    swapped,
    /// A new version with other kinds replaced the running one with a new controller.
    restarted,
    /// A plugin stopped: its file was removed, or now holds another plugin.
    removed,
    /// A file could not be loaded, or claimed a name already taken: nothing changed.
    failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ChangeLabels {
    change: PluginChange,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LeaderLabels {
    name: String,
}

/// Labels of the running version of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct VersionLabels {
    pub(crate) plugin: String,
    pub(crate) file: String,
    pub(crate) sha256: String,
}

/// Where a loaded plugin's compiled component came from: `cache` or `compile`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct ComponentLabels {
    pub(crate) from: &'static str,
}

/// Labels of a per-plugin metric.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct PluginLabels {
    pub(crate) plugin: String,
}

impl PluginLabels {
    pub(crate) fn of(plugin: &str) -> Self {
        Self {
            plugin: plugin.to_owned(),
        }
    }
}

/// Which limit a failed call hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(
    non_camel_case_types,
    reason = "label values are written as the variant names"
)]
pub(crate) enum Limit {
    cpu,
    timeout,
    memory,
    plugin_memory,
    data,
    trap,
    instantiate,
}

/// Labels of a limit failure.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct LimitLabels {
    pub(crate) plugin: String,
    pub(crate) limit: Limit,
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Arc<Self> {
        let mut root = Registry::default();
        // controller-runtime's name and label, so that its dashboards and alerts work.
        let leader = Family::<LeaderLabels, Gauge>::default();
        root.register(
            "leader_election_master_status",
            "Whether this host leads (1) or not (0), by Lease name",
            leader.clone(),
        );
        let controller_runtime = ControllerRuntimeMetrics::register(&mut root);
        let registry = root.sub_registry_with_prefix("wasm_reconciler");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by plugin and result",
            reconciles.clone(),
        );
        let reconcile_seconds = Family::<PluginLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_1, 4.0, 10))
        });
        registry.register(
            "reconcile_duration_seconds",
            "Time of one reconcile, fresh instance and host calls included",
            reconcile_seconds.clone(),
        );
        let plugins_loaded = Gauge::default();
        registry.register(
            "plugins_loaded",
            "Plugins loaded and running",
            plugins_loaded.clone(),
        );
        let plugin_load_failures = Counter::default();
        registry.register(
            "plugin_load_failures",
            "Plugins that failed to load or start",
            plugin_load_failures.clone(),
        );
        let plugin_components = Family::<ComponentLabels, Counter>::default();
        registry.register(
            "plugin_components",
            "Plugin components loaded, by whether they came from the compile cache or a compile",
            plugin_components.clone(),
        );
        let plugin_changes = Family::<ChangeLabels, Counter>::default();
        registry.register(
            "plugin_changes",
            "Changes of the plugins directory applied while the host runs, by what they did",
            plugin_changes.clone(),
        );
        let plugin_versions = Family::<VersionLabels, Gauge>::default();
        registry.register(
            "plugin_version",
            "The running version of each plugin (1): its file and the SHA-256 of its component",
            plugin_versions.clone(),
        );
        let plugin_upgrade_failed = Family::<PluginLabels, Gauge>::default();
        registry.register(
            "plugin_upgrade_failed",
            "Whether the plugin's file holds a new version that failed to load, the old one still running (1) or not (0)",
            plugin_upgrade_failed.clone(),
        );
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "events",
            "Events recorded by plugins, by what became of them",
            events.clone(),
        );
        let event_caches = Family::<CacheLabels, Gauge>::default();
        registry.register(
            "event_cache_entries",
            "Entries in the event recorder's bounded caches (series, aggregates, spam)",
            event_caches.clone(),
        );
        let event_pending = Gauge::default();
        registry.register(
            "event_writes_pending",
            "Whether the event recorder has writes waiting (1) or not (0)",
            event_pending.clone(),
        );
        let event_bytes = Gauge::default();
        registry.register(
            "event_cache_bytes",
            "Bytes held by the event recorder's series",
            event_bytes.clone(),
        );
        let event_creates_pending = Gauge::default();
        registry.register(
            "event_creates_pending",
            "New Events waiting for their first write",
            event_creates_pending.clone(),
        );
        let plugin = PluginMetrics::default();
        registry.register(
            "plugin_log_lines_dropped",
            "Plugin log lines dropped by the per-plugin log rate limit",
            plugin.log_lines_dropped.clone(),
        );
        registry.register(
            "requeues_throttled",
            "Requeues delayed by the per-plugin requeue rate limit",
            plugin.requeues_throttled.clone(),
        );
        registry.register(
            "api_calls_refused",
            "Plugin API calls refused because the reconcile made its allowed number",
            plugin.api_calls_refused.clone(),
        );
        registry.register(
            "event_waits",
            "Events whose recording waited for room in a full recorder queue",
            plugin.event_waits.clone(),
        );
        registry.register(
            "plugin_suspended",
            "Whether the plugin is suspended by its circuit breaker (1) or not (0)",
            plugin.suspended.clone(),
        );
        registry.register(
            "plugin_suspensions",
            "Times the plugin's circuit breaker suspended it",
            plugin.suspensions.clone(),
        );
        registry.register(
            "plugin_limit_failures",
            "Plugin calls that ended on a limit or a trap, by limit",
            plugin.limit_failures.clone(),
        );
        registry.register(
            "plugin_memory_share_bytes",
            "Linear memory the plugin's instances may hold together",
            plugin.memory_share_bytes.clone(),
        );
        registry.register(
            "plugin_instance_slots",
            "Instances (concurrent reconciles) the plugin may run at once",
            plugin.slots.clone(),
        );
        Arc::new(Self {
            registry: root,
            leader,
            controller_runtime,
            reconciles,
            reconcile_seconds,
            plugins_loaded,
            plugin_load_failures,
            plugin_components,
            plugin_changes,
            plugin_versions,
            plugin_upgrade_failed,
            events,
            event_caches,
            event_pending,
            event_bytes,
            event_creates_pending,
            reasons_seen: Mutex::new(HashMap::new()),
            plugin,
        })
    }

    /// The metrics in the Prometheus text format (OpenMetrics).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// `plugin`'s series of reconciles by result and of their durations, looked up once, for
    /// its controller to count every reconcile on without a lookup.
    pub(crate) fn reconcile_series(&self, plugin: &str) -> ReconcileSeries {
        let by_result = |result| {
            self.reconciles
                .get_or_create(&ReconcileLabels {
                    plugin: plugin.to_owned(),
                    result,
                })
                .clone()
        };
        ReconcileSeries {
            success: by_result(ReconcileResult::success),
            transient_error: by_result(ReconcileResult::transient_error),
            terminal_error: by_result(ReconcileResult::terminal_error),
            failed: by_result(ReconcileResult::failed),
            seconds: self
                .reconcile_seconds
                .get_or_create(&PluginLabels {
                    plugin: plugin.to_owned(),
                })
                .clone(),
        }
    }

    pub(crate) fn plugins_loaded(&self, count: usize) {
        self.plugins_loaded
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub(crate) fn plugin_load_failed(&self) {
        self.plugin_load_failures.inc();
    }

    /// Counts a plugin component obtained `from` the cache or a compile.
    pub(crate) fn plugin_component(&self, from: &'static str) {
        self.plugin_components
            .get_or_create(&ComponentLabels { from })
            .inc();
    }

    /// Whether this host leads on the Lease `name`.
    pub(crate) fn leading(&self, name: &str, leading: bool) {
        self.leader
            .get_or_create(&LeaderLabels {
                name: name.to_owned(),
            })
            .set(i64::from(leading));
    }

    /// Counts one change of the plugins directory.
    pub(crate) fn plugin_changed(&self, change: PluginChange) {
        self.plugin_changes
            .get_or_create(&ChangeLabels { change })
            .inc();
    }

    /// Counts `n` events of `plugin` with `reason` that ended as `outcome`.
    pub(crate) fn events(&self, plugin: &str, reason: &str, outcome: EventOutcome, n: u32) {
        let reason = self.bounded_reason(plugin, reason);
        self.events
            .get_or_create(&EventLabels {
                plugin: plugin.to_owned(),
                reason,
                outcome,
            })
            .inc_by(u64::from(n));
    }

    pub(crate) fn event_caches(
        &self,
        series: usize,
        aggregates: usize,
        spam: usize,
        pending: bool,
        bytes: usize,
        creates_pending: usize,
    ) {
        self.event_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.event_creates_pending
            .set(i64::try_from(creates_pending).unwrap_or(i64::MAX));
        for (cache, size) in [
            ("series", series),
            ("aggregates", aggregates),
            ("spam", spam),
        ] {
            self.event_caches
                .get_or_create(&CacheLabels { cache })
                .set(i64::try_from(size).unwrap_or(i64::MAX));
        }
        self.event_pending.set(i64::from(pending));
    }

    fn bounded_reason(&self, plugin: &str, reason: &str) -> String {
        if reason == INVALID_REASON {
            return reason.to_owned();
        }
        let mut seen = self
            .reasons_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let reasons = match seen.get_mut(plugin) {
            Some(reasons) => reasons,
            None => seen.entry(plugin.to_owned()).or_default(),
        };
        if reasons.contains(reason) {
            return reason.to_owned();
        }
        if reasons.len() < MAX_REASONS_PER_PLUGIN {
            reasons.insert(reason.to_owned());
            return reason.to_owned();
        }
        OTHER_REASON.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_appear_in_the_text_format() {
        let metrics = Metrics::new();
        metrics.events("myresource", "Created", EventOutcome::created, 2);
        metrics
            .reconcile_series("myresource")
            .reconciled(ReconcileResult::success, Duration::from_millis(3));
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"wasm_reconciler_events_total{plugin="myresource",reason="Created",outcome="created"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"wasm_reconciler_reconciles_total{plugin="myresource",result="success"} 1"#
            ),
            "{text}"
        );
    }

    #[test]
    fn reason_labels_are_bounded_per_plugin() {
        let metrics = Metrics::new();
        for i in 0..MAX_REASONS_PER_PLUGIN + 5 {
            metrics.events("p", &format!("Reason{i}"), EventOutcome::created, 1);
        }
        metrics.events("q", "Created", EventOutcome::created, 1);
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"wasm_reconciler_events_total{plugin="p",reason="_other",outcome="created"} 5"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"wasm_reconciler_events_total{plugin="q",reason="Created",outcome="created"} 1"#
            ),
            "another plugin's reasons keep their label: {text}"
        );
    }
}
