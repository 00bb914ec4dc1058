//! The runs as markdown: the machine, the median per object count and controller, then every
//! run as measured.

use std::fmt::{self, Write as _};
use std::time::Duration;

use crate::run::{Controller, RunResult, seconds};

/// Verbs with a column of their own; the rest are summed as "other".
const VERBS: [&str; 4] = ["GET", "APPLY", "PATCH", "POST"];

/// What the numbers were measured on.
pub(crate) struct Machine {
    date: String,
    cores: usize,
    cpu: String,
}

impl Machine {
    /// The current date (UTC), the cores this process may use, and the CPU model.
    pub(crate) fn describe() -> Machine {
        let date = std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .ok()
            .and_then(|output| String::from_utf8(output.stdout).ok())
            .map_or_else(|| "unknown date".to_owned(), |date| date.trim().to_owned());
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|line| line.strip_prefix("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        Machine {
            date,
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            cpu,
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {} cores ({})", self.date, self.cores, self.cpu)
    }
}

/// The whole report.
pub(crate) fn markdown(machine: &Machine, runs: &[RunResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# End-to-end: wasm-reconciler against native kube-rs\n"
    );
    let _ = writeln!(out, "Measured {machine}.\n");
    let _ = writeln!(
        out,
        "Median of the runs per object count and controller. Times are from the first create; \
         requests and CPU from just before it until the controller went quiet. With a fleet \
         (`K × N`), CPU and RSS are summed over the controller's processes (one host, or K \
         native controllers); idle RSS is once ready, before the first create.\n"
    );
    let _ = writeln!(
        out,
        "| objects | controller | all converged | all `Created` Events | Events written | \
         API requests (GET / APPLY / PATCH / POST / other) | failed requests | controller CPU | \
         idle RSS | peak RSS | API server + etcd CPU | startup |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut groups: Vec<(usize, usize, Controller)> = Vec::new();
    for run in runs {
        if !groups.contains(&(run.kinds, run.objects, run.controller)) {
            groups.push((run.kinds, run.objects, run.controller));
        }
    }
    for (kinds, objects, controller) in groups {
        let group: Vec<&RunResult> = runs
            .iter()
            .filter(|run| {
                run.kinds == kinds && run.objects == objects && run.controller == controller
            })
            .collect();
        let median_of = |value: &dyn Fn(&RunResult) -> f64| {
            median(group.iter().map(|run| value(run)).collect())
        };
        let median_time = |value: &dyn Fn(&RunResult) -> Option<Duration>| {
            // A median over runs that got there; say how many did not.
            let times: Vec<f64> = group
                .iter()
                .filter_map(|run| value(run))
                .map(|time| time.as_secs_f64())
                .collect();
            let missing = group.len() - times.len();
            match (times.is_empty(), missing) {
                (true, _) => "never".to_owned(),
                (false, 0) => format!("{:.2} s", median(times)),
                (false, missing) => format!(
                    "{:.2} s ({missing} of {} runs never)",
                    median(times),
                    group.len()
                ),
            }
        };
        let requests: Vec<String> = VERBS
            .iter()
            .map(|&verb| verb_count(run_verb(verb), &group))
            .chain(std::iter::once(verb_count(other_verbs, &group)))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.0} | {} | {:.0} | {:.2} s | {:.0} MiB | {:.0} MiB | {:.2} s | {:.2} s |",
            objects_label(kinds, objects),
            controller.name(),
            median_time(&|run| run.converged.all_after),
            median_time(&|run| run.events.all_after),
            median_of(&|run| run.events.done as f64),
            requests.join(" / "),
            median_of(&|run| run.requests.failed as f64),
            median_of(&|run| run.cpu),
            median_of(&|run| run.idle_rss_mib),
            median_of(&|run| run.peak_rss_mib),
            median_of(&|run| run.control_plane_cpu),
            median_of(&|run| run.startup.as_secs_f64()),
        );
    }

    let _ = writeln!(out, "\n## Every run\n");
    let _ = writeln!(
        out,
        "| objects | run | controller | created | converged | `Created` Events | requests by verb (failed) | \
         controller CPU | idle RSS | peak RSS | API server + etcd CPU | startup | load average |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for run in runs {
        let verbs: Vec<String> = run
            .requests
            .by_verb
            .iter()
            .map(|(verb, count)| format!("{verb} {count}"))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} s | {} ({}) | {} ({}) | {} ({}) | {:.2} s | {:.0} MiB | {:.0} MiB | {:.2} s | {:.2} s | {} |",
            objects_label(run.kinds, run.objects),
            run.run,
            run.controller.name(),
            run.created.as_secs_f64(),
            seconds(run.converged.all_after),
            run.converged.done,
            seconds(run.events.all_after),
            run.events.done,
            verbs.join(", "),
            run.requests.failed,
            run.cpu,
            run.idle_rss_mib,
            run.peak_rss_mib,
            run.control_plane_cpu,
            run.startup.as_secs_f64(),
            run.load,
        );
    }
    out
}

/// `1000`, or `10 × 1000` for a fleet of 10 kinds.
pub(crate) fn objects_label(kinds: usize, objects: usize) -> String {
    if kinds == 1 {
        objects.to_string()
    } else {
        format!("{kinds} × {objects}")
    }
}

/// Selects the count of one verb.
fn run_verb(verb: &'static str) -> impl Fn(&RunResult) -> u64 {
    move |run| run.requests.by_verb.get(verb).copied().unwrap_or(0)
}

/// The count of every verb without a column.
fn other_verbs(run: &RunResult) -> u64 {
    run.requests
        .by_verb
        .iter()
        .filter(|(verb, _)| !VERBS.contains(&verb.as_str()))
        .map(|(_, count)| count)
        .sum()
}

fn verb_count(count: impl Fn(&RunResult) -> u64, group: &[&RunResult]) -> String {
    format!(
        "{:.0}",
        median(group.iter().map(|run| count(run) as f64).collect())
    )
}

/// The median; the mean of the middle two for an even count, 0 for none.
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    match values.len() {
        0 => 0.0,
        len if len % 2 == 1 => values[middle],
        _ => (values[middle - 1] + values[middle]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_middle_or_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }
}
