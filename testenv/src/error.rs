//! The one error type of this crate; each message says how to fix the problem.

use std::{path::PathBuf, process::ExitStatus, time::Duration};

use crate::Binary;

/// Why a [`TestEnv`](crate::TestEnv) could not be started, used or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A control-plane binary is in none of the places searched (see [`find_binary`](crate::find_binary)).
    #[error(
        "{binary} not found: set {var} or KUBEBUILDER_ASSETS, or run `{command}` (looked for {searched})",
        var = .binary.env_var(),
        command = .binary.xtask_command(),
        searched = display_paths(.searched)
    )]
    BinaryNotFound {
        /// The binary that is missing.
        binary: Binary,
        /// Every path that was tried, in order.
        searched: Vec<PathBuf>,
    },

    /// An environment variable names a file that is not an executable.
    #[error("{var}={} is not an executable file: fix or unset {var}", .path.display())]
    NotExecutable {
        /// The variable, e.g. `TEST_ASSET_KUBE_APISERVER`.
        var: &'static str,
        /// Its value.
        path: PathBuf,
    },

    /// `USE_EXISTING_CLUSTER=true`, but no cluster configuration could be loaded.
    #[error("USE_EXISTING_CLUSTER=true, but no kubeconfig or in-cluster config was found")]
    ExistingCluster(#[source] kube::config::InferConfigError),

    /// `USE_EXISTING_CLUSTER=true`, and the kubeconfig named by `KUBECONFIG` is unusable.
    #[error("USE_EXISTING_CLUSTER=true, but the kubeconfig {} is unusable", .path.display())]
    Kubeconfig {
        /// The file (or the `KUBECONFIG` path list).
        path: PathBuf,
        /// The cause.
        #[source]
        source: kube::config::KubeconfigError,
    },

    /// A file or directory of the control plane could not be written or removed.
    #[error("{what}: {}", .path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// Generating the per-run certificates and keys failed.
    #[error("failed to generate the control plane's certificates")]
    Pki(#[source] rcgen::Error),

    /// A control-plane process could not be started at all.
    #[error("failed to run {}", .binary.display())]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// A control-plane process exited while starting.
    #[error("{process} exited during startup ({status}); last lines of {}:\n{tail}", .log.display())]
    Exited {
        /// `etcd`, `kube-apiserver` or `kube-controller-manager`.
        process: &'static str,
        /// Its exit status.
        status: ExitStatus,
        /// Its log file (in the data directory, which is removed by now).
        log: PathBuf,
        /// The end of its log.
        tail: String,
    },

    /// A control-plane process exited after startup (see
    /// [`TestEnv::check_running`](crate::TestEnv::check_running)).
    #[error("{process} exited ({status}); last lines of {}:\n{tail}", .log.display())]
    Died {
        /// `etcd`, `kube-apiserver` or `kube-controller-manager`.
        process: &'static str,
        /// Its exit status.
        status: ExitStatus,
        /// Its log file (in the data directory).
        log: PathBuf,
        /// The end of its log.
        tail: String,
    },

    /// A port the control plane was to listen on was taken by someone else in the meantime,
    /// on every attempt.
    #[error(
        "{process} could not listen: address already in use, {attempts} times in a row; last lines of its log:\n{tail}"
    )]
    PortsInUse {
        /// The process that failed to bind.
        process: &'static str,
        /// How many times the whole start was tried.
        attempts: u32,
        /// The end of its log.
        tail: String,
    },

    /// The control plane was not ready within the start timeout.
    #[error(
        "{waiting_for} not ready after {timeout:?} (last check: {last_error}); raise it with \
         `TestEnv::builder().start_timeout(..)` if the machine is busy; last lines of {}:\n{tail}",
        .log.display()
    )]
    StartTimeout {
        /// What was still awaited.
        waiting_for: &'static str,
        /// The start timeout.
        timeout: Duration,
        /// The last readiness check's failure.
        last_error: String,
        /// The log of the process awaited.
        log: PathBuf,
        /// The end of that log.
        tail: String,
    },

    /// A process did not exit within the stop timeout after being killed.
    #[error("{process} (pid {pid}) did not exit within {timeout:?} after SIGKILL")]
    StopTimeout {
        /// The process name.
        process: &'static str,
        /// Its process id.
        pid: u32,
        /// The stop timeout.
        timeout: Duration,
    },

    /// The Kubernetes client could not be built from the generated configuration.
    #[error("failed to create a Kubernetes client")]
    Client(#[source] kube::Error),

    /// A user or group name cannot be sent as an impersonation header.
    #[error("cannot impersonate {0:?}: names must be visible ASCII")]
    InvalidIdentity(String),
    /// The operation needs a control plane that testenv started itself.
    #[error("{0} needs a control plane started by testenv, not USE_EXISTING_CLUSTER=true")]
    ExistingClusterUnsupported(&'static str),
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nothing: no search location is set".to_owned();
    }
    paths
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
