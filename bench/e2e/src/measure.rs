//! What a run measures outside its own watches: the API server's request counters, and a
//! process's CPU time and peak memory from `/proc`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// The controller is done when its request counts did not move for this long...
const QUIET: Duration = Duration::from_secs(2);
/// ...or after this long, whichever comes first.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);
/// Resources whose requests are counted: everything the controllers touch.
const COUNTED_RESOURCES: [&str; 3] = ["myresources", "deployments", "events"];

/// API requests by verb (`GET`, `APPLY`, `PATCH`, `POST`, ...), and how many failed.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Requests {
    pub(crate) by_verb: BTreeMap<String, u64>,
    /// Answers outside 2xx (e.g. conflicts, throttling), except the `404` of a GET for a
    /// Deployment that does not exist yet.
    pub(crate) failed: u64,
}

impl Requests {
    pub(crate) fn total(&self) -> u64 {
        self.by_verb.values().sum()
    }
}

/// `apiserver_request_total` by (verb, resource, subresource, code).
pub(crate) type Counters = BTreeMap<(String, String, String, String), f64>;

/// Reads the API server's request counters.
pub(crate) async fn scrape(client: &kube::Client) -> anyhow::Result<Counters> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client
        .request_text(request)
        .await
        .context("reading the API server's /metrics")?;
    Ok(parse_request_counters(&text))
}

fn parse_request_counters(text: &str) -> Counters {
    let mut counters = Counters::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|pair| pair.strip_prefix(name)?.strip_prefix("=\""))
                .and_then(|value| value.strip_suffix('"'))
                .unwrap_or_default()
                .to_owned()
        };
        let key = (
            label("verb"),
            label("resource"),
            label("subresource"),
            label("code"),
        );
        *counters.entry(key).or_default() += value;
    }
    counters
}

/// Whether a request of this kind is one the driver makes (creating MyResources, its watches)
/// rather than the controller. The controllers list and watch before the first scrape.
fn driver_request(verb: &str, resource: &str, subresource: &str) -> bool {
    subresource.is_empty()
        && match resource {
            "myresources" => matches!(verb, "POST" | "LIST" | "WATCH"),
            "events" => matches!(verb, "LIST" | "WATCH"),
            _ => false,
        }
}

/// The controller's requests between two scrapes.
pub(crate) fn requests(before: &Counters, after: &Counters) -> Requests {
    let mut requests = Requests::default();
    for ((verb, resource, subresource, code), value) in after {
        if !COUNTED_RESOURCES.contains(&resource.as_str())
            || driver_request(verb, resource, subresource)
        {
            continue;
        }
        let key = (
            verb.clone(),
            resource.clone(),
            subresource.clone(),
            code.clone(),
        );
        let delta = value - before.get(&key).copied().unwrap_or_default();
        if delta <= 0.0 {
            continue;
        }
        // Counters are integers carried as floats in the text format.
        let delta = delta.round() as u64;
        *requests.by_verb.entry(verb.clone()).or_default() += delta;
        // The first GET of each Deployment is a 404 by design: not a failure.
        let expected_not_found = verb == "GET" && code == "404";
        if !code.starts_with('2') && !expected_not_found {
            requests.failed += delta;
        }
    }
    requests
}

/// Scrapes until the controller's request counts stayed the same for [`QUIET`] (or
/// [`SETTLE_LIMIT`] passed); returns the last scrape.
pub(crate) async fn settle(client: &kube::Client, before: &Counters) -> anyhow::Result<Counters> {
    let started = Instant::now();
    let mut last = scrape(client).await?;
    let mut quiet_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = scrape(client).await?;
        if requests(before, &now) != requests(before, &last) {
            quiet_since = Instant::now();
        }
        last = now;
        if quiet_since.elapsed() >= QUIET || started.elapsed() >= SETTLE_LIMIT {
            return Ok(last);
        }
    }
}

/// Clock ticks per second, the unit of CPU times in `/proc/<pid>/stat`.
pub(crate) fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        // The value on every Linux this runs on, should getconf be missing.
        .unwrap_or(100.0)
}

/// User + system CPU seconds of a process, all threads (`/proc/<pid>/stat` fields 14 and 15).
pub(crate) fn cpu_seconds(pid: u32, clock_ticks: f64) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // Fields after the name start at field 3 (state): utime is field 14, stime 15.
    let ticks = |index: usize| -> anyhow::Result<f64> {
        let field = fields
            .get(index - 3)
            .with_context(|| format!("{path} is too short"))?;
        Ok(field.parse::<f64>()?)
    };
    Ok((ticks(14)? + ticks(15)?) / clock_ticks)
}

pub(crate) fn cpu_of_all(pids: &[u32], clock_ticks: f64) -> anyhow::Result<f64> {
    pids.iter().map(|&pid| cpu_seconds(pid, clock_ticks)).sum()
}

/// The peak resident set size of a process (`VmHWM` in `/proc/<pid>/status`), in KiB.
pub(crate) fn peak_rss_kib(pid: u32) -> anyhow::Result<f64> {
    status_kib(pid, "VmHWM")
}

/// The resident set size of a process now (`VmRSS`), in KiB.
pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<f64> {
    status_kib(pid, "VmRSS")
}

/// A `kB` field of `/proc/<pid>/status`.
fn status_kib(pid: u32, field: &str) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_counters_are_read_by_verb_and_resource() {
        let text = r#"# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="",verb="APPLY",version="v1"} 7
apiserver_request_total{code="404",component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="",verb="GET",version="v1"} 3
apiserver_request_total{code="409",component="apiserver",dry_run="",group="mygroup.example.com",resource="myresources",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 2
apiserver_request_total{code="201",component="apiserver",dry_run="",group="mygroup.example.com",resource="myresources",scope="resource",subresource="",verb="POST",version="v1alpha1"} 5
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 9
"#;
        let before = Counters::new();
        let after = parse_request_counters(text);
        let requests = requests(&before, &after);
        assert_eq!(
            requests.by_verb,
            BTreeMap::from([
                ("APPLY".to_owned(), 7),
                ("GET".to_owned(), 3),
                ("PATCH".to_owned(), 2)
            ])
        );
        // The conflicts; the 404s of GETs for missing Deployments are expected.
        assert_eq!(requests.failed, 2);
    }
}
