//! The plugin lifecycle benchmark (`cargo xtask bench --lifecycle`): how long the host takes
//! from start to running K Rust plugins and any extra ones (`cargo xtask` adds the Python and
//! JavaScript examples) with an empty compile cache and with a warm one, and how long a new
//! version of a running plugin takes from the file change to serving.
//!
//! # Steps, per run
//!
//! 1. Start a control plane with the fleet's K CRDs and the extra plugins' CRDs. Copy the
//!    plugins into a plugins directory of the run's own, with an empty compile cache.
//! 2. Cold: start the host; time until its metrics say all K plugins run
//!    (`wasm_reconciler_plugins_loaded`), i.e. loaded and their controllers started, and until
//!    `/readyz` answers `200` (their watch caches synced too). Stop it.
//! 3. Warm: the same again with the cache the cold start filled.
//! 4. Swaps, on the warm host: rename a new version of `fleet-0.wasm` into place (the same
//!    component with one more custom section: another SHA-256, the same behaviour) and time
//!    until the host has swapped it in (`wasm_reconciler_plugin_changes_total{change="swapped"}`
//!    grows). The first new version is compiled; going back to the previous one, and forth
//!    again, comes from the compile cache: the swap itself.
//!
//! Each timing polls every 5 ms, so it is at most that late.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use testenv::TestEnv;

use crate::report::median;
use crate::run::{
    Controller, Process, Setup, fleet_budget_mib, free_port, http_get, is_ready, kubectl, spawn,
    start_control_plane,
};

/// How often the metrics and `/readyz` are polled.
const POLL: Duration = Duration::from_millis(5);
/// Longest wait for any one step.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);
/// Swaps between cached versions, after the first (compiled) one.
const CACHED_SWAPS: usize = 4;

/// Plugins started beside the fleet, and the CRDs they need.
pub(crate) struct Extras {
    pub(crate) plugins: Vec<PathBuf>,
    pub(crate) crds: Vec<PathBuf>,
}

/// One run's timings.
pub(crate) struct LifecycleRun {
    cold_running: Duration,
    cold_ready: Duration,
    warm_running: Duration,
    warm_ready: Duration,
    swap_compiled: Duration,
    swaps_cached: Vec<Duration>,
}

/// Runs the lifecycle benchmark `runs` times with `kinds` plugins; returns the report.
pub(crate) async fn run(
    setup: &Setup,
    extras: &Extras,
    kinds: usize,
    runs: usize,
) -> anyhow::Result<String> {
    let mut results = Vec::new();
    let what = describe(kinds, extras);
    for index in 1..=runs {
        eprintln!("==> lifecycle with {what}, run {index}/{runs}");
        let result = one(setup, extras, kinds, index).await?;
        eprintln!(
            "    cold {:.3} s ({:.3} s ready), warm {:.3} s ({:.3} s ready), swap {:.3} s compiled, {:.1} ms cached",
            result.cold_running.as_secs_f64(),
            result.cold_ready.as_secs_f64(),
            result.warm_running.as_secs_f64(),
            result.warm_ready.as_secs_f64(),
            result.swap_compiled.as_secs_f64(),
            median(
                result
                    .swaps_cached
                    .iter()
                    .map(|d| d.as_secs_f64() * 1e3)
                    .collect()
            ),
        );
        results.push(result);
    }
    Ok(markdown(&what, &results))
}

/// `8 plugins (bench/fleet-plugin) and myresource_py.wasm, myresource_js.wasm`.
fn describe(kinds: usize, extras: &Extras) -> String {
    let mut what = format!("{kinds} plugins (`bench/fleet-plugin`)");
    let names: Vec<String> = extras
        .plugins
        .iter()
        .filter_map(|path| path.file_name())
        .map(|name| format!("`{}`", name.to_string_lossy()))
        .collect();
    if !names.is_empty() {
        what.push_str(&format!(" and {}", names.join(", ")));
    }
    what
}

async fn one(
    setup: &Setup,
    extras: &Extras,
    kinds: usize,
    index: usize,
) -> anyhow::Result<LifecycleRun> {
    let fleet = setup
        .fleet_plugins
        .as_ref()
        .context("the lifecycle benchmark needs the fleet's plugins")?;
    let (env, _) = start_control_plane(setup, kinds, STEP_TIMEOUT).await?;
    for crd in &extras.crds {
        let crd = crd.to_string_lossy();
        kubectl(&env, &["apply", "-f", &crd], None).await?;
        let established = [
            "wait",
            "--for=condition=Established",
            "-f",
            &crd,
            "--timeout=60s",
        ];
        kubectl(&env, &established, None).await?;
    }
    let label = format!("lifecycle-{kinds}-run-{index}");
    let plugins = fresh_dir(&setup.log_dir.join(format!("{label}-plugins")))?;
    let cache = fresh_dir(&setup.log_dir.join(format!("{label}-compile-cache")))?;
    for member in 0..kinds {
        let name = format!("fleet-{member}.wasm");
        std::fs::copy(fleet.join(&name), plugins.join(&name))
            .with_context(|| format!("copying {name}"))?;
    }
    for extra in &extras.plugins {
        let name = extra
            .file_name()
            .context("an extra plugin without a file name")?;
        std::fs::copy(extra, plugins.join(name))
            .with_context(|| format!("copying {}", extra.display()))?;
    }
    let plugin_count = kinds + extras.plugins.len();

    let start = |phase: &str| {
        let log = format!("{label}-{phase}");
        Host::start(setup, &env, &plugins, &cache, plugin_count, &log)
    };
    let mut host = start("cold")?;
    let (cold_running, cold_ready) = host.wait_running_and_ready(plugin_count).await?;
    host.process.stop().await;

    // The same directory and cache again: every plugin comes from the cache.
    let mut host = start("warm")?;
    let (warm_running, warm_ready) = host.wait_running_and_ready(plugin_count).await?;

    let original = std::fs::read(plugins.join("fleet-0.wasm"))?;
    let versions = [with_custom_section(&original, "bench-variant"), original];
    let mut swaps = Vec::new();
    for (swap, bytes) in versions.iter().cycle().take(CACHED_SWAPS + 1).enumerate() {
        let staged = plugins.join(".fleet-0.wasm.tmp");
        std::fs::write(&staged, bytes)?;
        let started = Instant::now();
        std::fs::rename(&staged, plugins.join("fleet-0.wasm"))?;
        let swapped = f64::from(u32::try_from(swap + 1)?);
        host.wait_for("the swap", |metrics| {
            metric(
                metrics,
                "wasm_reconciler_plugin_changes_total{change=\"swapped\"}",
            ) >= swapped
        })
        .await?;
        swaps.push(started.elapsed());
    }
    host.process.stop().await;
    env.stop().context("stopping the control plane")?;
    Ok(LifecycleRun {
        cold_running,
        cold_ready,
        warm_running,
        warm_ready,
        swap_compiled: swaps[0],
        swaps_cached: swaps[1..].to_vec(),
    })
}

/// The host under measurement, with its metrics address.
struct Host {
    process: Process,
    metrics: std::net::SocketAddr,
    started: Instant,
}

impl Host {
    fn start(
        setup: &Setup,
        env: &TestEnv,
        plugins: &Path,
        cache: &Path,
        kinds: usize,
        label: &str,
    ) -> anyhow::Result<Host> {
        let metrics = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let instances = 32;
        let mut command = tokio::process::Command::new(&setup.host);
        command
            .arg("run")
            .arg("--plugins")
            .arg(plugins)
            .arg("--cache-dir")
            .arg(cache)
            .arg("--metrics-addr")
            .arg(metrics.to_string())
            .arg("--max-instances")
            .arg(instances.to_string())
            .arg("--memory-budget-mib")
            .arg(fleet_budget_mib(kinds, instances).to_string());
        let log = setup.log_dir.join(format!("{label}.log"));
        let started = Instant::now();
        let process = spawn(command, Controller::Host, env.kubeconfig_path(), &log)?;
        Ok(Host {
            process,
            metrics,
            started,
        })
    }

    /// From start until `kinds` plugins run, and until ready.
    async fn wait_running_and_ready(
        &mut self,
        kinds: usize,
    ) -> anyhow::Result<(Duration, Duration)> {
        let expected = f64::from(u32::try_from(kinds)?);
        self.wait_for("the plugins to run", |metrics| {
            metric(metrics, "wasm_reconciler_plugins_loaded") >= expected
        })
        .await?;
        let running = self.started.elapsed();
        let deadline = Instant::now() + STEP_TIMEOUT;
        while !is_ready(self.process.health).await {
            self.process.check_running()?;
            if Instant::now() > deadline {
                bail!("the host was not ready within {STEP_TIMEOUT:?}");
            }
            tokio::time::sleep(POLL).await;
        }
        Ok((running, self.started.elapsed()))
    }

    /// Polls the metrics until `done` says so.
    async fn wait_for(&mut self, what: &str, done: impl Fn(&str) -> bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            self.process.check_running()?;
            if let Some((_, text)) = http_get(self.metrics, "/metrics").await
                && done(&text)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for {what}");
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// The value of `name{labels}` in Prometheus text, 0 if absent.
fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// An empty directory at `path`.
fn fresh_dir(path: &Path) -> anyhow::Result<PathBuf> {
    if path.exists() {
        std::fs::remove_dir_all(path).with_context(|| format!("emptying {}", path.display()))?;
    }
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    Ok(path.to_owned())
}

/// `component` with a custom section `name` appended: another file, the same component.
fn with_custom_section(component: &[u8], name: &str) -> Vec<u8> {
    let mut section = Vec::new();
    leb128(&mut section, name.len());
    section.extend_from_slice(name.as_bytes());
    section.extend_from_slice(b"a new version for the benchmark");
    let mut bytes = component.to_vec();
    bytes.push(0); // custom section
    leb128(&mut bytes, section.len());
    bytes.extend_from_slice(&section);
    bytes
}

fn leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = u8::try_from(value & 0x7f).unwrap_or(0);
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn markdown(what: &str, runs: &[LifecycleRun]) -> String {
    let med = |f: &dyn Fn(&LifecycleRun) -> Duration| {
        median(runs.iter().map(|run| f(run).as_secs_f64()).collect())
    };
    let cached: Vec<f64> = runs
        .iter()
        .flat_map(|run| run.swaps_cached.iter().map(|d| d.as_secs_f64() * 1e3))
        .collect();
    let mut text = format!(
        "## Plugin lifecycle: {what}, median of {} runs\n\n\
         | compile cache | start → all plugins running | start → ready (watch caches synced) |\n\
         |---|---|---|\n",
        runs.len()
    );
    text.push_str(&format!(
        "| empty (cold) | {:.3} s | {:.3} s |\n| warm | {:.3} s | {:.3} s |\n\n",
        med(&|run| run.cold_running),
        med(&|run| run.cold_ready),
        med(&|run| run.warm_running),
        med(&|run| run.warm_ready),
    ));
    text.push_str(&format!(
        "| hot swap of `fleet-0.wasm`, file renamed into place → new version serving | median |\n\
         |---|---|\n\
         | new version (compiled) | {:.3} s |\n\
         | version already in the compile cache ({} swaps) | {:.1} ms |\n",
        med(&|run| run.swap_compiled),
        cached.len(),
        median(cached.clone()),
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_encodes_seven_bits_at_a_time() {
        let mut out = Vec::new();
        leb128(&mut out, 624_485);
        assert_eq!(out, [0xe5, 0x8e, 0x26]);
    }
}
