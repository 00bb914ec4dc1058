//! `cargo xtask out-of-tree`: builds a plugin crate the way a plugin author's own repository
//! does, outside this workspace, against a copy of `guest-sdk/` alone.
//!
//! The generated crate depends on the SDK by path, with no workspace above either of them: if
//! the SDK's manifest inherited a `workspace = true` field, or its bindings read WIT from
//! outside its directory, this build fails. A copy of the SDK directory is the strictest of
//! the ways authors get it: a path into a checkout (the workspace is there to inherit from), a
//! git dependency (the whole repository is checked out), `cargo vendor` or a published crate
//! (only the SDK's own directory) all build if the copy does.
//!
//! It builds for wasm32-wasip2 in release, checks that the output is a component, and runs the
//! crate's test-kit test natively, all with `--offline`: the crates it needs are the SDK's
//! dependencies, which the workspace's own build has already downloaded. It shares the
//! workspace's target directory, where the plugins' release builds have already compiled those
//! dependencies for wasm32-wasip2, and the generated crate sits at a fixed path per checkout
//! (cargo keys builds by path), so a run recompiles only the SDK and the plugin.

use std::{
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::{plugins, project_root};

/// The generated crate's package name: unlike any in the workspace, as it shares the target
/// directory.
const PLUGIN: &str = "out-of-tree-plugin";

/// The manifest a plugin author writes, with the SDK's path filled in.
const MANIFEST: &str = r#"[package]
name = "PLUGIN"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
wasm-reconciler-sdk = { path = "SDK_PATH" }
"#;

/// A minimal reconciler with a test-kit test, in the spirit of `plugins/myresource`.
const LIB_RS: &str = r#"//! A plugin built outside the wasm-reconciler workspace.

use wasm_reconciler_sdk::prelude::*;

/// Records an event for every ConfigMap it sees.
pub struct Hello;

impl Reconciler for Hello {
    fn metadata() -> Metadata {
        Metadata::new("hello", Gvk::new("", "v1", "ConfigMap"))
    }

    fn reconcile(ctx: &Context, request: Request) -> Result<Response, Error> {
        eventf!(ctx.recorder(), Normal, "Seen", "Saw config map {}", request.name())?;
        Ok(Response::await_change())
    }
}

wasm_reconciler_sdk::export_reconciler!(Hello);

#[cfg(test)]
mod tests {
    use wasm_reconciler_sdk::serde_json::json;
    use wasm_reconciler_sdk::testkit::{RecordedEvent, TestKit};

    use super::*;

    #[test]
    fn records_seen() {
        let outcome = TestKit::new()
            .reconcile::<Hello>(json!({"metadata": {"name": "demo", "namespace": "default"}}));
        assert_eq!(outcome.response(), Some(&Response::await_change()));
        assert_eq!(outcome.events(), [RecordedEvent::normal("Seen", "Saw config map demo")]);
    }
}
"#;

/// The first 8 bytes of a WebAssembly component (a core module has version 1, layer 0).
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

impl crate::flags::OutOfTree {
    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
        check(sh)
    }
}

/// Builds and tests the generated plugin crate; see the [module docs](self).
pub(crate) fn check(sh: &Shell) -> anyhow::Result<()> {
    let started = Instant::now();
    check_wit_copy(&project_root())?;
    plugins::ensure_target(sh)?;

    let scratch = scratch_dir();
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)
            .with_context(|| format!("removing the last run's {}", scratch.display()))?;
    }
    let sdk = scratch.join("wasm-reconciler-sdk");
    copy_dir(&project_root().join("guest-sdk"), &sdk)?;
    let plugin = scratch.join(PLUGIN);
    let sdk_path = sdk
        .to_str()
        .context("the temporary directory's path is not UTF-8")?;
    sh.write_file(
        plugin.join("Cargo.toml"),
        MANIFEST
            .replace("PLUGIN", PLUGIN)
            .replace("SDK_PATH", &sdk_path.replace('\\', "/")),
    )?;
    sh.write_file(plugin.join("src/lib.rs"), LIB_RS)?;

    let target = plugins::target_dir(sh)?;
    let _dir = sh.push_dir(&plugin);
    let _target = sh.push_env("CARGO_TARGET_DIR", &target);
    cmd!(
        sh,
        "cargo build --quiet --offline --target wasm32-wasip2 --release"
    )
    .run()
    .with_context(|| {
        format!(
            "a plugin crate outside the workspace ({}) does not build against a copy of \
             guest-sdk/ for wasm32-wasip2",
            plugin.display()
        )
    })?;
    let wasm = target
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", PLUGIN.replace('-', "_")));
    let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    if !bytes.starts_with(&COMPONENT_HEADER) {
        bail!("{} is not a WebAssembly component", wasm.display());
    }
    cmd!(sh, "cargo test --quiet --offline --lib")
        .run()
        .with_context(|| {
            format!(
                "the test-kit test of a plugin crate outside the workspace ({}) failed",
                plugin.display()
            )
        })?;

    std::fs::remove_dir_all(&scratch).with_context(|| format!("removing {}", scratch.display()))?;
    eprintln!(
        "a plugin outside the workspace builds against guest-sdk/ alone ({} KB component) and \
         passes its test, in {:.1}s",
        bytes.len() / 1000,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The contract version the Rust SDK targets: `wit/<version>/`.
const SDK_CONTRACT: &str = "0.2.0";

/// Fails unless `guest-sdk/wit/` holds exactly the files of the contract version the SDK
/// targets, `wit/0.2.0/`: the SDK carries its own copy so that it builds without the rest of
/// the repository.
pub(crate) fn check_wit_copy(root: &Path) -> anyhow::Result<()> {
    let contract = wit_files(&root.join("wit").join(SDK_CONTRACT))?;
    let copy = wit_files(&root.join("guest-sdk/wit"))?;
    if contract != copy {
        bail!(
            "guest-sdk/wit/ is not a copy of wit/{SDK_CONTRACT}/: run `rm -r guest-sdk/wit && \
             cp -r wit/{SDK_CONTRACT} guest-sdk/wit` and commit (the SDK carries the contract so that it builds outside \
             this repository)"
        );
    }
    Ok(())
}

/// Every file under `dir`, as (path relative to `dir`, contents), sorted.
fn wit_files(dir: &Path) -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in
            std::fs::read_dir(&next).with_context(|| format!("reading {}", next.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let contents =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                let relative = path.strip_prefix(dir).unwrap_or(&path).to_owned();
                files.push((relative, contents));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Copies the directory `from` to `to` (which must not exist), skipping any `target`.
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let (source, dest) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            if entry.file_name() != "target" {
                copy_dir(&source, &dest)?;
            }
        } else {
            std::fs::copy(&source, &dest)
                .with_context(|| format!("copying {} to {}", source.display(), dest.display()))?;
        }
    }
    Ok(())
}

/// Outside any workspace, and the same on every run from this checkout: cargo keys what it
/// builds by the crates' paths, so a new path on each run would leave a new SDK build in the
/// target directory each time.
fn scratch_dir() -> PathBuf {
    let mut hasher = std::hash::DefaultHasher::new();
    project_root().hash(&mut hasher);
    std::env::temp_dir().join(format!(
        "wasm-reconciler-out-of-tree-{:016x}",
        hasher.finish()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_sdk_carries_a_copy_of_the_contract() {
        check_wit_copy(&project_root()).unwrap();
    }

    #[test]
    fn scratch_dir_is_outside_the_workspace_and_stable() {
        assert!(!scratch_dir().starts_with(project_root()));
        assert_eq!(scratch_dir(), scratch_dir());
    }
}
