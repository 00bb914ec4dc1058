//! `cargo xtask control-plane`: builds the local control plane (kube-apiserver, kubectl, etcd
//! and optionally kube-controller-manager) from the Go modules in `tools/control-plane/`.
//!
//! The binaries are built once per version into a cache outside the clone,
//! `${XDG_CACHE_HOME:-~/.cache}/wasm-reconciler/control-plane/k8s-<v>-etcd-<v>/`, which is the
//! directory `testenv` looks in last (after `TEST_ASSET_*` and `KUBEBUILDER_ASSETS`). Each build
//! goes into a temporary directory beside the cache entry and is renamed into place, so an
//! interrupted build never leaves a half-filled entry, and two concurrent runs cannot corrupt it.
//!
//! The versions are pinned in two places that must agree: the constants below and the
//! `tools/control-plane/*/go.mod` files. Every run checks that they do. The Kubernetes go.mod is
//! generated (`--update`) from the release's own go.mod: Kubernetes requires its staging modules
//! (`k8s.io/api`, ...) at `v0.0.0` and replaces them with `./staging/src/...`, which only works
//! inside its repository, so we replace each of them with its published `v0.<minor>.<patch>`.

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::{flags, project_root};

/// The Kubernetes release the control plane is built from. Keep in sync with
/// `tools/control-plane/kubernetes/go.mod` (checked on every run; `--update` regenerates it).
pub(crate) const KUBERNETES_VERSION: &str = "v1.34.4";
/// The etcd release. Keep in sync with `tools/control-plane/etcd/go.mod` (checked on every run).
pub(crate) const ETCD_VERSION: &str = "v3.6.16";

const KUBERNETES_MODULE: &str = "k8s.io/kubernetes";
const ETCD_MODULE: &str = "go.etcd.io/etcd/server/v3";
const KUBERNETES_DIR: &str = "tools/control-plane/kubernetes";
const ETCD_DIR: &str = "tools/control-plane/etcd";
/// The `tool` directives of the generated go.mod, sorted as `go mod tidy` keeps them.
const KUBERNETES_TOOLS: [&str; 3] = [
    "cmd/kube-apiserver",
    "cmd/kube-controller-manager",
    "cmd/kubectl",
];
/// The binaries every cache entry has; kube-controller-manager is added on demand.
const BASE_BINARIES: [&str; 3] = ["kube-apiserver", "kubectl", "etcd"];
const CONTROLLER_MANAGER: &str = "kube-controller-manager";

impl flags::ControlPlane {
    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
        if self.update {
            return update(sh);
        }
        if self.check {
            return check(sh);
        }
        let started = Instant::now();
        let dir = if self.with_controller_manager {
            ensure_with_controller_manager(sh)?
        } else {
            ensure(sh)?
        };
        let names: Vec<&str> = BASE_BINARIES
            .into_iter()
            .chain(self.with_controller_manager.then_some(CONTROLLER_MANAGER))
            .collect();
        eprintln!(
            "{} ready in {:.1}s",
            names.join(", "),
            started.elapsed().as_secs_f64()
        );
        println!("KUBEBUILDER_ASSETS={}", dir.display());
        Ok(())
    }
}

/// Makes sure kube-apiserver, kubectl and etcd are built, and returns the directory holding
/// them (suitable as `KUBEBUILDER_ASSETS`). Builds at most once per version; afterwards this
/// only checks the go.mod pins and a few files.
pub(crate) fn ensure(sh: &Shell) -> anyhow::Result<PathBuf> {
    ensure_impl(sh, false)
}

/// Like [`ensure`], and also builds kube-controller-manager into the same directory (for tests
/// that need owner-reference garbage collection or namespace deletion).
pub(crate) fn ensure_with_controller_manager(sh: &Shell) -> anyhow::Result<PathBuf> {
    ensure_impl(sh, true)
}

/// The cache entry for the pinned versions. `testenv` (`testenv/src/binaries.rs`) computes the
/// same path; the two small functions are duplicated on purpose so xtask stays dependency-light.
pub(crate) fn cache_dir(sh: &Shell) -> anyhow::Result<PathBuf> {
    Ok(cache_base(sh)?
        .join("control-plane")
        .join(format!("k8s-{KUBERNETES_VERSION}-etcd-{ETCD_VERSION}")))
}

/// `${XDG_CACHE_HOME:-$HOME/.cache}/wasm-reconciler`: where this project keeps what outlives
/// a checkout (control plane binaries, compiled plugins, the dev cluster's state).
pub(crate) fn cache_base(sh: &Shell) -> anyhow::Result<PathBuf> {
    let base = match sh.var_os("XDG_CACHE_HOME").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        _ => {
            let home = sh
                .var_os("HOME")
                .context("neither XDG_CACHE_HOME nor HOME is set: cannot place the build cache")?;
            PathBuf::from(home).join(".cache")
        }
    };
    Ok(base.join("wasm-reconciler"))
}

fn ensure_impl(sh: &Shell, with_controller_manager: bool) -> anyhow::Result<PathBuf> {
    check_pins(sh)?;
    let dir = cache_dir(sh)?;
    let parent = dir.parent().context("cache directory has no parent")?;
    let has_all = |names: &[&str]| names.iter().all(|name| dir.join(name).is_file());
    if has_all(&BASE_BINARIES) && (!with_controller_manager || has_all(&[CONTROLLER_MANAGER])) {
        return Ok(dir);
    }

    let go_version = go_version(sh)?;
    sh.create_dir(parent)?;
    remove_stale_temp_dirs(parent);

    if !has_all(&BASE_BINARIES) {
        let tmp = TempDir::create(parent, &dir)?;
        go_build(
            sh,
            tmp.path(),
            KUBERNETES_DIR,
            &["kube-apiserver", "kubectl"],
        )?;
        go_build(sh, tmp.path(), ETCD_DIR, &["etcd"])?;
        sh.write_file(tmp.path().join("BUILD-INFO"), build_info(&go_version))?;
        match std::fs::rename(tmp.path(), &dir) {
            Ok(()) => tmp.keep(),
            // Another run finished first; its entry is as good as ours, and `tmp` is removed.
            Err(_) if has_all(&BASE_BINARIES) => {}
            Err(err) => {
                return Err(err).with_context(|| {
                    format!(
                        "failed to move {} to {}",
                        tmp.path().display(),
                        dir.display()
                    )
                });
            }
        }
    }

    if with_controller_manager && !has_all(&[CONTROLLER_MANAGER]) {
        let tmp = TempDir::create(parent, &dir)?;
        go_build(sh, tmp.path(), KUBERNETES_DIR, &[CONTROLLER_MANAGER])?;
        // Renaming a single file into the entry is atomic too.
        std::fs::rename(
            tmp.path().join(CONTROLLER_MANAGER),
            dir.join(CONTROLLER_MANAGER),
        )
        .with_context(|| format!("failed to move {CONTROLLER_MANAGER} into {}", dir.display()))?;
    }
    Ok(dir)
}

/// Builds `binaries` from the Go module in `module_dir` (relative to the project root) into
/// `out_dir`, with the flags Kubernetes' own release build uses for version reporting.
fn go_build(sh: &Shell, out_dir: &Path, module_dir: &str, binaries: &[&str]) -> anyhow::Result<()> {
    let packages: Vec<String> = binaries
        .iter()
        .map(|name| match *name {
            "etcd" => ETCD_MODULE.to_owned(),
            name => format!("{KUBERNETES_MODULE}/cmd/{name}"),
        })
        .collect();
    // `go build -o dir/` names each binary after its package; etcd's package path ends in `v3`.
    let out = if binaries == ["etcd"] {
        out_dir.join("etcd").into_os_string()
    } else {
        format!("{}/", out_dir.display()).into()
    };
    // The version stamps are for Kubernetes packages; etcd gets its version from its module.
    let ldflags = if binaries == ["etcd"] {
        "-s -w".to_owned()
    } else {
        ldflags()
    };
    let _dir = sh.push_dir(project_root().join(module_dir));
    eprintln!("building {} ...", binaries.join(", "));
    let started = Instant::now();
    cmd!(
        sh,
        "go build -trimpath -buildvcs=false -ldflags {ldflags} -o {out} {packages...}"
    )
    .env("CGO_ENABLED", "0")
    .env("GOWORK", "off")
    .run()
    .with_context(|| format!("`go build` of {} failed", binaries.join(", ")))?;
    eprintln!(
        "built {} in {:.1}s",
        binaries.join(", "),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `-s -w` plus the `-X` version stamps that `kubectl version` and `/version` report.
fn ldflags() -> String {
    let mut parts = KUBERNETES_VERSION.trim_start_matches('v').split('.');
    let major = parts.next().unwrap_or_default();
    let minor = parts.next().unwrap_or_default();
    let mut flags = String::from("-s -w");
    for package in [
        "k8s.io/component-base/version",
        "k8s.io/client-go/pkg/version",
    ] {
        flags.push_str(&format!(
            " -X {package}.gitVersion={KUBERNETES_VERSION} -X {package}.gitMajor={major} -X {package}.gitMinor={minor}"
        ));
    }
    flags
}

fn build_info(go_version: &str) -> String {
    format!(
        "kubernetes {KUBERNETES_VERSION}\netcd {ETCD_VERSION}\n{go_version}\n\
         CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags '{}'\n",
        ldflags()
    )
}

fn go_version(sh: &Shell) -> anyhow::Result<String> {
    cmd!(sh, "go version").quiet().read().context(
        "the Go toolchain is needed to build the control plane (`go` not found on PATH); \
         install Go 1.26 or newer",
    )
}

/// Checks that the go.mod files require the versions pinned in this file.
fn check_pins(sh: &Shell) -> anyhow::Result<()> {
    for (dir, module, version) in [
        (KUBERNETES_DIR, KUBERNETES_MODULE, KUBERNETES_VERSION),
        (ETCD_DIR, ETCD_MODULE, ETCD_VERSION),
    ] {
        let path = project_root().join(dir).join("go.mod");
        let go_mod = sh.read_file(&path)?;
        match required_version(&go_mod, module) {
            Some(found) if found == version => {}
            found => bail!(
                "{} requires {module} {}, but xtask/src/control_plane.rs pins {version}: \
                 change both together (for Kubernetes: edit KUBERNETES_VERSION, then run \
                 `cargo xtask control-plane --update` and commit)",
                path.display(),
                found.unwrap_or("nothing"),
            ),
        }
    }
    Ok(())
}

/// The version of `module` in a go.mod `require` line or block entry.
fn required_version<'a>(go_mod: &'a str, module: &str) -> Option<&'a str> {
    let mut in_require_block = false;
    for line in go_mod.lines() {
        let line = line.trim();
        if line == "require (" {
            in_require_block = true;
            continue;
        }
        if line == ")" {
            in_require_block = false;
            continue;
        }
        let entry = match line.strip_prefix("require ") {
            Some(entry) => entry,
            None if in_require_block => line,
            None => continue,
        };
        let mut words = entry.split_whitespace();
        if words.next() == Some(module) {
            return words.next();
        }
    }
    None
}

/// `--update`: regenerates the Kubernetes go.mod from the release's, then `go mod tidy`.
fn update(sh: &Shell) -> anyhow::Result<()> {
    let go_mod = render_go_mod(&release_go_mod(sh)?)?;
    let dir = project_root().join(KUBERNETES_DIR);
    sh.write_file(dir.join("go.mod"), go_mod)?;
    go_mod_tidy(sh, &dir)?;
    check_pins(sh)?;
    eprintln!("updated {KUBERNETES_DIR}/go.mod and go.sum; commit them");
    Ok(())
}

/// `--check`: fails if `--update` (or `go mod tidy`) would change a committed go.mod or go.sum.
pub(crate) fn check(sh: &Shell) -> anyhow::Result<()> {
    check_pins(sh)?;
    let dir = project_root().join(KUBERNETES_DIR);
    let scratch = sh.create_temp_dir()?;
    sh.copy_file(dir.join("go.sum"), scratch.path())?;
    sh.write_file(
        scratch.path().join("go.mod"),
        render_go_mod(&release_go_mod(sh)?)?,
    )?;
    go_mod_tidy(sh, scratch.path())?;
    for file in ["go.mod", "go.sum"] {
        let committed = sh.read_file(dir.join(file))?;
        let expected = sh.read_file(scratch.path().join(file))?;
        if committed != expected {
            let line = first_difference(&committed, &expected);
            bail!(
                "{KUBERNETES_DIR}/{file} is not what `cargo xtask control-plane --update` writes \
                 (first difference at line {line}): run `cargo xtask control-plane --update` \
                 and commit the result"
            );
        }
    }
    let etcd_dir = project_root().join(ETCD_DIR);
    let _dir = sh.push_dir(&etcd_dir);
    cmd!(sh, "go mod tidy -diff")
        .env("GOWORK", "off")
        .run()
        .with_context(|| {
            format!("{ETCD_DIR}/go.mod or go.sum is not tidy: run `go mod tidy` there and commit")
        })?;
    eprintln!("{KUBERNETES_DIR} and {ETCD_DIR} are up to date");
    Ok(())
}

fn go_mod_tidy(sh: &Shell, dir: &Path) -> anyhow::Result<()> {
    let _dir = sh.push_dir(dir);
    cmd!(sh, "go mod tidy")
        .env("GOWORK", "off")
        .run()
        .context("`go mod tidy` failed")
}

/// Downloads (or finds in the module cache) the release's go.mod and returns its text.
fn release_go_mod(sh: &Shell) -> anyhow::Result<String> {
    // Outside any module, so a broken committed go.mod cannot get in the way of fixing it.
    let scratch = sh.create_temp_dir()?;
    let _dir = sh.push_dir(scratch.path());
    let query = format!("{KUBERNETES_MODULE}@{KUBERNETES_VERSION}");
    let json = cmd!(sh, "go mod download -json {query}")
        .env("GOWORK", "off")
        .env("GOFLAGS", "-mod=mod")
        .read()
        .with_context(|| format!("`go mod download {query}` failed"))?;
    let path = json_string_field(&json, "GoMod")
        .with_context(|| format!("no \"GoMod\" in `go mod download -json` output:\n{json}"))?;
    sh.read_file(path)
        .with_context(|| format!("failed to read {query}'s go.mod"))
}

/// The value of a top-level string field in `go mod download -json` output. Go escapes only
/// `"`, `\` and control characters in paths, so a tiny unescaper is enough and keeps serde out.
fn json_string_field(json: &str, field: &str) -> Option<String> {
    let start = json.find(&format!("\"{field}\":"))? + field.len() + 3;
    let rest = json[start..].trim_start().strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = rest.chars();
    loop {
        match chars.next()? {
            '"' => return Some(value),
            '\\' => match chars.next()? {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                escaped => value.push(escaped),
            },
            c => value.push(c),
        }
    }
}

/// Renders the go.mod of `tools/control-plane/kubernetes` (before `go mod tidy`) from the
/// release's go.mod: its `go` and `godebug` lines, a requirement on the release, every
/// `./staging/src/...` replacement turned into the published staging version, and the tools.
fn render_go_mod(release: &str) -> anyhow::Result<String> {
    let staging_version = format!(
        "v0.{}",
        KUBERNETES_VERSION
            .strip_prefix("v1.")
            .context("KUBERNETES_VERSION must look like v1.<minor>.<patch>")?
    );
    let go_line = release
        .lines()
        .find(|line| line.starts_with("go "))
        .context("the release's go.mod has no `go` directive")?;

    let mut godebug = Vec::new();
    let mut staging = Vec::new();
    let mut in_godebug_block = false;
    for line in release.lines() {
        let trimmed = line.trim();
        if trimmed == "godebug (" {
            in_godebug_block = true;
        } else if in_godebug_block && trimmed == ")" {
            in_godebug_block = false;
        } else if in_godebug_block {
            godebug.push(format!("godebug {trimmed}"));
        } else if trimmed.starts_with("godebug ") {
            godebug.push(trimmed.to_owned());
        }
        // `k8s.io/api => ./staging/src/k8s.io/api`, inside the replace block.
        if let Some((module, target)) = trimmed.split_once(" => ")
            && target.starts_with("./staging/src/")
        {
            staging.push(module.trim().to_owned());
        }
    }
    if staging.is_empty() {
        bail!(
            "the release's go.mod has no `=> ./staging/src/...` replacements; has its layout changed?"
        );
    }

    let mut out = format!(
        "// Generated by `cargo xtask control-plane --update` from {KUBERNETES_MODULE}@{KUBERNETES_VERSION}'s own go.mod: do not edit.\n\
         module wasm-reconciler.dev/tools/control-plane/kubernetes\n\n{go_line}\n\n"
    );
    for line in &godebug {
        out.push_str(line);
        out.push('\n');
    }
    if !godebug.is_empty() {
        out.push('\n');
    }
    out.push_str(&format!(
        "require {KUBERNETES_MODULE} {KUBERNETES_VERSION}\n\nreplace (\n"
    ));
    for module in &staging {
        out.push_str(&format!("\t{module} => {module} {staging_version}\n"));
    }
    out.push_str(")\n\ntool (\n");
    for tool in KUBERNETES_TOOLS {
        out.push_str(&format!("\t{KUBERNETES_MODULE}/{tool}\n"));
    }
    out.push_str(")\n");
    Ok(out)
}

fn first_difference(a: &str, b: &str) -> usize {
    a.lines()
        .zip(b.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| a.lines().count().min(b.lines().count()))
        + 1
}

/// Build output directory beside the cache entry (same filesystem, so `rename` is atomic),
/// removed on drop unless kept.
struct TempDir(Option<PathBuf>);

impl TempDir {
    fn create(parent: &Path, entry: &Path) -> anyhow::Result<TempDir> {
        let name = entry
            .file_name()
            .context("cache entry has no name")?
            .to_string_lossy();
        let path = parent.join(format!(".tmp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .with_context(|| format!("failed to create {}", path.display()))?;
        Ok(TempDir(Some(path)))
    }

    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

/// Removes `.tmp-*-<pid>` build directories left by runs that were killed (their pid is gone).
/// Only on systems with `/proc`; elsewhere they stay, and cost only disk space.
fn remove_stale_temp_dirs(parent: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(".tmp-")
            .and_then(|rest| rest.rsplit_once('-'))
            .map(|(_, pid)| pid)
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELEASE: &str = "\
// This is a generated file. Do not edit directly.

module k8s.io/kubernetes

go 1.24.0

godebug default=go1.24

require (
\tgithub.com/blang/semver/v4 v4.0.0
\tk8s.io/api v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/kubectl => ./staging/src/k8s.io/kubectl
)
";

    #[test]
    fn render_go_mod_replaces_staging_modules_with_published_versions() {
        let go_mod = render_go_mod(RELEASE).unwrap();
        let staging = format!("v0.{}", &KUBERNETES_VERSION[3..]);
        assert!(go_mod.contains(&format!("\tk8s.io/api => k8s.io/api {staging}\n")));
        assert!(go_mod.contains(&format!("\tk8s.io/kubectl => k8s.io/kubectl {staging}\n")));
        assert!(go_mod.contains("\ngo 1.24.0\n\ngodebug default=go1.24\n"));
        assert!(go_mod.contains(&format!("require k8s.io/kubernetes {KUBERNETES_VERSION}\n")));
        assert!(go_mod.contains("\tk8s.io/kubernetes/cmd/kube-apiserver\n"));
        assert!(!go_mod.contains("./staging"));
    }

    #[test]
    fn render_go_mod_refuses_a_release_without_staging_replacements() {
        assert!(render_go_mod("module k8s.io/kubernetes\n\ngo 1.24.0\n").is_err());
    }

    #[test]
    fn required_version_reads_blocks_and_single_lines_but_not_replacements() {
        let go_mod = "require x.io/a v1.0.0\nrequire (\n\tx.io/b v2.0.0 // indirect\n)\n\
                      replace (\n\tx.io/c => x.io/c v3.0.0\n)\n";
        assert_eq!(required_version(go_mod, "x.io/a"), Some("v1.0.0"));
        assert_eq!(required_version(go_mod, "x.io/b"), Some("v2.0.0"));
        assert_eq!(required_version(go_mod, "x.io/c"), None);
    }

    #[test]
    fn committed_go_mods_match_the_pinned_versions() {
        let root = project_root();
        let read = |dir: &str| std::fs::read_to_string(root.join(dir).join("go.mod")).unwrap();
        assert_eq!(
            required_version(&read(KUBERNETES_DIR), KUBERNETES_MODULE),
            Some(KUBERNETES_VERSION)
        );
        assert_eq!(
            required_version(&read(ETCD_DIR), ETCD_MODULE),
            Some(ETCD_VERSION)
        );
    }

    #[test]
    fn json_string_field_unescapes() {
        let json =
            "{\n\t\"Path\": \"k8s.io/kubernetes\",\n\t\"GoMod\": \"/a\\\\b \\\"c\\\".mod\"\n}";
        assert_eq!(
            json_string_field(json, "GoMod").as_deref(),
            Some("/a\\b \"c\".mod")
        );
        assert_eq!(json_string_field(json, "Zip"), None);
    }

    #[test]
    fn ldflags_stamp_the_version() {
        assert!(ldflags().contains(&format!(
            "-X k8s.io/component-base/version.gitVersion={KUBERNETES_VERSION}"
        )));
        assert!(ldflags().contains("-X k8s.io/client-go/pkg/version.gitMajor=1"));
    }
}
