//! `go-componentize --wit DIR --world WORLD IN.wasm OUT.wasm`
//!
//! Embeds the WIT world into a core module built by the standard Go toolchain
//! (`GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared`) and wraps it into a component with
//! the WASI preview1 *reactor* adapter (what `wasm-tools component embed` then
//! `wasm-tools component new --adapt wasi_snapshot_preview1=<reactor adapter>` do).
//!
//! The adapter allocates its state and stack with the module's `cabi_realloc_adapter` export
//! (the Go SDK's, a static arena), not with `memory.grow`: the Go runtime's allocator assumes
//! it is the only one growing the memory, and would hand the adapter's pages out again.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
use wit_parser::Resolve;

fn main() -> Result<()> {
    let mut wit = PathBuf::from("wit");
    let mut world = None;
    let mut memory_grow = false;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--wit" => wit = args.next().context("--wit needs a directory")?.into(),
            "--world" => world = Some(args.next().context("--world needs a name")?),
            // The adapter's allocations by `memory.grow`, as `wasm-tools component new
            // --realloc-via-memory-grow`: only to reproduce why Go plugins must not use it.
            "--realloc-via-memory-grow" => memory_grow = true,
            "-h" | "--help" => {
                println!("usage: go-componentize [--wit DIR] [--world WORLD] IN.wasm OUT.wasm");
                return Ok(());
            }
            _ => files.push(PathBuf::from(arg)),
        }
    }
    let [input, output] = files.as_slice() else {
        bail!("usage: go-componentize [--wit DIR] [--world WORLD] IN.wasm OUT.wasm");
    };

    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_path(&wit)
        .with_context(|| format!("reading the WIT package in {}", wit.display()))?;
    let world = resolve.select_world(&[package], world.as_deref())?;

    let mut module =
        std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8, false)?;

    let component = ComponentEncoder::default()
        .validate(true)
        .realloc_via_memory_grow(memory_grow)
        .module(&module)?
        .adapter(
            "wasi_snapshot_preview1",
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .encode()
        .context("encoding the component")?;

    let temporary = output.with_extension("wasm.tmp");
    std::fs::write(&temporary, &component)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, output)
        .with_context(|| format!("renaming {} to {}", temporary.display(), output.display()))?;
    Ok(())
}
