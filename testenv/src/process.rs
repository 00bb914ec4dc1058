//! One child process of the control plane: spawned with its output in a log file, killed and
//! reaped synchronously (so it works from `Drop`).

use std::{
    ffi::OsString,
    fs::File,
    io::{Read, Seek, SeekFrom},
    net::{Ipv4Addr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use crate::Error;

/// How much of a log an error message quotes.
const TAIL_BYTES: u64 = 4096;
const TAIL_LINES: usize = 25;

pub(crate) struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `binary` with `args` in `dir`, with stdout and stderr appended to `<dir>/<name>.log`.
    pub(crate) fn spawn(
        name: &'static str,
        binary: &Path,
        args: Vec<OsString>,
        dir: &Path,
    ) -> Result<Process, Error> {
        let log = dir.join(format!("{name}.log"));
        let io_error = |source| Error::Io {
            what: "failed to create a log file",
            path: log.clone(),
            source,
        };
        let stdout = File::create(&log).map_err(io_error)?;
        let stderr = stdout.try_clone().map_err(io_error)?;
        tracing::debug!(name, binary = %binary.display(), ?args, "starting");
        let child = Command::new(binary)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|source| Error::Spawn {
                binary: binary.to_owned(),
                source,
            })?;
        Ok(Process { name, child, log })
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// `Some(status)` once the process has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        // An error here means the child is no longer ours to wait for; treat it as running and
        // let the start timeout or `stop` report it.
        self.child.try_wait().ok().flatten()
    }

    /// The error for a process that exited during startup, quoting its log.
    pub(crate) fn exited_error(&self, status: ExitStatus) -> Error {
        Error::Exited {
            process: self.name,
            status,
            log: self.log.clone(),
            tail: self.log_tail(),
        }
    }

    /// The error for a process that exited after startup, quoting its log.
    pub(crate) fn died_error(&self, status: ExitStatus) -> Error {
        Error::Died {
            process: self.name,
            status,
            log: self.log.clone(),
            tail: self.log_tail(),
        }
    }

    /// Whether its log says it could not bind its port (so a retry with other ports may work).
    pub(crate) fn failed_to_bind(&self) -> bool {
        self.log_tail().contains("address already in use")
    }

    /// The last lines of the log, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        tail(&self.log).unwrap_or_else(|err| format!("(log unreadable: {err})"))
    }

    /// Sends SIGKILL (the data is thrown away anyway, and it is the only signal `std` can
    /// send). Reap it with [`Process::wait`].
    pub(crate) fn kill(&mut self) {
        // Fails only if the process was already reaped, which is what we want anyway.
        let _ = self.child.kill();
    }

    /// Waits until the (killed) process is reaped, or `deadline`, which is `timeout` after the
    /// kill.
    pub(crate) fn wait(&mut self, deadline: Instant, timeout: Duration) -> Result<(), Error> {
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return Ok(()),
                Ok(None) if Instant::now() >= deadline => {
                    return Err(Error::StopTimeout {
                        process: self.name,
                        pid: self.pid(),
                        timeout,
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    }
}

fn tail(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    // The first line may be cut in the middle when we did not start at 0.
    let skip = usize::from(start > 0 && lines.len() > 1);
    let from = lines.len().saturating_sub(TAIL_LINES).max(skip);
    Ok(lines[from..].join("\n"))
}

/// `N` distinct free loopback ports. They are free when this returns, not necessarily when
/// used: the caller retries the start if a process reports "address already in use".
pub(crate) fn free_ports<const N: usize>() -> std::io::Result<[u16; N]> {
    // Hold every listener until all ports are known, so the N ports differ.
    let mut listeners = Vec::with_capacity(N);
    let mut ports = [0; N];
    for port in &mut ports {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        *port = listener.local_addr()?.port();
        listeners.push(listener);
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let [a, b, c] = free_ports::<3>().unwrap();
        assert!(a != b && b != c && a != c);
        TcpListener::bind((Ipv4Addr::LOCALHOST, a)).unwrap();
    }

    #[test]
    fn tail_keeps_the_last_lines_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let tail = tail(&path).unwrap();
        assert_eq!(tail.lines().count(), TAIL_LINES);
        assert!(tail.ends_with("line 999"));
    }
}
