//! `cargo xtask test`: everything CI checks, from a fresh clone: formatting, generated files,
//! the SDK built out of tree, lints (native and wasm32-wasip2), then every test against a real
//! local control plane with freshly built plugins.

use std::time::Instant;

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::{control_plane, out_of_tree, plugins};

impl crate::flags::Test {
    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let started = Instant::now();
        step("cargo fmt --check");
        cmd!(sh, "cargo fmt --all -- --check")
            .run()
            .context("code is not formatted: run `cargo fmt --all` and commit")?;

        step("control plane binaries");
        let assets = control_plane::ensure_with_controller_manager(sh)?;
        if !self.skip_go_mod_check {
            step("go.mod files match their generator");
            control_plane::check(sh)?;
        }

        step("plugins for wasm32-wasip2");
        let plugins = plugins::build(sh, plugins::Set::All)?;

        step("a plugin crate outside the workspace, against guest-sdk/ alone");
        out_of_tree::check(sh)?;

        step("clippy");
        cmd!(sh, "cargo clippy --workspace --all-targets -- -D warnings").run()?;
        // The SDK and the plugins as they ship: compiled for wasm32-wasip2.
        let packages: Vec<String> = std::iter::once("wasm-reconciler-sdk".to_owned())
            .chain(plugins::plugin_crates()?)
            .flat_map(|name| ["-p".to_owned(), name])
            .collect();
        cmd!(
            sh,
            "cargo clippy --target wasm32-wasip2 {packages...} -- -D warnings"
        )
        .run()?;

        step("Python SDK and plugin tests");
        let python = crate::project_root().join("guest-sdk/python/build.py");
        cmd!(sh, "python3 {python} test").run()?;

        step("JavaScript SDK and plugin tests");
        {
            let _dir = sh.push_dir(crate::project_root().join("guest-sdk/js"));
            cmd!(sh, "npm ci --no-audit --no-fund").run()?;
            cmd!(sh, "npm test").run()?;
        }

        step("Go SDK and plugin tests");
        for dir in ["guest-sdk/go", "plugins/myresource-go"] {
            let _dir = sh.push_dir(crate::project_root().join(dir));
            cmd!(sh, "go test ./...").run()?;
        }

        step("tests");
        // testenv's dev_cluster tests run the example's binary, which `cargo test` does not
        // build (it builds the example as a test harness for its unit tests).
        cmd!(sh, "cargo build -p testenv --example dev_cluster").run()?;
        let _assets = sh.push_env("KUBEBUILDER_ASSETS", &assets);
        let _plugins = sh.push_env("WASM_RECONCILER_TEST_PLUGINS", &plugins);
        cmd!(sh, "cargo test --workspace").run()?;

        eprintln!(
            "\nall checks passed in {:.0}s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

fn step(name: &str) {
    eprintln!("\n==> {name}");
}
