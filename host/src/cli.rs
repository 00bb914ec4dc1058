//! Command-line arguments, parsed raw and then turned into a validated [`Host`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

pub use crate::check::CheckArgs;
use crate::leader::LeaderElection;
use crate::manager::Host;
pub use crate::offline::ReconcileArgs;
use crate::plugin::{CompileIn, SandboxConfig};
use crate::recorder::{EventsApi, RecorderConfig};

/// The pod's namespace, as the kubelet mounts it with the service account token.
const IN_CLUSTER_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Runs Kubernetes reconcilers written as WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "wasm-reconciler", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load the plugins and run their controllers until SIGINT or SIGTERM.
    Run(Box<RunArgs>),
    /// Load plugins offline (no cluster) and print their contract, what they declare and
    /// the permissions the host needs for them; exit 1 if one is invalid.
    Check(CheckArgs),
    /// Run one reconcile offline (no cluster), against an API server in memory seeded from
    /// files, and print what the plugin did: Events, applied objects, status patches, reads
    /// and the outcome. Exit 1 only if the reconcile could not run.
    Reconcile(ReconcileArgs),
    /// Compile a component read on stdin for `run`, writing the artifact to stdout (`run`
    /// starts this itself, once per plugin to compile).
    #[command(hide = true)]
    Compile(CompileArgs),
}

/// Arguments of `compile`: the engine settings of the `run` that asked.
#[derive(Debug, clap::Args)]
pub struct CompileArgs {
    /// `run`'s `--max-instances`.
    #[arg(long, value_name = "N")]
    pub max_instances: u32,

    /// `run`'s instance memory limit, in bytes.
    #[arg(long, value_name = "BYTES")]
    pub memory_limit_bytes: usize,
}

impl CompileArgs {
    /// The sandbox whose engine settings the artifact must match.
    pub fn sandbox(&self) -> SandboxConfig {
        SandboxConfig::default()
            .max_instances(self.max_instances)
            .memory_limit(self.memory_limit_bytes)
    }
}

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Directory holding the plugins (`*.wasm`).
    #[arg(long, env = "WASM_RECONCILER_PLUGINS", value_name = "DIR")]
    pub plugins: PathBuf,

    /// Kubeconfig to use; by default `KUBECONFIG`, `~/.kube/config`, or the in-cluster
    /// service account.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Where compiled plugins are kept between starts (made private to this user). By
    /// default `$XDG_CACHE_HOME/wasm-reconciler` or `~/.cache/wasm-reconciler`; without
    /// either, plugins are compiled at every start.
    #[arg(long, env = "WASM_RECONCILER_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Compile plugins in the host's own process rather than in a child process. The child
    /// keeps the compiler's memory (tens of MiB per plugin, more for Python or JavaScript
    /// ones) out of the host, and a component that crashes the compiler out of it too.
    #[arg(long)]
    pub compile_in_process: bool,

    /// Most plugin instances alive at once, across all plugins; each plugin gets an equal
    /// share as its concurrency.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub max_instances: u32,

    /// Memory the host may use, in MiB (default: 75 % of the cgroup's memory limit, or of
    /// 512 MiB without one). Shared out among the plugins after the host's own needs.
    #[arg(long, env = "WASM_RECONCILER_MEMORY_BUDGET_MIB", value_name = "MIB")]
    pub memory_budget_mib: Option<u64>,

    /// The limits of each plugin call.
    #[command(flatten)]
    pub limits: CallLimitArgs,

    /// Wall-clock time allowed for a plugin's `metadata` call at load, in seconds.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub metadata_timeout_secs: u64,

    /// Make each plugin's API calls as the ServiceAccount named like the plugin in this
    /// namespace, so that the API server enforces per-plugin RBAC too.
    #[arg(
        long,
        env = "WASM_RECONCILER_IMPERSONATE_PLUGINS",
        value_name = "NAMESPACE"
    )]
    pub impersonate_plugins: Option<String>,

    /// New Events waiting for their first write before recording another waits for room.
    #[arg(long, default_value_t = 4096, value_name = "N")]
    pub event_queue: usize,

    /// Event writes in flight at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub event_writers: usize,

    /// Which Events API to write: `events.k8s.io/v1`, or `v1` (core) for clusters without it.
    #[arg(long, default_value = "events.k8s.io/v1", value_name = "API", value_parser = parse_events_api)]
    pub events_api: EventsApi,

    /// Entries in each event recorder cache (series, aggregates, spam buckets).
    #[arg(long, default_value_t = 4096, value_name = "N")]
    pub event_cache_size: usize,

    /// Spam filter: new Events one object may get in a burst, per plugin and type.
    #[arg(long, default_value_t = 25, value_name = "N")]
    pub event_spam_burst: u32,

    /// Spam filter: seconds for one more new Event to be allowed after a burst.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub event_spam_refill_secs: u64,

    /// Where to serve `/healthz` and `/readyz` (for the kubelet's probes).
    #[arg(long, default_value = "0.0.0.0:8081", value_name = "ADDR")]
    pub health_addr: SocketAddr,

    /// Where to serve `/metrics` (Prometheus text format).
    #[arg(long, default_value = "0.0.0.0:8080", value_name = "ADDR")]
    pub metrics_addr: SocketAddr,

    /// How long shutdown waits for reconciles and queued events, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub shutdown_grace_secs: u64,

    /// Take part in leader election on a Lease, so that of several replicas only one
    /// reconciles; the others load their plugins and wait to take over.
    #[arg(long, env = "WASM_RECONCILER_LEADER_ELECT")]
    pub leader_elect: bool,

    /// The Lease's namespace (default: the pod's own, else `default`).
    #[arg(long, value_name = "NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// The Lease's name.
    #[arg(long, default_value = "wasm-reconciler", value_name = "NAME")]
    pub leader_election_id: String,

    /// How long the Lease stays held without a renewal, in seconds.
    #[arg(long, default_value_t = 15, value_name = "SECS")]
    pub leader_election_lease_duration_secs: u64,

    /// How long the leader keeps trying to renew before it gives up, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub leader_election_renew_deadline_secs: u64,

    /// How often candidates try to take the Lease and the leader renews it, in seconds.
    #[arg(long, default_value_t = 2, value_name = "SECS")]
    pub leader_election_retry_period_secs: u64,
}

/// The limits of one plugin call, the same for `run` and `reconcile`.
#[derive(Debug, Clone, clap::Args)]
pub struct CallLimitArgs {
    /// Linear memory limit of one plugin instance, in MiB.
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    pub memory_limit_mib: usize,

    /// Guest CPU time allowed per call, in milliseconds.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub cpu_limit_ms: u64,

    /// Wall-clock time allowed per call (host imports and time blocked included), in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub call_timeout_secs: u64,

    /// API calls one reconcile may make; more fail with `api(429, ...)`.
    #[arg(long, default_value_t = crate::manager::DEFAULT_MAX_API_CALLS, value_name = "N")]
    pub max_api_calls: u32,
}

impl CallLimitArgs {
    /// A sandbox with these limits and `max_instances` slots.
    pub fn sandbox(&self, max_instances: u32) -> SandboxConfig {
        SandboxConfig::default()
            .max_instances(max_instances)
            .memory_limit(self.memory_limit_mib.saturating_mul(1 << 20))
            .cpu_limit(Duration::from_millis(self.cpu_limit_ms))
            .call_timeout(Duration::from_secs(self.call_timeout_secs))
    }
}

impl RunArgs {
    /// The leader election these arguments ask for, if any.
    ///
    /// # Errors
    ///
    /// Fails unless retry period < renew deadline < lease duration.
    pub fn leader_election(&self) -> anyhow::Result<Option<LeaderElection>> {
        if !self.leader_elect {
            return Ok(None);
        }
        let (lease, renew, retry) = (
            self.leader_election_lease_duration_secs,
            self.leader_election_renew_deadline_secs,
            self.leader_election_retry_period_secs,
        );
        anyhow::ensure!(
            0 < retry && retry < renew && renew < lease,
            "leader election needs retry period < renew deadline < lease duration (got {retry} s, {renew} s, {lease} s)"
        );
        let namespace = self
            .leader_election_namespace
            .clone()
            .or_else(|| {
                std::fs::read_to_string(IN_CLUSTER_NAMESPACE)
                    .ok()
                    .map(|namespace| namespace.trim().to_owned())
                    .filter(|namespace| !namespace.is_empty())
            })
            .unwrap_or_else(|| "default".to_owned());
        let mut election = LeaderElection::new(namespace, &self.leader_election_id);
        election.lease_duration = Duration::from_secs(lease);
        election.renew_deadline = Duration::from_secs(renew);
        election.retry_period = Duration::from_secs(retry);
        Ok(Some(election))
    }

    /// The host these arguments describe.
    pub fn host(&self) -> Host {
        let sandbox = self
            .limits
            .sandbox(self.max_instances)
            .metadata_timeout(Duration::from_secs(self.metadata_timeout_secs));
        let mut host = Host::new(&self.plugins)
            .sandbox(sandbox)
            .max_api_calls(self.limits.max_api_calls)
            .recorder(
                RecorderConfig::default()
                    .queue_capacity(self.event_queue)
                    .concurrent_writes(self.event_writers)
                    .events_api(self.events_api)
                    .cache_size(self.event_cache_size)
                    .spam_filter(
                        self.event_spam_burst,
                        Duration::from_secs(self.event_spam_refill_secs),
                    ),
            )
            .shutdown_grace(Duration::from_secs(self.shutdown_grace_secs))
            .health_addr(self.health_addr)
            .metrics_addr(self.metrics_addr);
        if let Some(mib) = self.memory_budget_mib {
            host = host.memory_budget(mib.saturating_mul(1 << 20));
        }
        if let Some(namespace) = &self.impersonate_plugins {
            host = host.impersonate_plugins(namespace.clone());
        }
        if let Some(dir) = self.cache_dir.clone().or_else(default_cache_dir) {
            host = host.cache_dir(dir);
        }
        if !self.compile_in_process {
            match std::env::current_exe() {
                Ok(binary) => host = host.compile_in(CompileIn::Child(binary)),
                Err(error) => {
                    tracing::warn!(%error, "cannot find the host binary; compiling plugins in process");
                }
            }
        }
        host
    }
}

/// `$XDG_CACHE_HOME/wasm-reconciler`, else `$HOME/.cache/wasm-reconciler`.
fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|dir| !dir.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        })?;
    Some(base.join("wasm-reconciler"))
}

fn parse_events_api(value: &str) -> Result<EventsApi, String> {
    match value {
        "events.k8s.io/v1" => Ok(EventsApi::EventsV1),
        "v1" | "core/v1" => Ok(EventsApi::CoreV1),
        other => Err(format!("{other:?} is not `events.k8s.io/v1` or `v1`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_needs_a_plugins_directory() {
        let parsed = Cli::try_parse_from(["wasm-reconciler", "run", "--plugins", "/plugins"]);
        let Ok(Cli {
            command: Command::Run(args),
        }) = parsed
        else {
            panic!("run --plugins did not parse: {parsed:?}");
        };
        assert_eq!(args.plugins, PathBuf::from("/plugins"));
        assert_eq!(args.limits.memory_limit_mib, 64);
        assert_eq!(args.events_api, EventsApi::EventsV1);
    }

    #[test]
    fn core_v1_events_can_be_chosen() {
        let parsed = Cli::try_parse_from([
            "wasm-reconciler",
            "run",
            "--plugins",
            "p",
            "--events-api",
            "v1",
        ]);
        let Ok(Cli {
            command: Command::Run(args),
        }) = parsed
        else {
            panic!("did not parse: {parsed:?}");
        };
        assert_eq!(args.events_api, EventsApi::CoreV1);
        assert!(
            Cli::try_parse_from([
                "wasm-reconciler",
                "run",
                "--plugins",
                "p",
                "--events-api",
                "v2"
            ])
            .is_err()
        );
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
