//! `cargo xtask bench`: the end-to-end benchmark. The release host running the example plugin
//! against `bench/native-myresource` (the same logic as a plain kube-rs controller), each on a
//! fresh local control plane, N MyResources at once; a markdown report on stdout and in
//! `<target>/bench/e2e.md`.
//!
//! The benchmark itself is `bench/e2e` (it needs testenv and kube, which this crate keeps out
//! of its dependencies); this task builds what it needs and hands it the paths, like `demo`.
//! It is not part of `cargo xtask test`: it measures and reports, and takes minutes.

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::{control_plane, plugins, project_root};

/// The plugin the host runs: the example.
const PLUGIN: &str = "myresource.wasm";
/// The crate of the fleet's plugins (`--kinds` above 1), built once per member.
const FLEET_PLUGIN: &str = "fleet-plugin";

impl crate::flags::Bench {
    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let assets = control_plane::ensure(sh)?;
        let examples = plugins::build(sh, plugins::Set::Examples)?;
        // Alone, so that its features are the ones the host ships with: built together with the
        // benchmark crates, shared dependencies could be unified into a different build.
        cmd!(sh, "cargo build --release -p wasm-reconciler")
            .run()
            .context("building the host failed")?;
        cmd!(
            sh,
            "cargo build --release -p native-myresource -p e2e-bench"
        )
        .run()
        .context("building the benchmark failed")?;

        let target = plugins::target_dir(sh)?;
        let release = target.join("release");
        let out_dir = target.join("bench");
        // The host loads every plugin in its directory: give it the example alone.
        let plugin_dir = out_dir.join("plugins");
        if plugin_dir.exists() {
            sh.remove_path(&plugin_dir)?;
        }
        sh.create_dir(&plugin_dir)?;
        sh.copy_file(examples.join(PLUGIN), plugin_dir.join(PLUGIN))?;

        // Copies, so that a build in the same target directory during the benchmark (which
        // takes minutes and starts the controllers again for every run) cannot swap them.
        let bin_dir = out_dir.join("bin");
        sh.create_dir(&bin_dir)?;
        let [host, native, e2e] =
            ["wasm-reconciler", "native-myresource", "e2e-bench"].map(|name| {
                let copy = bin_dir.join(name);
                sh.copy_file(release.join(name), &copy).map(|()| copy)
            });
        let (host, native, e2e) = (host?, native?, e2e?);
        let crd = project_root().join("plugins/myresource/manifests/crd.yaml");
        let out = out_dir.join(if self.lifecycle {
            "lifecycle.md"
        } else {
            "e2e.md"
        });
        let mut extra = Vec::new();
        // The lifecycle benchmark runs eight Rust plugins and the Python and JavaScript
        // examples beside them (ten plugins), or the Rust plugins of `--kinds` alone.
        let kinds = match (&self.kinds, self.lifecycle) {
            (None, true) => Some("8".to_owned()),
            (kinds, _) => kinds.clone(),
        };
        if self.lifecycle {
            extra.push("--lifecycle".to_owned());
        }
        if self.lifecycle && self.kinds.is_none() {
            let others = out_dir.join("lifecycle-other-languages");
            if others.exists() {
                sh.remove_path(&others)?;
            }
            let root = project_root();
            let python = root.join("guest-sdk/python/build.py");
            let javascript = root.join("guest-sdk/js/build.mjs");
            let py = root.join("plugins/myresource-py");
            let js = root.join("plugins/myresource-js");
            cmd!(sh, "python3 {python} build --out {others} {py}").run()?;
            cmd!(sh, "node {javascript} --out {others} {js}").run()?;
            for (plugin, crd) in [
                (
                    "myresource_py.wasm",
                    "plugins/myresource-py/manifests/crd.yaml",
                ),
                (
                    "myresource_js.wasm",
                    "plugins/myresource-js/manifests/crd.yaml",
                ),
            ] {
                extra.extend([
                    "--extra-plugin".to_owned(),
                    others.join(plugin).display().to_string(),
                    "--extra-crd".to_owned(),
                    root.join(crd).display().to_string(),
                ]);
            }
        }
        if let Some(objects) = &self.objects {
            extra.extend(["--objects".to_owned(), objects.clone()]);
        }
        if let Some(runs) = self.runs {
            extra.extend(["--runs".to_owned(), runs.to_string()]);
        }
        if let Some(kinds) = &kinds {
            let largest = kinds
                .split(',')
                .map(|k| k.trim().parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .context("--kinds takes numbers, comma-separated")?
                .into_iter()
                .max()
                .unwrap_or(1);
            if largest > 1 {
                let fleet = build_fleet(sh, &target, &out_dir.join("fleet-plugins"), largest)?;
                extra.extend(["--fleet-plugins".to_owned(), fleet.display().to_string()]);
            }
            extra.extend(["--kinds".to_owned(), kinds.clone()]);
        }
        if let Some(instances) = self.fleet_host_instances {
            extra.extend(["--fleet-host-instances".to_owned(), instances.to_string()]);
        }
        let _assets = sh.push_env("KUBEBUILDER_ASSETS", &assets);
        cmd!(
            sh,
            "{e2e} --host {host} --native {native} --plugins {plugin_dir} --crd {crd} --out {out} {extra...}"
        )
        .run()
        .context("the benchmark failed")?;
        Ok(())
    }
}

/// Builds `bench/fleet-plugin` once per member of a fleet of `members`, each with its own name
/// and group, into `out` (`fleet-0.wasm`, ...).
fn build_fleet(
    sh: &Shell,
    target: &std::path::Path,
    out: &std::path::Path,
    members: usize,
) -> anyhow::Result<std::path::PathBuf> {
    if out.exists() {
        sh.remove_path(out)?;
    }
    sh.create_dir(out)?;
    let built = target.join("wasm32-wasip2/release/fleet_plugin.wasm");
    for member in 0..members {
        let name = format!("fleet-{member}");
        let _name = sh.push_env("FLEET_PLUGIN", &name);
        let _group = sh.push_env("FLEET_GROUP", format!("fleet{member}.example.com"));
        cmd!(
            sh,
            "cargo build --target wasm32-wasip2 --release -p {FLEET_PLUGIN}"
        )
        .run()
        .with_context(|| format!("building {name} failed"))?;
        sh.copy_file(&built, out.join(format!("{name}.wasm")))?;
    }
    Ok(out.to_owned())
}
