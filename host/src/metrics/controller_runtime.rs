//! controller-runtime's controller metrics, under its names and labels (`controller` is the
//! plugin's name), so that dashboards and alerts written for controller-runtime operators work
//! on the host's plugins unchanged.
//!
//! Its workqueue metrics (`workqueue_*`) are not among them: kube-runtime's scheduler, which
//! plays the work queue's part, does not expose its depth or waits.

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// controller-runtime's buckets for `controller_runtime_reconcile_time_seconds`.
const RECONCILE_TIME_BUCKETS: [f64; 40] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0,
    25.0, 30.0, 40.0, 50.0, 60.0,
];

/// How a reconcile ended, in controller-runtime's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Done, waiting for a change.
    Success,
    /// Done, to be reconciled again at once (`Result{Requeue: true}`).
    Requeue,
    /// Done, to be reconciled again later (`Result{RequeueAfter: d}`).
    RequeueAfter,
    /// A transient error, or a call that ended on a limit.
    Error,
    /// A terminal error (`reconcile.TerminalError`).
    TerminalError,
    /// The plugin trapped: what a panic is to a Go reconciler.
    Panic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(
    non_camel_case_types,
    reason = "label values are written as the variant names"
)]
enum ResultLabel {
    success,
    error,
    requeue,
    requeue_after,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    controller: String,
    result: ResultLabel,
}

/// The `controller_runtime_*` families.
#[derive(Debug)]
pub(crate) struct ControllerRuntimeMetrics {
    reconciles: Family<ResultLabels, Counter>,
    errors: Family<ControllerLabels, Counter>,
    terminal_errors: Family<ControllerLabels, Counter>,
    panics: Family<ControllerLabels, Counter>,
    time: Family<ControllerLabels, Histogram>,
    max_concurrent: Family<ControllerLabels, Gauge>,
    active_workers: Family<ControllerLabels, Gauge>,
}

/// One controller's series of the `controller_runtime_*` families.
#[derive(Debug, Clone)]
pub(crate) struct ControllerSeries {
    success: Counter,
    requeue: Counter,
    requeue_after: Counter,
    error: Counter,
    errors: Counter,
    terminal_errors: Counter,
    panics: Counter,
    time: Histogram,
    active_workers: Gauge,
}

impl ControllerSeries {
    /// Counts a reconcile that ended as `ended` after `took`.
    pub(crate) fn reconciled(&self, ended: Ended, took: Duration) {
        let result = match ended {
            Ended::Success => &self.success,
            Ended::Requeue => &self.requeue,
            Ended::RequeueAfter => &self.requeue_after,
            Ended::Error | Ended::TerminalError | Ended::Panic => &self.error,
        };
        result.inc();
        match ended {
            Ended::Error => {
                self.errors.inc();
            }
            Ended::TerminalError => {
                self.errors.inc();
                self.terminal_errors.inc();
            }
            Ended::Panic => {
                self.errors.inc();
                self.panics.inc();
            }
            Ended::Success | Ended::Requeue | Ended::RequeueAfter => {}
        }
        self.time.observe(took.as_secs_f64());
    }

    /// Counts a reconcile as running until the guard is dropped.
    pub(crate) fn worker(&self) -> ActiveWorker {
        self.active_workers.inc();
        ActiveWorker(self.active_workers.clone())
    }
}

/// One reconcile running: counted in `controller_runtime_active_workers` until dropped.
pub(crate) struct ActiveWorker(Gauge);

impl Drop for ActiveWorker {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl ControllerRuntimeMetrics {
    /// Registers the families in `registry`, which must have no prefix.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            reconciles: Family::default(),
            errors: Family::default(),
            terminal_errors: Family::default(),
            panics: Family::default(),
            time: Family::new_with_constructor(|| {
                Histogram::new(RECONCILE_TIME_BUCKETS.iter().copied())
            }),
            max_concurrent: Family::default(),
            active_workers: Family::default(),
        };
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            metrics.reconciles.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            metrics.errors.clone(),
        );
        registry.register(
            "controller_runtime_terminal_reconcile_errors",
            "Total number of terminal reconciliation errors per controller",
            metrics.terminal_errors.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_panics",
            "Total number of reconciliation panics (plugin traps) per controller",
            metrics.panics.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            metrics.time.clone(),
        );
        registry.register(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            metrics.max_concurrent.clone(),
        );
        registry.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            metrics.active_workers.clone(),
        );
        metrics
    }

    /// The series of `controller`, looked up once rather than per reconcile.
    pub(crate) fn of(&self, controller: &str) -> ControllerSeries {
        let labels = ControllerLabels {
            controller: controller.to_owned(),
        };
        let result = |result| {
            self.reconciles
                .get_or_create(&ResultLabels {
                    controller: controller.to_owned(),
                    result,
                })
                .clone()
        };
        ControllerSeries {
            success: result(ResultLabel::success),
            requeue: result(ResultLabel::requeue),
            requeue_after: result(ResultLabel::requeue_after),
            error: result(ResultLabel::error),
            errors: self.errors.get_or_create(&labels).clone(),
            terminal_errors: self.terminal_errors.get_or_create(&labels).clone(),
            panics: self.panics.get_or_create(&labels).clone(),
            time: self.time.get_or_create(&labels).clone(),
            active_workers: self.active_workers.get_or_create(&labels).clone(),
        }
    }

    /// How many reconciles of `controller` may run at once: its instance slots.
    pub(crate) fn set_max_concurrent(&self, controller: &str, reconciles: u32) {
        self.max_concurrent
            .get_or_create(&ControllerLabels {
                controller: controller.to_owned(),
            })
            .set(i64::from(reconciles));
    }

    /// Forgets the gauges of a controller that stopped (its counters stay, as counters do).
    pub(crate) fn forget(&self, controller: &str) {
        let labels = ControllerLabels {
            controller: controller.to_owned(),
        };
        self.max_concurrent.remove(&labels);
        self.active_workers.remove(&labels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_and_errors_are_counted_as_controller_runtime_counts_them() {
        let mut registry = Registry::default();
        let metrics = ControllerRuntimeMetrics::register(&mut registry);
        let series = metrics.of("p");
        for ended in [
            Ended::Success,
            Ended::RequeueAfter,
            Ended::TerminalError,
            Ended::Panic,
            Ended::Error,
        ] {
            series.reconciled(ended, Duration::from_millis(3));
        }
        let worker = series.worker();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        for line in [
            "controller_runtime_reconcile_total{controller=\"p\",result=\"success\"} 1",
            "controller_runtime_reconcile_total{controller=\"p\",result=\"requeue_after\"} 1",
            "controller_runtime_reconcile_total{controller=\"p\",result=\"error\"} 3",
            "controller_runtime_reconcile_errors_total{controller=\"p\"} 3",
            "controller_runtime_terminal_reconcile_errors_total{controller=\"p\"} 1",
            "controller_runtime_reconcile_panics_total{controller=\"p\"} 1",
            "controller_runtime_reconcile_time_seconds_count{controller=\"p\"} 5",
            "controller_runtime_active_workers{controller=\"p\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing in:\n{text}");
        }
        drop(worker);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(text.contains("controller_runtime_active_workers{controller=\"p\"} 0"));
    }
}
