//! The plugins directory: which plugin files it holds, the version (SHA-256) in each, and a
//! signal whenever that may have changed.
//!
//! A plugin file is a `*.wasm` file directly in the directory whose name does not start with
//! a dot. Dot-files and other names are how editors, `kubectl cp` and Kubernetes volumes stage
//! their writes (`..data`, `..2026_12_03_…`), so they are never loaded; a symlink is followed,
//! which is how a ConfigMap volume presents its files. Writing a new version to a temporary
//! name and renaming it into place is atomic; a file written in place may be seen half
//! written, fail to load, and load once its last write lands.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use notify::Watcher as _;
use tokio::sync::mpsc;

use crate::plugin::sha256_hex;

/// Whether a directory entry named `name` is a plugin file.
pub(crate) fn is_plugin_file(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    !name.starts_with('.') && name.len() > ".wasm".len() && name.ends_with(".wasm")
}

/// What identifies one state of a file without reading it: a replaced file (rename, symlink
/// swap) has another inode, a rewritten one another size or modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
    #[cfg(unix)]
    changed: (i64, i64),
}

impl Fingerprint {
    fn of(metadata: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt as _;
        Self {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            #[cfg(unix)]
            inode: (metadata.dev(), metadata.ino()),
            #[cfg(unix)]
            changed: (metadata.ctime(), metadata.ctime_nsec()),
        }
    }
}

/// Lists the plugin files of a directory with the SHA-256 of each, reading a file again only
/// when its fingerprint changed.
#[derive(Debug)]
pub(crate) struct Scanner {
    dir: PathBuf,
    seen: HashMap<PathBuf, (Fingerprint, String)>,
}

impl Scanner {
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            seen: HashMap::new(),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The plugin files now in the directory, each with the SHA-256 of its contents. A file
    /// that vanishes or cannot be read while being listed is left out (a removal, or a write
    /// still going on: the next look sees it).
    ///
    /// # Errors
    ///
    /// Fails if the directory itself cannot be listed.
    pub(crate) fn scan(&mut self) -> std::io::Result<BTreeMap<PathBuf, String>> {
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if !is_plugin_file(&entry.file_name()) {
                continue;
            }
            let path = entry.path();
            // Follows symlinks: a ConfigMap volume's file is a link through `..data`.
            let Ok(metadata) = std::fs::metadata(&path) else {
                continue;
            };
            if !metadata.is_file() {
                continue;
            }
            let fingerprint = Fingerprint::of(&metadata);
            let sha256 = match self.seen.get(&path) {
                Some((seen, sha256)) if *seen == fingerprint => sha256.clone(),
                _ => match std::fs::read(&path) {
                    Ok(bytes) => sha256_hex(&bytes),
                    Err(_) => continue,
                },
            };
            self.seen
                .insert(path.clone(), (fingerprint, sha256.clone()));
            files.insert(path, sha256);
        }
        self.seen.retain(|path, _| files.contains_key(path));
        Ok(files)
    }
}

/// Signals when the plugins directory may have changed: on every file system event in it,
/// and every `rescan` in case an event was missed (or the directory cannot be watched).
pub(crate) struct DirWatch {
    // Dropping the watcher stops the events; without one, `events` is closed.
    _watcher: Option<notify::RecommendedWatcher>,
    events: mpsc::UnboundedReceiver<()>,
    rescan: Duration,
}

/// How long the directory must be quiet before a change is acted on: a copy or an unpacked
/// ConfigMap update is a burst of events.
const QUIET: Duration = Duration::from_millis(100);
/// The longest a burst of events delays a look at the directory.
const MAX_QUIET_WAIT: Duration = Duration::from_secs(2);

impl DirWatch {
    /// Watches `dir`. If the file system cannot be watched, the directory is only looked at
    /// every `rescan`, with a warning.
    pub(crate) fn new(dir: &Path, rescan: Duration) -> Self {
        let (sender, events) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Err(error) = &event {
                tracing::debug!(%error, "plugins directory watch error; looking again");
            }
            let _ = sender.send(());
        })
        .and_then(|mut watcher| {
            watcher.watch(dir, notify::RecursiveMode::NonRecursive)?;
            Ok(watcher)
        });
        let watcher = match watcher {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, ?rescan, "cannot watch the plugins directory; looking at it periodically instead");
                None
            }
        };
        Self {
            _watcher: watcher,
            events,
            rescan,
        }
    }

    /// Completes once the directory may have changed and has been quiet for a moment, or
    /// when a periodic look is due.
    pub(crate) async fn changed(&mut self) {
        tokio::select! {
            event = self.events.recv() => {
                if event.is_none() {
                    // No watcher (its callback owned the sender): periodic looks only.
                    tokio::time::sleep(self.rescan).await;
                    return;
                }
            }
            () = tokio::time::sleep(self.rescan) => return,
        }
        let burst = tokio::time::Instant::now();
        loop {
            let quiet = tokio::time::timeout(QUIET, self.events.recv());
            match quiet.await {
                Ok(Some(())) if burst.elapsed() < MAX_QUIET_WAIT => {}
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_wasm_files_are_plugin_files() {
        for name in ["a.wasm", "my-plugin.wasm", "x.y.wasm"] {
            assert!(is_plugin_file(OsStr::new(name)), "{name}");
        }
        for name in [
            ".a.wasm",
            "..data",
            ".wasm",
            "a.wasm.tmp",
            "a.wasm~",
            "a.wasm.part",
            "a.wat",
            "README",
        ] {
            assert!(!is_plugin_file(OsStr::new(name)), "{name}");
        }
    }

    fn write(path: &Path, bytes: &[u8]) {
        std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    #[test]
    fn a_scan_lists_versions_and_sees_renames_into_place_and_removals() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let mut scanner = Scanner::new(dir.path());
        write(&dir.path().join("a.wasm"), b"one");
        write(&dir.path().join(".b.wasm"), b"hidden");
        write(&dir.path().join("c.wasm.tmp"), b"staged");
        let first = scanner.scan().unwrap_or_else(|e| panic!("scan: {e}"));
        let a = dir.path().join("a.wasm");
        assert_eq!(first.keys().collect::<Vec<_>>(), vec![&a]);
        assert_eq!(first[&a], sha256_hex(b"one"));

        // Rename into place: same size, new inode.
        write(&dir.path().join("a.wasm.tmp"), b"two");
        std::fs::rename(dir.path().join("a.wasm.tmp"), &a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            scanner.scan().unwrap_or_else(|e| panic!("scan: {e}"))[&a],
            sha256_hex(b"two")
        );

        std::fs::remove_file(&a).unwrap_or_else(|e| panic!("{e}"));
        assert!(scanner.scan().unwrap_or_else(|e| panic!("{e}")).is_empty());
    }

    /// How the kubelet updates a ConfigMap volume: files are links through `..data`, which is
    /// swapped to a new timestamped directory by a rename.
    #[cfg(unix)]
    #[test]
    fn a_configmap_volume_update_is_seen_through_the_data_symlink_swap() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let root = dir.path();
        let stage = |name: &str, bytes: &[u8]| {
            std::fs::create_dir(root.join(name)).unwrap_or_else(|e| panic!("{e}"));
            write(&root.join(name).join("p.wasm"), bytes);
        };
        stage("..2026_12_03_10_00_00.1", b"v1");
        symlink("..2026_12_03_10_00_00.1", root.join("..data")).unwrap_or_else(|e| panic!("{e}"));
        symlink("..data/p.wasm", root.join("p.wasm")).unwrap_or_else(|e| panic!("{e}"));
        let mut scanner = Scanner::new(root);
        let plugin = root.join("p.wasm");
        let first = scanner.scan().unwrap_or_else(|e| panic!("scan: {e}"));
        assert_eq!(first.len(), 1, "only the link is a plugin file: {first:?}");
        assert_eq!(first[&plugin], sha256_hex(b"v1"));

        stage("..2026_12_03_10_05_00.2", b"v2");
        symlink("..2026_12_03_10_05_00.2", root.join("..data_tmp"))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::rename(root.join("..data_tmp"), root.join("..data"))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::remove_dir_all(root.join("..2026_12_03_10_00_00.1"))
            .unwrap_or_else(|e| panic!("{e}"));
        let second = scanner.scan().unwrap_or_else(|e| panic!("scan: {e}"));
        assert_eq!(second[&plugin], sha256_hex(b"v2"));
    }

    #[tokio::test]
    async fn a_write_in_the_directory_is_signalled() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let mut watch = DirWatch::new(dir.path(), Duration::from_secs(3600));
        write(&dir.path().join("a.wasm"), b"one");
        tokio::time::timeout(Duration::from_secs(10), watch.changed())
            .await
            .unwrap_or_else(|_| panic!("no change signalled"));
    }
}
