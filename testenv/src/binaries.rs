//! Finds the control-plane binaries the way envtest does, plus the `cargo xtask control-plane`
//! cache as a last resort.

use std::{
    ffi::OsString,
    fmt,
    path::{Path, PathBuf},
};

use crate::Error;

/// The Kubernetes release `cargo xtask control-plane` builds. Duplicated from
/// `xtask/src/control_plane.rs` (xtask stays dependency-free); the cache path only has to match.
const KUBERNETES_VERSION: &str = "v1.34.4";
/// The etcd release `cargo xtask control-plane` builds. Duplicated like [`KUBERNETES_VERSION`].
const ETCD_VERSION: &str = "v3.6.16";

/// A control-plane binary that [`TestEnv`](crate::TestEnv) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Binary {
    /// `kube-apiserver`.
    KubeApiserver,
    /// `etcd`.
    Etcd,
    /// `kubectl`, for [`TestEnv::kubectl`](crate::TestEnv::kubectl).
    Kubectl,
    /// `kube-controller-manager`, only with
    /// [`Builder::with_controller_manager`](crate::Builder::with_controller_manager).
    KubeControllerManager,
}

impl Binary {
    /// The file name, e.g. `kube-apiserver`.
    pub fn file_name(self) -> &'static str {
        match self {
            Binary::KubeApiserver => "kube-apiserver",
            Binary::Etcd => "etcd",
            Binary::Kubectl => "kubectl",
            Binary::KubeControllerManager => "kube-controller-manager",
        }
    }

    /// The variable that names this binary's path, e.g. `TEST_ASSET_KUBE_APISERVER`.
    pub fn env_var(self) -> &'static str {
        match self {
            Binary::KubeApiserver => "TEST_ASSET_KUBE_APISERVER",
            Binary::Etcd => "TEST_ASSET_ETCD",
            Binary::Kubectl => "TEST_ASSET_KUBECTL",
            Binary::KubeControllerManager => "TEST_ASSET_KUBE_CONTROLLER_MANAGER",
        }
    }

    /// The command that builds this binary into the cache.
    pub fn xtask_command(self) -> &'static str {
        match self {
            Binary::KubeControllerManager => "cargo xtask control-plane --with-controller-manager",
            _ => "cargo xtask control-plane",
        }
    }
}

impl fmt::Display for Binary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_name())
    }
}

/// Finds `binary`, reading environment variables through `env` (pass
/// `|name| std::env::var_os(name)` for the process environment; tests pass their own).
///
/// The search order:
/// 1. `TEST_ASSET_<NAME>` (e.g. `TEST_ASSET_KUBE_APISERVER`): the binary's path. If it is set
///    but wrong, that is an error, not a reason to look elsewhere.
/// 2. `KUBEBUILDER_ASSETS`: a directory holding the binary.
/// 3. The `cargo xtask control-plane` cache: [`xtask_cache_dir`].
///
/// # Errors
///
/// [`Error::NotExecutable`] if step 1 names a non-executable, [`Error::BinaryNotFound`] (with
/// every path tried and the command that fixes it) if no step finds it.
pub fn find_binary(
    binary: Binary,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<PathBuf, Error> {
    let var = binary.env_var();
    if let Some(path) = env(var).filter(|value| !value.is_empty()) {
        let path = PathBuf::from(path);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(Error::NotExecutable { var, path })
        };
    }

    let mut searched = Vec::new();
    let dirs = [
        env("KUBEBUILDER_ASSETS")
            .filter(|value| !value.is_empty())
            .map(PathBuf::from),
        xtask_cache_dir(&env),
    ];
    for dir in dirs.into_iter().flatten() {
        let path = dir.join(binary.file_name());
        if is_executable(&path) {
            return Ok(path);
        }
        searched.push(path);
    }
    Err(Error::BinaryNotFound { binary, searched })
}

/// The directory `cargo xtask control-plane` builds into:
/// `${XDG_CACHE_HOME:-$HOME/.cache}/wasm-reconciler/control-plane/k8s-<v>-etcd-<v>`.
///
/// Duplicates `cache_dir` in `xtask/src/control_plane.rs`; keep the two in step.
pub fn xtask_cache_dir(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let base = match env("XDG_CACHE_HOME").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        _ => PathBuf::from(env("HOME").filter(|home| !home.is_empty())?).join(".cache"),
    };
    Some(
        base.join("wasm-reconciler")
            .join("control-plane")
            .join(format!("k8s-{KUBERNETES_VERSION}-etcd-{ETCD_VERSION}")),
    )
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}
