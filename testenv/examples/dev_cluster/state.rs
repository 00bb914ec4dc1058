//! The state directory of a dev cluster: the kubeconfig, a link to kubectl, and the pid file
//! that is locked while a dev cluster runs and records what it started.

use std::{
    fs::{File, OpenOptions, TryLockError},
    io::{Read, Seek, SeekFrom, Write},
    os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

const PID_FILE: &str = "dev-cluster.pid";

/// The state directory, private to this user (the kubeconfig in it holds an admin key).
pub(crate) struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Creates `dir` (mode 0700) with its parents, or makes an existing one private.
    pub(crate) fn create(dir: &Path) -> anyhow::Result<StateDir> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} private", dir.display()))?;
        Ok(StateDir {
            dir: dir.to_owned(),
        })
    }

    /// The admin kubeconfig, while a dev cluster runs.
    pub(crate) fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// `bin/kubectl`: a link to the kubectl the dev cluster uses, for `PATH`.
    pub(crate) fn kubectl_link(&self) -> PathBuf {
        self.dir.join("bin").join("kubectl")
    }

    /// Writes the kubeconfig for `env`: to a private temporary file first, then renamed, so
    /// that a reader never sees half of it.
    pub(crate) fn write_kubeconfig(&self, env: &testenv::TestEnv) -> anyhow::Result<PathBuf> {
        let path = self.kubeconfig();
        let partial = self.dir.join(".kubeconfig.partial");
        env.write_kubeconfig(env.config(), &partial)?;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} private", partial.display()))?;
        std::fs::rename(&partial, &path)
            .with_context(|| format!("moving the kubeconfig to {}", path.display()))?;
        Ok(path)
    }

    /// Points `bin/kubectl` at `kubectl`.
    pub(crate) fn link_kubectl(&self, kubectl: &Path) -> anyhow::Result<PathBuf> {
        let link = self.kubectl_link();
        let bin = link.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(bin).with_context(|| format!("creating {}", bin.display()))?;
        match std::fs::remove_file(&link) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err).with_context(|| format!("replacing {}", link.display())),
        }
        std::os::unix::fs::symlink(kubectl, &link)
            .with_context(|| format!("linking {} to {}", link.display(), kubectl.display()))?;
        Ok(link)
    }

    /// Takes the pid file's lock: `Ok(Err(record))` if another dev cluster holds it, with what
    /// that one recorded. The lock is the kernel's (`flock`), so it goes away with its process
    /// however that ends; the file's contents may outlive it (see [`clean_up_leftovers`]).
    pub(crate) fn lock(&self) -> anyhow::Result<Result<PidFile, Record>> {
        let path = self.dir.join(PID_FILE);
        // A dev cluster that stops removes the file while it holds the lock; one that opened
        // the file just before may then lock a file that is no longer there. It tries again.
        let (mut file, locked) = loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            let locked = match file.try_lock() {
                Ok(()) => true,
                Err(TryLockError::WouldBlock) => false,
                Err(TryLockError::Error(err)) => {
                    return Err(err).with_context(|| format!("locking {}", path.display()));
                }
            };
            let same_file = match (file.metadata(), std::fs::metadata(&path)) {
                (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
                _ => false,
            };
            if !locked || same_file {
                break (file, locked);
            }
        };
        let mut text = String::new();
        file.read_to_string(&mut text)
            .with_context(|| format!("reading {}", path.display()))?;
        let record = Record::parse(&text);
        Ok(if locked {
            Ok(PidFile {
                file,
                path,
                previous: record,
            })
        } else {
            Err(record)
        })
    }
}

/// The locked pid file of the running dev cluster. Dropping it removes the file, then the
/// lock goes with the file handle.
pub(crate) struct PidFile {
    file: File,
    path: PathBuf,
    previous: Record,
}

impl PidFile {
    /// What the file held before this run took it: non-empty if a dev cluster was killed
    /// before it could clean up.
    pub(crate) fn previous(&self) -> &Record {
        &self.previous
    }

    /// Replaces the file's contents with `record`.
    pub(crate) fn write(&mut self, record: &Record) -> anyhow::Result<()> {
        let context = || format!("writing {}", self.path.display());
        self.file.set_len(0).with_context(context)?;
        self.file.seek(SeekFrom::Start(0)).with_context(context)?;
        self.file
            .write_all(record.render().as_bytes())
            .with_context(context)?;
        self.file.flush().with_context(context)
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Removed while still locked, so a new dev cluster cannot take the old file's lock
        // and then lose its file.
        if let Err(err) = std::fs::remove_file(&self.path)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!(
                "dev-cluster: could not remove {}: {err}",
                self.path.display()
            );
        }
    }
}

/// What a dev cluster writes into its pid file, one `key value` per line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// The dev-cluster process.
    pub(crate) pid: Option<u32>,
    /// The API server's URL, once it is ready.
    pub(crate) server: Option<String>,
    /// The control plane's data directory (etcd's data, PKI, logs).
    pub(crate) data_dir: Option<PathBuf>,
    /// etcd, kube-apiserver and kube-controller-manager.
    pub(crate) processes: Vec<u32>,
}

impl Record {
    fn parse(text: &str) -> Record {
        let mut record = Record::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            match key {
                "pid" => record.pid = value.parse().ok(),
                "server" => record.server = Some(value.to_owned()),
                "data-dir" => record.data_dir = Some(PathBuf::from(value)),
                "process" => record.processes.extend(value.parse::<u32>().ok()),
                _ => {}
            }
        }
        record
    }

    fn render(&self) -> String {
        let mut text = String::new();
        if let Some(pid) = self.pid {
            text.push_str(&format!("pid {pid}\n"));
        }
        if let Some(server) = &self.server {
            text.push_str(&format!("server {server}\n"));
        }
        if let Some(dir) = &self.data_dir {
            text.push_str(&format!("data-dir {}\n", dir.display()));
        }
        for pid in &self.processes {
            text.push_str(&format!("process {pid}\n"));
        }
        text
    }
}

/// Stops the control-plane processes and removes the data directory that a dev cluster
/// recorded in `previous` and could not clean up (it was killed with SIGKILL, say). A process
/// counts as left behind only if its command line names that data directory, so a pid that
/// has since been reused by something else is left alone. Returns what it did, to print.
pub(crate) fn clean_up_leftovers(previous: &Record) -> anyhow::Result<Vec<String>> {
    let mut done = Vec::new();
    let Some(data_dir) = &previous.data_dir else {
        return Ok(done);
    };
    // Only ever a testenv data directory: the file could have been edited by hand.
    let is_testenv_dir = data_dir
        .file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with("testenv-"));
    if !is_testenv_dir {
        bail!(
            "the pid file names {} as a data directory, which is not a testenv directory; \
             remove the pid file by hand",
            data_dir.display()
        );
    }
    let marker = data_dir.to_string_lossy().into_owned();
    for &pid in &previous.processes {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !cmdline.contains(&marker) {
            continue;
        }
        let name = cmdline
            .split_whitespace()
            .next()
            .and_then(|binary| Path::new(binary).file_name())
            .map_or_else(
                || "?".to_owned(),
                |name| name.to_string_lossy().into_owned(),
            );
        let status = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("could not stop {name} (pid {pid}), left by an earlier dev cluster");
        }
        wait_until_gone(pid, Duration::from_secs(10))
            .with_context(|| format!("{name} (pid {pid}) did not exit after SIGKILL"))?;
        done.push(format!(
            "stopped {name} (pid {pid}), left running by an earlier dev cluster"
        ));
    }
    if data_dir.exists() {
        std::fs::remove_dir_all(data_dir)
            .with_context(|| format!("removing {}", data_dir.display()))?;
        done.push(format!(
            "removed {}, left by an earlier dev cluster",
            data_dir.display()
        ));
    }
    Ok(done)
}

/// Waits until `/proc/<pid>` is gone: the (orphaned) process was killed and reaped by init.
fn wait_until_gone(pid: u32, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Path::new(&format!("/proc/{pid}")).exists() {
        if Instant::now() > deadline {
            bail!("still there after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips() {
        let record = Record {
            pid: Some(12),
            server: Some("https://127.0.0.1:4321/".to_owned()),
            data_dir: Some(PathBuf::from("/tmp/testenv-abc")),
            processes: vec![13, 14, 15],
        };
        assert_eq!(Record::parse(&record.render()), record);
        assert_eq!(Record::parse(""), Record::default());
        assert_eq!(Record::parse("pid x\nnonsense\n").pid, None);
    }

    #[test]
    fn only_testenv_directories_are_removed() {
        let record = Record {
            data_dir: Some(PathBuf::from("/home")),
            ..Record::default()
        };
        assert!(clean_up_leftovers(&record).is_err());
        assert!(clean_up_leftovers(&Record::default()).unwrap().is_empty());
    }

    #[test]
    fn a_second_lock_on_the_same_directory_sees_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::create(&dir.path().join("dev")).unwrap();
        let mut first = state.lock().unwrap().ok().unwrap();
        first
            .write(&Record {
                pid: Some(7),
                ..Record::default()
            })
            .unwrap();
        let running = state.lock().unwrap().err().unwrap();
        assert_eq!(running.pid, Some(7));
        drop(first);
        assert!(state.lock().unwrap().is_ok());
    }
}
