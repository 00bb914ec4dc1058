//! `cargo xtask plugins`: builds every crate in `plugins/` (examples) and `test-plugins/`
//! (test fixtures) for `wasm32-wasip2` in release and gathers the components into one
//! directory; the test set also gets the Python, JavaScript and Go examples
//! (`guest-sdk/python/build.py`, `guest-sdk/js/build.mjs`, `guest-sdk/go/build.sh`).
//!
//! Plugins build with plain `cargo build --target wasm32-wasip2 --release`; this task only adds
//! the target when it is missing and collects the outputs.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::project_root;

/// The target plugins are built for.
const TARGET: &str = "wasm32-wasip2";

impl crate::flags::Plugins {
    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let examples = build(sh, Set::Examples)?;
        let all = build(sh, Set::All)?;
        println!("WASM_RECONCILER_PLUGINS={}", examples.display());
        println!("WASM_RECONCILER_TEST_PLUGINS={}", all.display());
        Ok(())
    }
}

/// Which plugins a directory gathers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Set {
    /// The examples in `plugins/`: what a user runs (`<target>/plugins`).
    Examples,
    /// The examples and the test fixtures in `test-plugins/` (`<target>/test-plugins`).
    All,
}

/// Builds the plugins of `set` and returns the directory holding their `.wasm` files, fresh:
/// a directory the host can be pointed at.
pub(crate) fn build(sh: &Shell, set: Set) -> anyhow::Result<PathBuf> {
    ensure_target(sh)?;
    let names = match set {
        Set::Examples => crates_in(&PLUGIN_DIRS[..1])?,
        Set::All => plugin_crates()?,
    };
    let packages: Vec<String> = names
        .iter()
        .flat_map(|n| ["-p".to_owned(), n.clone()])
        .collect();
    cmd!(sh, "cargo build --target {TARGET} --release {packages...}")
        .run()
        .context("building the plugins failed")?;

    let target = target_dir(sh)?;
    let built = target.join(TARGET).join("release");
    let out = target.join(match set {
        Set::Examples => "plugins",
        Set::All => "test-plugins",
    });
    // Start empty, so that a renamed or removed plugin does not linger.
    if out.exists() {
        sh.remove_path(&out)?;
    }
    sh.create_dir(&out)?;
    for name in &names {
        let file = format!("{}.wasm", name.replace('-', "_"));
        let from = built.join(&file);
        if !from.is_file() {
            bail!("{} was not produced: is `{name}` a cdylib?", from.display());
        }
        sh.copy_file(&from, out.join(&file))?;
    }
    if set == Set::All {
        // The examples in other languages, for the host's tests (the demo runs Rust only,
        // which starts in a second rather than compiling a 12-18 MB runtime first).
        let python = project_root().join("guest-sdk/python/build.py");
        cmd!(sh, "python3 {python} build --out {out}")
            .run()
            .context("building the Python plugins failed (needs python3 with venv and PyPI)")?;
        let javascript = project_root().join("guest-sdk/js/build.mjs");
        let js_plugins = plugins_with(Path::new("package.json"))?;
        cmd!(sh, "node {javascript} --out {out} {js_plugins...}")
            .run()
            .context("building the JavaScript plugins failed (needs Node.js 20+ and npm)")?;
        let go = project_root().join("guest-sdk/go/build.sh");
        let go_plugins = plugins_with(Path::new("go.mod"))?;
        cmd!(sh, "bash {go} --out {out} {go_plugins...}")
            .run()
            .context("building the Go plugins failed (needs Go 1.24+)")?;
    }
    Ok(out)
}

/// Adds the `wasm32-wasip2` target with rustup unless the toolchain already has it.
pub(crate) fn ensure_target(sh: &Shell) -> anyhow::Result<()> {
    let sysroot = cmd!(sh, "rustc --print sysroot").read()?;
    let lib = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(TARGET)
        .join("lib");
    if lib.is_dir() {
        return Ok(());
    }
    cmd!(sh, "rustup target add {TARGET}")
        .run()
        .with_context(|| format!("the {TARGET} target is missing and rustup could not add it"))
}

/// Where plugin crates live: examples, and fixtures for the host's tests.
const PLUGIN_DIRS: [&str; 2] = ["plugins", "test-plugins"];

/// The package names of every plugin crate, examples and fixtures.
pub(crate) fn plugin_crates() -> anyhow::Result<Vec<String>> {
    crates_in(&PLUGIN_DIRS)
}

/// The package names of the crates in `dirs` (each crate directory's name).
fn crates_in(dirs: &[&str]) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for dir in dirs.iter().map(|dir| project_root().join(dir)) {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.join("Cargo.toml").is_file() {
                let name = path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .with_context(|| format!("plugin directory {} is not UTF-8", path.display()))?;
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    if names.is_empty() {
        bail!("no plugin crates in {dirs:?}");
    }
    Ok(names)
}

/// The plugins in `plugins/` of one other language: the directories holding `marker`
/// (`package.json` for JavaScript, `go.mod` for Go).
fn plugins_with(marker: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = project_root().join(PLUGIN_DIRS[0]);
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.join(marker).is_file() {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// Cargo's target directory, as `cargo metadata` reports it (honours `CARGO_TARGET_DIR`).
pub(crate) fn target_dir(sh: &Shell) -> anyhow::Result<PathBuf> {
    if let Some(dir) = sh.var_os("CARGO_TARGET_DIR") {
        return Ok(project_root().join(dir));
    }
    let metadata = cmd!(sh, "cargo metadata --format-version 1 --no-deps").read()?;
    json_string_field(&metadata, "target_directory")
        .map(PathBuf::from)
        .context("`cargo metadata` did not report a target_directory")
}

/// The value of the first `"field":"..."` in `json` (enough for cargo's metadata, whose paths
/// are plain strings; escaped quotes and backslashes are unescaped).
fn json_string_field(json: &str, field: &str) -> Option<String> {
    let start = json.find(&format!("\"{field}\":\""))? + field.len() + 4;
    let mut value = String::new();
    let mut chars = json[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(value),
            '\\' => value.push(chars.next()?),
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_directory_is_read_from_cargo_metadata() {
        let json = r#"{"packages":[],"target_directory":"/x/my \"t\"/target","version":1}"#;
        assert_eq!(
            json_string_field(json, "target_directory").as_deref(),
            Some(r#"/x/my "t"/target"#)
        );
        assert_eq!(json_string_field(json, "missing"), None);
    }
}
