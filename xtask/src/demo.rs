//! `cargo xtask demo`: a local control plane, the example plugin, the host binary, and a
//! sample MyResource, ending with `kubectl describe` of it and a clean stop.
//!
//! The demo itself is `host/examples/demo.rs` (it needs testenv and kube); this task builds
//! what it needs first and hands it the paths.

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::{control_plane, plugins};

impl crate::flags::Demo {
    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let assets = control_plane::ensure(sh)?;
        let plugins = plugins::build(sh, plugins::Set::Examples)?;
        cmd!(
            sh,
            "cargo build --quiet -p wasm-reconciler --bin wasm-reconciler"
        )
        .run()
        .context("building the host failed")?;
        let host = plugins::target_dir(sh)?
            .join("debug")
            .join("wasm-reconciler");
        let _assets = sh.push_env("KUBEBUILDER_ASSETS", &assets);
        cmd!(
            sh,
            "cargo run --quiet -p wasm-reconciler --example demo -- --host {host} --plugins {plugins}"
        )
        .run()
        .context("the demo failed")?;
        Ok(())
    }
}
