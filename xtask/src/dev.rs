//! `cargo xtask dev`: a local cluster for plugin authors, running until Ctrl-C.
//!
//! This task builds what the cluster needs (the control plane binaries, the example plugins
//! and testenv's `dev_cluster` example), then becomes that example (`exec`), which starts the
//! control plane, installs the CRDs, writes the kubeconfig, prints how to use it and runs
//! until SIGINT or SIGTERM. Becoming it, rather than waiting for it, leaves one process in the
//! foreground: Ctrl-C reaches the example, which stops the cluster and prints the last word,
//! instead of killing this task and leaving the example to clean up after the prompt is back.
//!
//! The state lives in `${XDG_CACHE_HOME:-~/.cache}/wasm-reconciler/dev/`, beside the control
//! plane binaries and compiled plugins, rather than in the target directory: the kubeconfig
//! path is then the same for every checkout, whatever `CARGO_TARGET_DIR` says, and survives
//! `cargo clean`, so one `export KUBECONFIG=...` in a shell profile keeps working. The cost is
//! one dev cluster per user at a time, which the example's pid file enforces, naming the
//! one that runs.
//!
//! The control plane includes kube-controller-manager (built once, like in `cargo xtask
//! test`), so that it behaves like a cluster where a plugin author expects it to: deleting an
//! object garbage-collects what it owns, and deleting a namespace finishes.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::{control_plane, plugins, project_root};

/// The dev cluster's pid file in its state directory (`testenv/examples/dev_cluster/state.rs`).
const PID_FILE: &str = "dev-cluster.pid";

impl crate::flags::Dev {
    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
        // Paths on the command line are relative to where `cargo xtask dev` was run, which
        // is still the process's directory (the shell's is the project root).
        let cwd = std::env::current_dir().context("reading the current directory")?;
        let mut crds = manifests("crd")?;
        for path in &self.crds {
            let path = cwd.join(path);
            if !path.exists() {
                bail!("--crds {}: no such file or directory", path.display());
            }
            crds.push(path);
        }

        let state = state_dir(sh)?;
        // The dev cluster checks this itself; checking first saves building for nothing.
        if let Some(pid) = running(&state)? {
            bail!(
                "a dev cluster is already running (pid {pid}), with its kubeconfig at {}: use \
                 that one, or stop it first (Ctrl-C in its terminal, or `kill {pid}`)",
                state.join("kubeconfig").display()
            );
        }

        let assets = control_plane::ensure_with_controller_manager(sh)?;
        let plugins = plugins::build(sh, plugins::Set::Examples)?;
        cmd!(sh, "cargo build --quiet -p testenv --example dev_cluster")
            .run()
            .context("building the dev cluster failed")?;
        let binary = plugins::target_dir(sh)?
            .join("debug")
            .join("examples")
            .join("dev_cluster");

        let mut command = std::process::Command::new(&binary);
        command
            .current_dir(project_root())
            .env("KUBEBUILDER_ASSETS", &assets)
            .arg("--state-dir")
            .arg(&state)
            .arg("--with-controller-manager")
            .arg("--ready-message")
            .arg(usage(&state, &plugins)?);
        for crd in &crds {
            command.arg("--apply").arg(crd);
        }
        exec(command).with_context(|| format!("running {}", binary.display()))
    }
}

/// `${XDG_CACHE_HOME:-~/.cache}/wasm-reconciler/dev`.
fn state_dir(sh: &Shell) -> anyhow::Result<PathBuf> {
    Ok(control_plane::cache_base(sh)?.join("dev"))
}

/// The pid of the dev cluster that holds the lock on `state`'s pid file, if one does (the
/// lock, not the file, says whether it runs: a killed one leaves its file behind).
fn running(state: &Path) -> anyhow::Result<Option<String>> {
    let path = state.join(PID_FILE);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("opening {}", path.display())),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(None),
        Err(std::fs::TryLockError::WouldBlock) => {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let pid = text
                .lines()
                .find_map(|line| line.strip_prefix("pid "))
                .unwrap_or("unknown");
            Ok(Some(pid.to_owned()))
        }
        Err(std::fs::TryLockError::Error(err)) => {
            Err(err).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// What the cluster prints once it is ready: how to use it with kubectl and the host.
fn usage(state: &Path, plugins: &Path) -> anyhow::Result<String> {
    let kubeconfig = state.join("kubeconfig");
    let bin = state.join("bin");
    let samples: Vec<String> = manifests("sample")?
        .iter()
        .map(|path| {
            path.strip_prefix(project_root())
                .unwrap_or(path)
                .display()
                .to_string()
        })
        .collect();
    let mut text = format!(
        "Use it from another terminal (the paths stay the same on every run):\n\
         \n    export KUBECONFIG={kubeconfig}\
         \n    export PATH={bin}:$PATH    # kubectl {version}, built by `cargo xtask control-plane`\
         \n    kubectl get ns\n\
         \nRun the host on the example plugins (built into {plugins}), from {root}:\n\
         \n    cargo run -p wasm-reconciler -- run --kubeconfig {kubeconfig} \\\
         \n        --plugins {plugins} \\\
         \n        --health-addr 127.0.0.1:8081 --metrics-addr 127.0.0.1:8080\n",
        kubeconfig = kubeconfig.display(),
        bin = bin.display(),
        version = control_plane::KUBERNETES_VERSION,
        plugins = plugins.display(),
        root = project_root().display(),
    );
    if !samples.is_empty() {
        text.push_str("\nand give it something to reconcile:\n\n");
        for sample in &samples {
            text.push_str(&format!(
                "    kubectl apply -f {sample}\n    kubectl describe -f {sample}\n"
            ));
        }
    }
    text.push_str(
        "\nYour own plugin: put its .wasm in a directory of its own and pass that as --plugins;\n\
         install its CRD with `kubectl apply -f`, or next time with `cargo xtask dev --crds PATH`.\n\
         There are no nodes: Pods are stored, never run.",
    );
    Ok(text)
}

/// The example plugins' `manifests/<prefix>*.yaml` files (e.g. `crd.yaml`, `sample.yaml`),
/// sorted.
fn manifests(prefix: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let plugins = project_root().join("plugins");
    for plugin in
        std::fs::read_dir(&plugins).with_context(|| format!("reading {}", plugins.display()))?
    {
        let dir = plugin?.path().join("manifests");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            let name = path.file_name().and_then(|name| name.to_str());
            if name.is_some_and(|name| name.starts_with(prefix) && name.ends_with(".yaml")) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Replaces this process with `command` (Unix); elsewhere runs it and exits with its status.
fn exec(mut command: std::process::Command) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Returns only if the exec failed.
        Err(command.exec().into())
    }
    #[cfg(not(unix))]
    {
        let status = command.status()?;
        std::process::exit(status.code().unwrap_or(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_crd_and_sample_are_found() {
        let crds = manifests("crd").unwrap();
        assert!(
            crds.iter()
                .any(|path| path.ends_with("plugins/myresource/manifests/crd.yaml")),
            "{crds:?}"
        );
        let samples = manifests("sample").unwrap();
        assert!(
            samples
                .iter()
                .any(|path| path.ends_with("plugins/myresource/manifests/sample.yaml"))
        );
    }

    #[test]
    fn usage_names_the_stable_kubeconfig_and_the_host_flags() {
        let text = usage(Path::new("/cache/dev"), Path::new("/target/plugins")).unwrap();
        assert!(
            text.contains("export KUBECONFIG=/cache/dev/kubeconfig\n"),
            "{text}"
        );
        assert!(text.contains("export PATH=/cache/dev/bin:$PATH"), "{text}");
        assert!(
            text.contains("cargo run -p wasm-reconciler -- run --kubeconfig /cache/dev/kubeconfig"),
            "{text}"
        );
        assert!(text.contains("--plugins /target/plugins"), "{text}");
    }
}
