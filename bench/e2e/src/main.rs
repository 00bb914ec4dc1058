//! The end-to-end benchmark behind `cargo xtask bench`: the `wasm-reconciler` host running the
//! example plugin against `native-myresource`, the same logic as a plain kube-rs controller.
//!
//! For each object count and run, and for each controller in turn (host, native, host, ...),
//! [`run::run`] starts a fresh control plane (testenv), installs the CRD, starts the controller
//! as a subprocess, creates the objects all at once and measures until everything settled.
//! [`measure`] reads the API server's counters and `/proc`; [`report`] turns the runs into markdown: the median per object count and controller, then
//! every run. It measures and reports; nothing passes or fails on timing.
//!
//! `cargo xtask bench` builds everything and passes the paths; see `docs/benchmarks.md`.

mod lifecycle;
mod measure;
mod report;
mod run;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

/// Runs the end-to-end benchmark (use `cargo xtask bench`, which builds its inputs).
#[derive(Debug, Parser)]
#[command(name = "e2e-bench", about)]
struct Args {
    /// The release `wasm-reconciler` binary.
    #[arg(long, value_name = "PATH")]
    host: PathBuf,

    /// The release `native-myresource` binary.
    #[arg(long, value_name = "PATH")]
    native: PathBuf,

    /// A directory holding only `myresource.wasm`, for the host.
    #[arg(long, value_name = "DIR")]
    plugins: PathBuf,

    /// A directory holding the fleet's plugins (`fleet-0.wasm`, ...), for `--kinds` above 1.
    #[arg(long, value_name = "DIR")]
    fleet_plugins: Option<PathBuf>,

    /// The MyResource CRD (`plugins/myresource/manifests/crd.yaml`).
    #[arg(long, value_name = "PATH")]
    crd: PathBuf,

    /// How many MyResources each run creates, comma-separated.
    #[arg(long, value_name = "N,...", value_delimiter = ',', default_values_t = [1000, 5000])]
    objects: Vec<usize>,

    /// Kinds, comma-separated: 1 runs the example; K above 1 runs a fleet of K kinds with the
    /// objects of each, one host with K plugins against K native processes.
    #[arg(long, value_name = "K,...", value_delimiter = ',', default_values_t = [1])]
    kinds: Vec<usize>,

    /// Instance slots (`--max-instances`) of the host running a fleet: by default 32 per
    /// plugin, the concurrency of each native controller. Give 32 to run the host with its
    /// default, shared by all its plugins.
    #[arg(long, value_name = "N")]
    fleet_host_instances: Option<usize>,

    /// Runs per object count and controller.
    #[arg(long, value_name = "R", default_value_t = 3)]
    runs: usize,

    /// Which controllers to run, comma-separated (both by default).
    #[arg(
        long,
        value_name = "NAME,...",
        value_delimiter = ',',
        default_values = ["host", "native"]
    )]
    controllers: Vec<run::Controller>,

    /// Instead of convergence, measure the plugin lifecycle with the largest of `--kinds`
    /// plugins: start with an empty and a warm compile cache, and hot swaps.
    #[arg(long)]
    lifecycle: bool,

    /// With `--lifecycle`: more plugins to start beside the fleet (e.g. the Python and
    /// JavaScript examples), repeated.
    #[arg(long, value_name = "PATH")]
    extra_plugin: Vec<PathBuf>,

    /// With `--lifecycle`: the CRDs the extra plugins reconcile, repeated.
    #[arg(long, value_name = "PATH")]
    extra_crd: Vec<PathBuf>,

    /// Where to write the report (markdown); the controllers' logs go beside it.
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    anyhow::ensure!(
        args.objects.iter().all(|&n| n > 0),
        "--objects must be positive"
    );
    anyhow::ensure!(
        args.kinds.iter().all(|&k| k > 0),
        "--kinds must be positive"
    );
    anyhow::ensure!(
        args.kinds.iter().all(|&k| k == 1) || args.fleet_plugins.is_some(),
        "--kinds above 1 needs --fleet-plugins"
    );
    let log_dir = args.out.with_extension("logs");
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("cannot create {}", log_dir.display()))?;
    let setup = run::Setup {
        host: args.host,
        native: args.native,
        plugins: args.plugins,
        fleet_plugins: args.fleet_plugins,
        fleet_host_instances: args.fleet_host_instances,
        crd: args.crd,
        log_dir,
        clock_ticks: measure::clock_ticks_per_second(),
    };

    let machine = report::Machine::describe();
    eprintln!("e2e-bench on {machine}");
    if args.lifecycle {
        let kinds = args.kinds.iter().copied().max().unwrap_or(1);
        let markdown = format!(
            "Machine: {machine}\n\n{}",
            lifecycle::run(
                &setup,
                &lifecycle::Extras {
                    plugins: args.extra_plugin,
                    crds: args.extra_crd,
                },
                kinds,
                args.runs
            )
            .await?
        );
        print!("{markdown}");
        std::fs::write(&args.out, &markdown)
            .with_context(|| format!("cannot write {}", args.out.display()))?;
        eprintln!("report written to {}", args.out.display());
        return Ok(());
    }
    let mut runs = Vec::new();
    for &kinds in &args.kinds {
        for &objects in &args.objects {
            let what = report::objects_label(kinds, objects);
            for index in 1..=args.runs {
                for &controller in &args.controllers {
                    eprintln!(
                        "==> {what} objects, run {index}/{}, {}",
                        args.runs,
                        controller.name()
                    );
                    let result = run::run(&setup, controller, objects, kinds, index)
                        .await
                        .with_context(|| {
                            format!("{} with {what} objects, run {index}", controller.name())
                        })?;
                    eprintln!("    {}", result.summary());
                    runs.push(result);
                }
            }
        }
    }

    let markdown = report::markdown(&machine, &runs);
    print!("{markdown}");
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&args.out, &markdown)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!("report written to {}", args.out.display());
    Ok(())
}
