//! See <https://github.com/matklad/cargo-xtask/>.
//!
//! This binary holds the project's automation that is not expressible with plain `cargo`:
//! `cargo xtask <task>`, where `.cargo/config.toml` aliases `xtask` to
//! `run --quiet --package xtask --`. Run `cargo xtask help` for the list of tasks.
//!
//! Each task lives in its own module and exposes a `run` for its flags, plus whatever functions
//! other tasks need (e.g. [`control_plane::ensure`]). Tasks run external programs through
//! `xshell`, with the project root as the current directory.

mod bench;
mod control_plane;
mod demo;
mod dev;
mod flags;
mod out_of_tree;
mod plugins;
mod test;

use std::path::{Path, PathBuf};

use xshell::Shell;

fn main() -> anyhow::Result<()> {
    let flags = flags::Xtask::from_env()?;
    let sh = &Shell::new()?;
    sh.change_dir(project_root());

    match flags {
        flags::Xtask::Help => {
            print!("{}", flags::HELP);
            Ok(())
        }
        flags::Xtask::ControlPlane(cmd) => cmd.run(sh),
        flags::Xtask::Plugins(cmd) => cmd.run(sh),
        flags::Xtask::Test(cmd) => cmd.run(sh),
        flags::Xtask::OutOfTree(cmd) => cmd.run(sh),
        flags::Xtask::Dev(cmd) => cmd.run(sh),
        flags::Xtask::Demo(cmd) => cmd.run(sh),
        flags::Xtask::Bench(cmd) => cmd.run(sh),
    }
}

/// The workspace root: the parent of this crate's manifest directory. `cargo run` says where
/// that is at run time; the path compiled in is only the fallback, since a binary built for
/// another checkout (sharing a target dir) would otherwise work on that checkout.
pub(crate) fn project_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.join(".."), Path::to_path_buf)
}
