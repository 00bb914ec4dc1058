//! Compiled components: read from the on-disk cache, or compiled (in a child process when the
//! host runs as its own binary) and stored there.
//!
//! An entry is keyed by the component's SHA-256 and the engine's compatibility hash
//! ([`Engine::precompile_compatibility_hash`]), so a changed plugin, a host upgrade or a change
//! of engine settings never loads a stale artifact. An entry is [`MAGIC`], the SHA-256 of the
//! artifact, then the artifact; one that does not check out (truncated, corrupt, or refused by
//! wasmtime) is logged, removed and compiled again. Entries are written to a temporary file and
//! renamed into place, in a directory only the host's user may use.
//!
//! Compiling in a child process ([`CompileIn::Child`]) keeps Cranelift's memory out of the
//! host: it is the largest allocation a plugin load makes, and it is returned to the system
//! when the child exits instead of lingering in the host's heap. A component that makes the
//! compiler fail or crash takes the child down, not the host.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::sandbox::SandboxConfig;

/// The first bytes of every cache entry: the format, so that another one is never misread.
const MAGIC: &[u8] = b"wasm-reconciler compiled component v1\n";
/// Bytes of a SHA-256 digest.
const DIGEST_BYTES: usize = 32;
/// The cache's own directory inside the configured one.
const CACHE_SUBDIR: &str = "compiled-v1";
/// Extension of cache entries.
const ENTRY_EXTENSION: &str = "cwasm";
/// How long a child may take to compile one component (large Python or JavaScript plugins
/// take tens of seconds on a busy node).
const CHILD_TIMEOUT: Duration = Duration::from_secs(300);
/// The end of a failed child's stderr that is kept for the error.
const CHILD_STDERR_BYTES: usize = 4096;

/// Where components are compiled.
#[derive(Debug, Clone, Default)]
pub enum CompileIn {
    /// In the host's process.
    #[default]
    Process,
    /// In a child process: the host binary at this path, run as `wasm-reconciler compile`.
    Child(PathBuf),
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provenance {
    /// Read from the cache.
    Cache,
    /// Compiled now.
    Compiled,
}

impl Provenance {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Provenance::Cache => "cache",
            Provenance::Compiled => "compile",
        }
    }
}

/// A component ready to pre-link, and how it was obtained.
pub(crate) struct Compiled {
    pub(crate) component: Component,
    pub(crate) loaded: Loaded,
}

/// How a plugin's component was obtained at load.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub(crate) from: Provenance,
    /// Reading the cache entry, or compiling (and storing) it.
    pub(crate) took: Duration,
    /// Its cache entry, if there is a cache: to keep it when pruning.
    pub(crate) cache_entry: Option<PathBuf>,
    /// The SHA-256 of the component's bytes, in hex: which version of the plugin this is.
    pub(crate) sha256: String,
}

/// Why an entry was not used.
#[derive(Debug, thiserror::Error)]
enum BadEntry {
    #[error("it is not a cache entry of this format")]
    Format,
    #[error("its digest does not match its contents (truncated or corrupt)")]
    Digest,
    #[error("wasmtime refused it: {0:#}")]
    Refused(wasmtime::Error),
}

/// Compiles components, through the cache when there is one.
#[derive(Debug, Clone)]
pub(crate) struct Compiler {
    compile_in: CompileIn,
    cache: Option<PathBuf>,
    /// The engine's compatibility hash, as hex: half of every key.
    engine_hash: String,
    /// What a child needs to build an engine whose artifacts this one accepts.
    sandbox: SandboxConfig,
}

impl Compiler {
    /// A compiler for `engine`; `cache_dir` is made private to this user, or not used (with a
    /// warning) if that fails.
    pub(crate) fn new(
        engine: &Engine,
        sandbox: SandboxConfig,
        compile_in: CompileIn,
        cache_dir: Option<&Path>,
    ) -> Self {
        let cache = cache_dir.and_then(|dir| match private_dir(&dir.join(CACHE_SUBDIR)) {
            Ok(dir) => Some(dir),
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "cannot use the compile cache; plugins are compiled at every start");
                None
            }
        });
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            compile_in,
            cache,
            engine_hash: format!("{:016x}", hasher.finish()),
            sandbox,
        }
    }

    /// A compiler that compiles in this process and keeps nothing: for tools and tests.
    pub(crate) fn uncached(sandbox: &super::Sandbox) -> Self {
        Self::new(
            &sandbox.engine,
            sandbox.config.clone(),
            CompileIn::Process,
            None,
        )
    }

    /// The cache entry of a component with this SHA-256 (hex), if there is a cache.
    fn entry_for(&self, digest: &str) -> Option<PathBuf> {
        let dir = self.cache.as_ref()?;
        Some(dir.join(format!("{digest}-{}.{ENTRY_EXTENSION}", self.engine_hash)))
    }

    /// The component from `wasm`: from the cache if it holds it, compiled (and stored)
    /// otherwise.
    pub(crate) async fn component(
        &self,
        engine: &Engine,
        wasm: Vec<u8>,
        file: &Path,
    ) -> wasmtime::Result<Compiled> {
        let started = Instant::now();
        let sha256 = sha256_hex(&wasm);
        let entry = self.entry_for(&sha256);
        if let Some(path) = &entry {
            match read_entry(engine, path).await {
                Ok(Some(component)) => {
                    return Ok(Compiled {
                        component,
                        loaded: Loaded {
                            from: Provenance::Cache,
                            took: started.elapsed(),
                            cache_entry: entry,
                            sha256,
                        },
                    });
                }
                Ok(None) => {}
                Err(why) => {
                    tracing::warn!(plugin_file = %file.display(), entry = %path.display(), %why, "compile cache entry not used; compiling again");
                    // A new entry replaces it below; a failure to remove it changes nothing.
                    let _ = tokio::fs::remove_file(path).await;
                }
            }
        }
        let artifact = match &self.compile_in {
            CompileIn::Process => {
                let engine = engine.clone();
                tokio::task::spawn_blocking(move || engine.precompile_component(&wasm))
                    .await
                    .map_err(|join| wasmtime::Error::msg(join.to_string()))??
            }
            CompileIn::Child(binary) => compile_in_child(binary, &self.sandbox, wasm).await?,
        };
        let component = deserialize(engine, &artifact)?;
        if let Some(entry) = &entry
            && let Err(error) = write_entry(entry, &artifact).await
        {
            tracing::warn!(entry = %entry.display(), %error, "cannot store the compiled plugin in the cache");
        }
        Ok(Compiled {
            component,
            loaded: Loaded {
                from: Provenance::Compiled,
                took: started.elapsed(),
                cache_entry: entry,
                sha256,
            },
        })
    }

    /// Removes cache entries (and leftover temporary files) that are not in `keep`: what the
    /// plugins directory no longer holds, or what an older host compiled.
    pub(crate) async fn prune(&self, keep: &[PathBuf]) {
        let Some(dir) = &self.cache else {
            return;
        };
        let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let path = entry.path();
            if keep.contains(&path) {
                continue;
            }
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {
                    tracing::debug!(entry = %path.display(), "unused compile cache entry removed")
                }
                Err(error) => {
                    tracing::debug!(entry = %path.display(), %error, "cannot remove a compile cache entry");
                }
            }
        }
    }
}

/// Makes `dir` (and its parents) exist, and `dir` itself accessible to this user only.
fn private_dir(dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    // Only the owner (or root) may change the mode: success also means the directory is ours.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(dir.to_owned())
}

/// Reads an entry: `None` if there is none, an error if it is there but unusable.
async fn read_entry(engine: &Engine, entry: &Path) -> Result<Option<Component>, BadEntry> {
    // Absent or unreadable alike: compiling again writes a fresh one.
    let Ok(bytes) = tokio::fs::read(entry).await else {
        return Ok(None);
    };
    let artifact = checked_artifact(&bytes)?;
    deserialize(engine, artifact)
        .map(Some)
        .map_err(BadEntry::Refused)
}

/// The artifact inside an entry's bytes, once its format and digest check out.
fn checked_artifact(bytes: &[u8]) -> Result<&[u8], BadEntry> {
    let rest = bytes.strip_prefix(MAGIC).ok_or(BadEntry::Format)?;
    if rest.len() < DIGEST_BYTES {
        return Err(BadEntry::Format);
    }
    let (digest, artifact) = rest.split_at(DIGEST_BYTES);
    if Sha256::digest(artifact).as_slice() != digest {
        return Err(BadEntry::Digest);
    }
    Ok(artifact)
}

/// An entry's bytes for `artifact`.
fn entry_bytes(artifact: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(MAGIC.len() + DIGEST_BYTES + artifact.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&Sha256::digest(artifact));
    bytes.extend_from_slice(artifact);
    bytes
}

/// Writes an entry atomically: a temporary file in the same directory, synced, then renamed.
async fn write_entry(entry: &Path, artifact: &[u8]) -> std::io::Result<()> {
    let bytes = entry_bytes(artifact);
    let entry = entry.to_owned();
    tokio::task::spawn_blocking(move || {
        let dir = entry.parent().unwrap_or(Path::new("."));
        // Unique to this write: two plugin files with the same bytes share an entry.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let temporary = dir.join(format!(
            ".{}.{}.{}.tmp",
            entry.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id(),
            WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let written = (|| {
            use std::io::Write;
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&temporary, &entry)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Loads an artifact this host's engine (or a child with the same settings) produced.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime runs the machine code in `artifact` as is, so it must come from a
    // trusted compile. It does: either it was just compiled by this process or by a child
    // process running this binary (from its pipe, never a file), or it was read from a cache
    // entry that such a compile wrote, in a directory only this user can write, and whose
    // SHA-256 matched. wasmtime itself checks that the artifact was compiled for an engine
    // with this engine's settings and version.
    unsafe { Component::deserialize(engine, artifact) }
}

/// Compiles `wasm` with `binary compile` in a child process; the artifact comes back on its
/// stdout.
async fn compile_in_child(
    binary: &Path,
    sandbox: &SandboxConfig,
    wasm: Vec<u8>,
) -> wasmtime::Result<Vec<u8>> {
    let mut child = tokio::process::Command::new(binary)
        .arg("compile")
        .arg("--max-instances")
        .arg(sandbox.instance_slots().to_string())
        .arg("--memory-limit-bytes")
        .arg(sandbox.memory_limit_bytes().to_string())
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| {
            wasmtime::Error::msg(format!(
                "cannot start the compiler process {}: {error}",
                binary.display()
            ))
        })?;
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(wasmtime::Error::msg("the compiler process has no pipes"));
    };
    let run = async {
        let feed = async move {
            // A child that exits early closes the pipe: its status says why.
            let _ = stdin.write_all(&wasm).await;
        };
        let mut artifact = Vec::new();
        let mut errors = Vec::new();
        let (_, read_out, read_err) = tokio::join!(
            feed,
            stdout.read_to_end(&mut artifact),
            stderr.read_to_end(&mut errors)
        );
        read_out?;
        read_err?;
        let status = child.wait().await?;
        std::io::Result::Ok((status, artifact, errors))
    };
    let (status, artifact, errors) = tokio::time::timeout(CHILD_TIMEOUT, run)
        .await
        .map_err(|_| {
            wasmtime::Error::msg(format!(
                "compiling took longer than {CHILD_TIMEOUT:?}; the compiler process was killed"
            ))
        })?
        .map_err(|error| wasmtime::Error::msg(format!("the compiler process failed: {error}")))?;
    if !status.success() {
        let tail = &errors[errors.len().saturating_sub(CHILD_STDERR_BYTES)..];
        let said = String::from_utf8_lossy(tail);
        return Err(wasmtime::Error::msg(format!(
            "the compiler process {status}: {}",
            said.trim()
        )));
    }
    Ok(artifact)
}

/// What `wasm-reconciler compile` does in the child: reads a component on stdin, compiles it
/// with the engine settings of `sandbox`, writes the artifact to stdout.
///
/// # Errors
///
/// Fails if stdin cannot be read, the engine cannot be created, the component does not
/// compile, or stdout cannot be written.
pub fn compile_stdin_to_stdout(sandbox: &SandboxConfig) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let mut wasm = Vec::new();
    std::io::stdin().read_to_end(&mut wasm)?;
    let engine = super::sandbox::engine(sandbox)
        .map_err(|error| anyhow::anyhow!("cannot create the engine: {error:#}"))?;
    let artifact = engine
        .precompile_component(&wasm)
        .map_err(|error| anyhow::anyhow!("{error:#}"))?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&artifact)?;
    stdout.flush()?;
    Ok(())
}

/// The SHA-256 of `bytes` in lowercase hex: how the host names a version of a plugin.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_its_artifact() {
        let bytes = entry_bytes(b"artifact");
        assert_eq!(checked_artifact(&bytes).ok(), Some(&b"artifact"[..]));
    }

    #[test]
    fn truncated_or_corrupt_entries_are_refused() {
        let bytes = entry_bytes(b"some compiled code");
        let truncated = &bytes[..bytes.len() - 1];
        assert!(matches!(checked_artifact(truncated), Err(BadEntry::Digest)));
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(checked_artifact(&flipped), Err(BadEntry::Digest)));
        assert!(matches!(
            checked_artifact(&bytes[..MAGIC.len() + 3]),
            Err(BadEntry::Format)
        ));
        assert!(matches!(
            checked_artifact(b"\0asm\x0d\0\x01\0"),
            Err(BadEntry::Format)
        ));
    }

    #[test]
    fn keys_change_with_the_component_and_the_engine() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let sandbox = SandboxConfig::default().max_instances(2);
        let engine = super::super::sandbox::engine(&sandbox).unwrap_or_else(|e| panic!("{e}"));
        let compiler = Compiler::new(
            &engine,
            sandbox.clone(),
            CompileIn::Process,
            Some(dir.path()),
        );
        let a = compiler.entry_for("0ne");
        assert_ne!(a, compiler.entry_for("tw0"));
        assert_eq!(a, compiler.entry_for("0ne"));
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        let other = Engine::new(&config).unwrap_or_else(|e| panic!("{e}"));
        let other = Compiler::new(&other, sandbox, CompileIn::Process, Some(dir.path()));
        assert_ne!(
            a,
            other.entry_for("0ne"),
            "epoch interruption changes the key"
        );
    }

    #[test]
    fn the_cache_directory_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let cache = dir.path().join("cache");
        std::fs::create_dir_all(cache.join(CACHE_SUBDIR)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(
            cache.join(CACHE_SUBDIR),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let sandbox = SandboxConfig::default().max_instances(1);
        let engine = super::super::sandbox::engine(&sandbox).unwrap_or_else(|e| panic!("{e}"));
        let _ = Compiler::new(&engine, sandbox, CompileIn::Process, Some(&cache));
        let mode = std::fs::metadata(cache.join(CACHE_SUBDIR))
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_default();
        assert_eq!(mode, 0o700);
    }
}
