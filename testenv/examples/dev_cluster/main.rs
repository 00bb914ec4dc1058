//! `dev_cluster`: keeps a testenv control plane running as a local cluster for development,
//! until SIGINT (Ctrl-C), SIGTERM or SIGHUP, then stops it and removes its data.
//!
//! `cargo xtask dev` builds what it needs and runs it with this project's paths (see
//! `xtask/src/dev.rs`). By hand:
//!
//! ```text
//! dev_cluster --state-dir DIR [--with-controller-manager] [--apply PATH]... [--ready-message TEXT]
//! ```
//!
//! - `--state-dir`: made private to this user. It holds `kubeconfig` (written once the API
//!   server is ready, removed when the cluster stops), `bin/kubectl` (a link to the kubectl
//!   used, kept), and `dev-cluster.pid`, locked while a dev cluster runs: a second one on the
//!   same directory says which one runs and exits.
//! - `--apply`: manifests for `kubectl apply -f`, applied once the API server is ready; the
//!   CustomResourceDefinitions among them are waited for until established.
//! - `--ready-message`: printed once all is ready, before the last line, `... running ...`.
//!
//! The binaries are found as testenv finds them (`KUBEBUILDER_ASSETS`, then the
//! `cargo xtask control-plane` cache). `USE_EXISTING_CLUSTER` is ignored: this always starts a
//! control plane of its own, and never applies anything to another cluster.
//!
//! # Guarantees
//!
//! - After a signal, or when a control-plane process dies, every process is stopped and
//!   reaped, and the data directory, the kubeconfig and the pid file are removed.
//! - A dev cluster killed with SIGKILL cannot clean up: its processes keep running. The next
//!   start on the same state directory finds them through the pid file, stops them and removes
//!   their data.

#[cfg(unix)]
mod state;

#[cfg(unix)]
fn main() -> std::process::ExitCode {
    dev::main()
}

#[cfg(not(unix))]
fn main() -> std::process::ExitCode {
    eprintln!("dev-cluster: only Unix systems are supported");
    std::process::ExitCode::FAILURE
}

#[cfg(unix)]
mod dev {
    use std::{
        path::PathBuf,
        process::ExitCode,
        time::{Duration, Instant},
    };

    use anyhow::{Context, bail};
    use testenv::{Binary, TestEnv};
    use tokio::signal::unix::{Signal, SignalKind, signal};

    use crate::state::{self, Record, StateDir};

    /// How often the control plane's processes are checked.
    const CHECK_INTERVAL: Duration = Duration::from_secs(1);
    /// How long a failure waits for the signal that may have caused it; see [`Signals::soon`].
    const SIGNAL_GRACE: Duration = Duration::from_millis(500);
    /// How long CRDs may take to be established.
    const ESTABLISHED_TIMEOUT: &str = "--timeout=60s";
    /// kubectl's `-o name` prefix of a CRD.
    const CRD_PREFIX: &str = "customresourcedefinition.apiextensions.k8s.io/";

    pub(crate) fn main() -> ExitCode {
        let runtime = match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime,
            Err(err) => {
                eprintln!("dev-cluster: error: starting the async runtime: {err}");
                return ExitCode::FAILURE;
            }
        };
        match runtime.block_on(run()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("dev-cluster: error: {err:#}");
                ExitCode::FAILURE
            }
        }
    }

    /// The command line; see the crate docs.
    struct Args {
        state_dir: PathBuf,
        with_controller_manager: bool,
        apply: Vec<PathBuf>,
        ready_message: Option<String>,
    }

    impl Args {
        fn parse() -> anyhow::Result<Args> {
            const USAGE: &str = "usage: dev_cluster --state-dir DIR [--with-controller-manager] \
                                 [--apply PATH]... [--ready-message TEXT]";
            let mut state_dir = None;
            let mut with_controller_manager = false;
            let mut apply = Vec::new();
            let mut ready_message = None;
            let mut args = std::env::args_os().skip(1);
            while let Some(arg) = args.next() {
                let mut value = |name: &str| {
                    args.next()
                        .with_context(|| format!("{name} needs a value; {USAGE}"))
                };
                match arg.to_str() {
                    Some("--state-dir") => state_dir = Some(PathBuf::from(value("--state-dir")?)),
                    Some("--with-controller-manager") => with_controller_manager = true,
                    Some("--apply") => apply.push(PathBuf::from(value("--apply")?)),
                    Some("--ready-message") => {
                        ready_message = Some(
                            value("--ready-message")?
                                .into_string()
                                .map_err(|_| anyhow::anyhow!("--ready-message is not UTF-8"))?,
                        );
                    }
                    _ => bail!("unexpected argument {arg:?}; {USAGE}"),
                }
            }
            Ok(Args {
                state_dir: state_dir
                    .with_context(|| format!("--state-dir is required; {USAGE}"))?,
                with_controller_manager,
                apply,
                ready_message,
            })
        }
    }

    async fn run() -> anyhow::Result<()> {
        let args = Args::parse()?;
        // Before anything starts: a Ctrl-C during the start stops cleanly too.
        let mut signals = Signals::new().context("installing signal handlers")?;
        let state = StateDir::create(&args.state_dir)?;
        let mut pid_file = match state.lock()? {
            Ok(pid_file) => pid_file,
            Err(running) => bail!(already_running(&state, &running)),
        };
        for done in state::clean_up_leftovers(pid_file.previous())? {
            say(&done);
        }
        let pid = std::process::id();
        pid_file.write(&Record {
            pid: Some(pid),
            ..Record::default()
        })?;

        let names = if args.with_controller_manager {
            "etcd, kube-apiserver and kube-controller-manager"
        } else {
            "etcd and kube-apiserver"
        };
        say(&format!("starting {names} on 127.0.0.1 ..."));
        let started = Instant::now();
        let builder = TestEnv::builder()
            .with_controller_manager(args.with_controller_manager)
            .env(|name| {
                (name != "USE_EXISTING_CLUSTER")
                    .then(|| std::env::var_os(name))
                    .flatten()
            });
        let start = tokio::select! {
            start = builder.start() => Ok(start),
            // Dropping the start stops whatever it had started.
            signal = signals.recv() => Err(signal),
        };
        let signal = match start {
            Ok(Ok(env)) => Ok(env),
            Ok(Err(err)) => signals
                .soon()
                .await
                .ok_or(err)
                .context("starting the control plane")
                .map(Err)?,
            Err(signal) => Err(signal),
        };
        let mut env = match signal {
            Ok(env) => env,
            Err(signal) => {
                say(&format!(
                    "{signal}: stopped before the control plane was ready"
                ));
                return Ok(());
            }
        };
        pid_file.write(&Record {
            pid: Some(pid),
            server: Some(env.apiserver_url().to_string()),
            data_dir: Some(env.data_dir().to_owned()),
            processes: env.process_ids(),
        })?;

        let served = serve(&mut env, &state, &args, &mut signals, started).await;
        say("stopping ...");
        let stopping = Instant::now();
        let data_dir = env.data_dir().to_owned();
        let stopped = env.stop();
        let kubeconfig = state.kubeconfig();
        let removed = match std::fs::remove_file(&kubeconfig) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(err).with_context(|| format!("removing {}", kubeconfig.display()))
            }
            _ => Ok(()),
        };
        drop(pid_file);
        stopped.context("stopping the control plane")?;
        removed?;
        let stopped = format!(
            "stopped {names} in {:.1}s, removed {} and {}",
            stopping.elapsed().as_secs_f64(),
            data_dir.display(),
            kubeconfig.display(),
        );
        match served {
            Ok(signal) => {
                say(&format!("{signal}: {stopped}"));
                Ok(())
            }
            Err(err) => {
                say(&format!("{stopped}, after this error:"));
                Err(err)
            }
        }
    }

    /// From a ready control plane to a signal: the kubeconfig, kubectl, the manifests, the
    /// instructions, then watching the processes. Returns the signal that ended it.
    async fn serve(
        env: &mut TestEnv,
        state: &StateDir,
        args: &Args,
        signals: &mut Signals,
        started: Instant,
    ) -> anyhow::Result<&'static str> {
        let version = env
            .client()
            .apiserver_version()
            .await
            .context("asking the API server for its version")?;
        say(&format!(
            "API server {} (Kubernetes {}) ready in {:.1}s",
            env.apiserver_url(),
            version.git_version,
            started.elapsed().as_secs_f64()
        ));
        let kubectl = testenv::find_binary(Binary::Kubectl, |name| std::env::var_os(name))?;
        state.link_kubectl(&kubectl)?;

        if !args.apply.is_empty() {
            let applied = tokio::select! {
                applied = apply(env, &args.apply) => applied,
                signal = signals.recv() => return Ok(signal),
            };
            match applied {
                Ok(applied) => {
                    for line in applied {
                        say(&format!("applied {line}"));
                    }
                }
                Err(err) => return signals.soon().await.ok_or(err),
            }
        }
        let kubeconfig = state.write_kubeconfig(env)?;
        say(&format!("kubeconfig written to {}", kubeconfig.display()));
        if let Some(message) = &args.ready_message {
            println!("\n{}\n", message.trim_end());
        }
        let pid = std::process::id();
        say(&format!(
            "running (pid {pid}); Ctrl-C or `kill {pid}` stops it and removes its data"
        ));

        let mut checks = tokio::time::interval(CHECK_INTERVAL);
        loop {
            tokio::select! {
                signal = signals.recv() => return Ok(signal),
                _ = checks.tick() => {
                    if let Err(died) = env.check_running() {
                        return signals
                            .soon()
                            .await
                            .ok_or(died)
                            .context("the dev cluster failed");
                    }
                }
            }
        }
    }

    /// `kubectl apply -f` of `paths`, then waits until the CRDs among them are established.
    /// Returns kubectl's names of what it applied, CRDs marked as established.
    async fn apply(env: &TestEnv, paths: &[PathBuf]) -> anyhow::Result<Vec<String>> {
        let mut command = env.kubectl()?;
        command.args(["apply", "-o", "name"]);
        for path in paths {
            command.arg("-f").arg(path);
        }
        let stdout = kubectl(command, "apply").await?;
        let applied: Vec<String> = stdout.lines().map(str::to_owned).collect();
        let crds: Vec<&String> = applied
            .iter()
            .filter(|name| name.starts_with(CRD_PREFIX))
            .collect();
        if crds.is_empty() {
            return Ok(applied);
        }
        let mut command = env.kubectl()?;
        command
            .args(["wait", "--for=condition=Established", ESTABLISHED_TIMEOUT])
            .args(&crds);
        kubectl(command, "wait for CRDs").await?;
        Ok(applied
            .into_iter()
            .map(|name| {
                if name.starts_with(CRD_PREFIX) {
                    format!("{name} (established)")
                } else {
                    name
                }
            })
            .collect())
    }

    /// Runs a kubectl command; its stdout, or an error quoting its stderr.
    async fn kubectl(command: std::process::Command, what: &str) -> anyhow::Result<String> {
        let mut command = tokio::process::Command::from(command);
        command.kill_on_drop(true);
        let output = command
            .output()
            .await
            .with_context(|| format!("running kubectl ({what})"))?;
        if !output.status.success() {
            bail!(
                "kubectl ({what}) failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim_end()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The error for a state directory whose dev cluster is still running.
    fn already_running(state: &StateDir, running: &Record) -> String {
        let who = running
            .pid
            .map_or_else(|| "another process".to_owned(), |pid| format!("pid {pid}"));
        let server = running.server.as_deref().map_or_else(
            || "still starting".to_owned(),
            |url| format!("API server {url}"),
        );
        let stop = running.pid.map_or_else(
            || "stop it first (Ctrl-C in its terminal)".to_owned(),
            |pid| format!("stop it first (Ctrl-C in its terminal, or `kill {pid}`)"),
        );
        format!(
            "a dev cluster is already running ({who}, {server}), with its kubeconfig at {}: \
             use that one, or {stop}",
            state.kubeconfig().display()
        )
    }

    fn say(line: &str) {
        println!("dev-cluster: {line}");
    }

    /// The signals that stop a dev cluster.
    struct Signals {
        interrupt: Signal,
        terminate: Signal,
        hangup: Signal,
    }

    impl Signals {
        fn new() -> std::io::Result<Signals> {
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
                hangup: signal(SignalKind::hangup())?,
            })
        }

        /// A signal that comes within a moment. Ctrl-C reaches the control plane's processes
        /// and kubectl as well (they share the terminal's process group), and they may fail
        /// before this process sees its own SIGINT: then their failure is a stop, not an
        /// error.
        async fn soon(&mut self) -> Option<&'static str> {
            tokio::select! {
                signal = self.recv() => Some(signal),
                () = tokio::time::sleep(SIGNAL_GRACE) => None,
            }
        }

        /// Waits for the next one; its name.
        async fn recv(&mut self) -> &'static str {
            tokio::select! {
                _ = self.interrupt.recv() => "SIGINT",
                _ = self.terminate.recv() => "SIGTERM",
                _ = self.hangup.recv() => "SIGHUP",
            }
        }
    }
}
