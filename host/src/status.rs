//! What the host tells its probes: one named check per concern (a plugin's load, its watch,
//! its circuit breaker, the draining host), each saying whether it holds readiness or
//! liveness back, rendered as one line each on `/readyz` and `/healthz`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use tokio::sync::watch;

/// How much a failing check matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    /// Shown on `/readyz`, but the host stays ready (e.g. a suspended plugin).
    Info,
    /// The host is not ready while it fails.
    Unready,
    /// The host is not live while it fails: the kubelet restarts it.
    Dead,
}

/// One check's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Check {
    pub(crate) ok: bool,
    pub(crate) severity: Severity,
    pub(crate) detail: String,
}

/// Every check, keyed by name (`plugin/myresource/watch`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Report {
    checks: BTreeMap<String, Check>,
}

impl Report {
    /// No failing check holds readiness back.
    pub(crate) fn ready(&self) -> bool {
        self.checks
            .values()
            .all(|check| check.ok || check.severity == Severity::Info)
    }

    /// No failing check holds liveness back.
    pub(crate) fn live(&self) -> bool {
        self.checks
            .values()
            .all(|check| check.ok || check.severity != Severity::Dead)
    }

    /// `ok` when every check passes, else one line per failing check:
    /// `[-]name: detail`.
    pub(crate) fn render(&self, severities: &[Severity]) -> String {
        let mut text = String::new();
        for (name, check) in &self.checks {
            if !check.ok && severities.contains(&check.severity) {
                let _ = writeln!(text, "[-]{name}: {}", check.detail);
            }
        }
        text
    }
}

/// The shared, changing [`Report`]. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct HostStatus {
    report: Arc<watch::Sender<Report>>,
}

impl HostStatus {
    /// A status with one failing check, `host`, until [`HostStatus::pass`] clears it.
    pub(crate) fn new() -> Self {
        let (report, _) = watch::channel(Report::default());
        let status = Self {
            report: Arc::new(report),
        };
        status.fail("host", Severity::Unready, "plugins are loading");
        status
    }

    /// What the probes read.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Report> {
        self.report.subscribe()
    }

    /// Marks `name` as passing.
    pub(crate) fn pass(&self, name: &str) {
        self.set(name, true, Severity::Info, String::new());
    }

    /// Marks `name` as failing with `severity`, saying why.
    pub(crate) fn fail(&self, name: &str, severity: Severity, detail: impl Into<String>) {
        self.set(name, false, severity, detail.into());
    }

    /// Forgets `name`.
    pub(crate) fn remove(&self, name: &str) {
        self.report
            .send_if_modified(|report| report.checks.remove(name).is_some());
    }

    /// Forgets every check whose name starts with `prefix` (a stopped plugin's).
    pub(crate) fn remove_prefix(&self, prefix: &str) {
        self.report.send_if_modified(|report| {
            let before = report.checks.len();
            report.checks.retain(|name, _| !name.starts_with(prefix));
            report.checks.len() != before
        });
    }

    fn set(&self, name: &str, ok: bool, severity: Severity, detail: String) {
        let check = Check {
            ok,
            severity,
            detail,
        };
        self.report.send_if_modified(|report| {
            if report.checks.get(name) == Some(&check) {
                return false;
            }
            report.checks.insert(name.to_owned(), check);
            true
        });
    }

    /// The current report.
    #[cfg(test)]
    pub(crate) fn report(&self) -> Report {
        self.report.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_not_ready_until_it_says_so_and_info_checks_never_hold_it_back() {
        let status = HostStatus::new();
        assert!(!status.report().ready());
        assert!(status.report().live());
        status.pass("host");
        assert!(status.report().ready());
        status.fail("plugin/a/breaker", Severity::Info, "suspended for 10s");
        assert!(status.report().ready());
        assert_eq!(
            status.report().render(&[Severity::Info]),
            "[-]plugin/a/breaker: suspended for 10s\n"
        );
        status.fail(
            "plugin/a/watch",
            Severity::Unready,
            "API server unreachable",
        );
        assert!(!status.report().ready());
        status.pass("plugin/a/watch");
        assert!(status.report().ready());
    }

    #[test]
    fn a_dead_check_fails_liveness() {
        let status = HostStatus::new();
        status.fail(
            "plugin/a/controller",
            Severity::Dead,
            "the controller task ended",
        );
        assert!(!status.report().live());
        status.remove("plugin/a/controller");
        assert!(status.report().live());
    }
}
