//! Command-line flags of `cargo xtask`, parsed by hand to keep xtask's compile time low.
//!
//! To add a task: add a variant to [`Xtask`], a struct for its flags, a `parse` arm in
//! [`Xtask::from_args`], and a paragraph in [`HELP`].

use std::{ffi::OsString, path::PathBuf};

use anyhow::{Context, bail};

/// The help text; printed by `cargo xtask help`, `-h` and `--help`.
pub(crate) const HELP: &str = "\
cargo xtask <task> [flags]

Tasks:
  control-plane    Build kube-apiserver, kubectl and etcd (Go, from tools/control-plane/) once,
                   into a per-version cache outside the clone; print KUBEBUILDER_ASSETS=<dir>.
      --with-controller-manager   also build kube-controller-manager
      --update                    regenerate tools/control-plane/kubernetes/go.mod from the
                                  Kubernetes release's go.mod, then `go mod tidy`
      --check                     fail if the committed go.mod files differ from what
                                  --update (or `go mod tidy`) would write
  plugins          Build the plugin crates for wasm32-wasip2 (release): the examples in plugins/
                   into <target>/plugins, and with the fixtures in test-plugins/ into
                   <target>/test-plugins; print both directories.
  test             What CI runs: fmt check, control plane, go.mod check, plugins, out-of-tree,
                   clippy (native and wasm32-wasip2), then every test.
      --skip-go-mod-check         do not regenerate go.mod to compare (needs the Go proxy)
  out-of-tree      Build a plugin crate outside the workspace against a copy of guest-sdk/ alone
                   (by path, offline) for wasm32-wasip2, and run its test-kit test: what a
                   plugin author's own repository does. Also checks guest-sdk/wit/ against wit/0.2.0/.
  dev              A local cluster for plugin authors: start etcd, kube-apiserver and
                   kube-controller-manager on loopback, install the example plugins' CRDs,
                   write a kubeconfig to ${XDG_CACHE_HOME:-~/.cache}/wasm-reconciler/dev/kubeconfig
                   (the same path on every run), print how to use it, and run until Ctrl-C or
                   SIGTERM, then stop it all and remove its data.
      --crds PATH                 also install these CRDs (a file, or a directory of them, as
                                  `kubectl apply -f` takes it); may be repeated
  demo             Start a local control plane, run the host on the example plugin, apply a
                   sample MyResource, print `kubectl describe` of it, and stop.
  bench            End-to-end benchmark (not part of `test`): the release host with the example
                   plugin against the same logic as a native kube-rs controller
                   (bench/native-myresource), each on a fresh control plane; prints a markdown
                   table and writes it to <target>/bench/e2e.md. See docs/benchmarks.md.
      --objects N,...             MyResources created per run (default 1000,5000)
      --runs R                    runs per object count and controller (default 3)
      --kinds K,...               1 runs the example; K > 1 runs a fleet: one host with K
                                  plugins against K native controllers, N objects each
                                  (default 1)
      --fleet-host-instances N    the host's --max-instances in a fleet (default 32 per
                                  plugin, like each native controller)
      --lifecycle                 measure the plugin lifecycle instead: start with an empty
                                  and a warm compile cache, and hot swaps, with 8 Rust plugins
                                  and the Python and JavaScript examples (or, with --kinds, the
                                  largest of --kinds Rust plugins alone); report in
                                  <target>/bench/lifecycle.md
  help             Print this help.
";

/// A parsed `cargo xtask` command line.
#[derive(Debug)]
pub(crate) enum Xtask {
    /// `cargo xtask help`.
    Help,
    /// `cargo xtask control-plane`.
    ControlPlane(ControlPlane),
    /// `cargo xtask plugins`.
    Plugins(Plugins),
    /// `cargo xtask test`.
    Test(Test),
    /// `cargo xtask out-of-tree`.
    OutOfTree(OutOfTree),
    /// `cargo xtask dev`.
    Dev(Dev),
    /// `cargo xtask demo`.
    Demo(Demo),
    /// `cargo xtask bench`.
    Bench(Bench),
}

/// Flags of `cargo xtask plugins` (none).
#[derive(Debug, Default)]
pub(crate) struct Plugins;

/// Flags of `cargo xtask test`.
#[derive(Debug, Default)]
pub(crate) struct Test {
    /// Skip regenerating go.mod to compare it with the committed one.
    pub(crate) skip_go_mod_check: bool,
}

/// Flags of `cargo xtask out-of-tree` (none).
#[derive(Debug, Default)]
pub(crate) struct OutOfTree;

/// Flags of `cargo xtask dev`.
#[derive(Debug, Default)]
pub(crate) struct Dev {
    /// `--crds`: more CRD files or directories, as given (relative to the current directory).
    pub(crate) crds: Vec<PathBuf>,
}

/// Flags of `cargo xtask demo` (none).
#[derive(Debug, Default)]
pub(crate) struct Demo;

/// Flags of `cargo xtask bench`.
#[derive(Debug, Default)]
pub(crate) struct Bench {
    /// `--objects`: the object counts, comma-separated, as given (checked by the benchmark).
    pub(crate) objects: Option<String>,
    /// `--runs`: runs per object count and controller.
    pub(crate) runs: Option<u32>,
    /// `--kinds`: fleet sizes, comma-separated (checked by the benchmark).
    pub(crate) kinds: Option<String>,
    /// `--fleet-host-instances`: the host's slots in a fleet.
    pub(crate) fleet_host_instances: Option<u32>,
    /// `--lifecycle`: the plugin lifecycle benchmark instead.
    pub(crate) lifecycle: bool,
}

/// Flags of `cargo xtask control-plane`.
#[derive(Debug, Default)]
pub(crate) struct ControlPlane {
    /// Also build kube-controller-manager.
    pub(crate) with_controller_manager: bool,
    /// Regenerate the committed go.mod instead of building.
    pub(crate) update: bool,
    /// Check the committed go.mod instead of building.
    pub(crate) check: bool,
}

impl Xtask {
    /// Parses the process arguments.
    pub(crate) fn from_env() -> anyhow::Result<Xtask> {
        Xtask::from_args(std::env::args_os().skip(1))
    }

    /// Parses `args`, the arguments after the program name.
    pub(crate) fn from_args(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<Xtask> {
        let mut args = Args::new(args)?;
        if args.wants_help() {
            return Ok(Xtask::Help);
        }
        let Some(task) = args.next_positional() else {
            return Ok(Xtask::Help);
        };
        let xtask = match task.as_str() {
            "help" => Xtask::Help,
            "control-plane" => {
                let cmd = ControlPlane {
                    with_controller_manager: args.flag("--with-controller-manager"),
                    update: args.flag("--update"),
                    check: args.flag("--check"),
                };
                if cmd.update && cmd.check {
                    bail!("--update and --check cannot be used together");
                }
                Xtask::ControlPlane(cmd)
            }
            "plugins" => Xtask::Plugins(Plugins),
            "test" => Xtask::Test(Test {
                skip_go_mod_check: args.flag("--skip-go-mod-check"),
            }),
            "out-of-tree" => Xtask::OutOfTree(OutOfTree),
            "dev" => {
                let mut crds = Vec::new();
                while let Some(path) = args.value("--crds")? {
                    crds.push(PathBuf::from(path));
                }
                Xtask::Dev(Dev { crds })
            }
            "demo" => Xtask::Demo(Demo),
            "bench" => Xtask::Bench(Bench {
                objects: args.value("--objects")?,
                runs: args
                    .value("--runs")?
                    .map(|runs| runs.parse().context("--runs takes a number"))
                    .transpose()?,
                kinds: args.value("--kinds")?,
                fleet_host_instances: args
                    .value("--fleet-host-instances")?
                    .map(|n| n.parse().context("--fleet-host-instances takes a number"))
                    .transpose()?,
                lifecycle: args.flag("--lifecycle"),
            }),
            other => bail!("unknown task `{other}`; run `cargo xtask help`"),
        };
        args.finish()?;
        Ok(xtask)
    }
}

/// The remaining arguments; each parse step takes what it knows, and [`Args::finish`] rejects
/// whatever is left.
struct Args(Vec<String>);

impl Args {
    fn new(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<Args> {
        let args = args
            .into_iter()
            .map(|arg| {
                arg.into_string()
                    .map_err(|arg| anyhow::anyhow!("argument is not UTF-8: {arg:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .context("invalid command line")?;
        Ok(Args(args))
    }

    /// Takes `name value` or `name=value`; `None` if the flag is absent.
    fn value(&mut self, name: &str) -> anyhow::Result<Option<String>> {
        let Some(index) = self
            .0
            .iter()
            .position(|arg| arg == name || arg.starts_with(&format!("{name}=")))
        else {
            return Ok(None);
        };
        let arg = self.0.remove(index);
        if let Some(value) = arg.strip_prefix(&format!("{name}=")) {
            return Ok(Some(value.to_owned()));
        }
        if index < self.0.len() && !self.0[index].starts_with('-') {
            return Ok(Some(self.0.remove(index)));
        }
        bail!("{name} needs a value")
    }

    fn next_positional(&mut self) -> Option<String> {
        let index = self.0.iter().position(|arg| !arg.starts_with('-'))?;
        Some(self.0.remove(index))
    }

    fn wants_help(&self) -> bool {
        self.0.iter().any(|arg| arg == "-h" || arg == "--help")
    }

    fn flag(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|arg| arg != name);
        self.0.len() != before
    }

    fn finish(self) -> anyhow::Result<()> {
        match self.0.first() {
            None => Ok(()),
            Some(arg) => bail!("unexpected argument `{arg}`; run `cargo xtask help`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Xtask> {
        Xtask::from_args(args.iter().map(OsString::from))
    }

    #[test]
    fn no_task_means_help() {
        assert!(matches!(parse(&[]), Ok(Xtask::Help)));
        assert!(matches!(parse(&["--help"]), Ok(Xtask::Help)));
    }

    #[test]
    fn control_plane_flags_are_parsed() {
        let Ok(Xtask::ControlPlane(cmd)) = parse(&["control-plane", "--with-controller-manager"])
        else {
            panic!("expected control-plane");
        };
        assert!(cmd.with_controller_manager && !cmd.update && !cmd.check);
    }

    #[test]
    fn bench_flags_take_values() {
        let Ok(Xtask::Bench(cmd)) = parse(&["bench", "--objects", "100,200", "--runs=2"]) else {
            panic!("expected bench");
        };
        assert_eq!(cmd.objects.as_deref(), Some("100,200"));
        assert_eq!(cmd.runs, Some(2));
        assert!(parse(&["bench", "--runs"]).is_err());
        assert!(parse(&["bench", "--runs", "many"]).is_err());
    }

    #[test]
    fn dev_takes_repeated_crds() {
        let Ok(Xtask::Dev(cmd)) = parse(&["dev", "--crds", "a.yaml", "--crds=crds/"]) else {
            panic!("expected dev");
        };
        assert_eq!(cmd.crds, [PathBuf::from("a.yaml"), PathBuf::from("crds/")]);
        let Ok(Xtask::Dev(cmd)) = parse(&["dev"]) else {
            panic!("expected dev");
        };
        assert!(cmd.crds.is_empty());
        assert!(parse(&["dev", "--crds"]).is_err());
    }

    #[test]
    fn unknown_flags_and_tasks_are_rejected() {
        let err = parse(&["control-plane", "--frobnicate"]).unwrap_err();
        assert!(err.to_string().contains("--frobnicate"), "{err}");
        assert!(parse(&["frobnicate"]).is_err());
        assert!(parse(&["control-plane", "--update", "--check"]).is_err());
    }
}
