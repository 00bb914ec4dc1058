//! The `dev_cluster` example (behind `cargo xtask dev`) run as a user runs it: ready with a
//! kubeconfig and its CRDs, a second one on the same state directory refused, a clean stop on
//! SIGTERM, and what a SIGKILLed one left running stopped by the next one.

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use crate::util::process_exists;

const READY: Duration = Duration::from_secs(60);
const STOPPED: Duration = Duration::from_secs(20);

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

#[test]
fn runs_until_sigterm_refuses_a_second_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("dev");
    let crd = dir.path().join("crd.yaml");
    std::fs::write(&crd, CRD).unwrap();

    let mut first = DevCluster::start(
        &state,
        &[
            "--apply".as_ref(),
            crd.as_os_str(),
            "--ready-message".as_ref(),
            "READY-TEXT".as_ref(),
        ],
    );
    first.wait_for("running (pid");
    first.assert_printed(
        "applied customresourcedefinition.apiextensions.k8s.io/widgets.example.com (established)",
    );
    first.assert_printed("READY-TEXT");

    let kubeconfig = state.join("kubeconfig");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&kubeconfig).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the kubeconfig holds an admin key");
    let kubectl = state.join("bin/kubectl");
    let output = Command::new(&kubectl)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "crd", "widgets.example.com", "-o", "name"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let record = Record::read(&state);
    assert_eq!(record.pid, first.pid());
    assert_eq!(record.processes.len(), 2, "etcd and kube-apiserver");

    let mut second = DevCluster::start(&state, &[]);
    let status = second.wait_exit();
    assert!(!status.success());
    second.assert_printed(&format!(
        "a dev cluster is already running (pid {}",
        first.pid()
    ));

    signal("-TERM", first.pid());
    let status = first.wait_exit();
    assert!(status.success(), "{status}: {:?}", first.output);
    first.assert_printed("SIGTERM: stopped etcd and kube-apiserver");
    for pid in &record.processes {
        assert!(!process_exists(*pid), "pid {pid} outlived the dev cluster");
    }
    assert!(!record.data_dir.exists(), "the data directory is left");
    assert!(!kubeconfig.exists(), "the kubeconfig is left");
    assert!(
        !state.join("dev-cluster.pid").exists(),
        "the pid file is left"
    );
}

#[test]
fn what_a_killed_dev_cluster_left_running_is_stopped_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("dev");

    let mut killed = DevCluster::start(&state, &[]);
    killed.wait_for("running (pid");
    let record = Record::read(&state);
    let _leftovers = Leftovers(record.clone());
    signal("-KILL", killed.pid());
    killed.wait_exit();
    for pid in &record.processes {
        assert!(process_exists(*pid), "pid {pid} should outlive a SIGKILL");
    }

    let mut next = DevCluster::start(&state, &[]);
    next.wait_for("running (pid");
    next.assert_printed("stopped etcd (pid");
    next.assert_printed("stopped kube-apiserver (pid");
    next.assert_printed(&format!("removed {}", record.data_dir.display()));
    for pid in &record.processes {
        assert!(!process_exists(*pid), "pid {pid} is still running");
    }
    assert!(!record.data_dir.exists());

    signal("-TERM", next.pid());
    assert!(next.wait_exit().success(), "{:?}", next.output);
}

/// The example's binary. `cargo test` builds the example only as a test harness (it has
/// `test = true`), so `cargo xtask test` builds the binary first.
fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/tests-<hash> -> target/<profile>/examples/dev_cluster
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples")
        .join("dev_cluster");
    assert!(
        binary.is_file(),
        "{} is missing: `cargo test -p testenv` builds it, \
         or `cargo build -p testenv --example dev_cluster`",
        binary.display()
    );
    binary
}

/// A running `dev_cluster`, with its output (stdout and stderr) read line by line.
struct DevCluster {
    child: Child,
    lines: mpsc::Receiver<String>,
    output: Vec<String>,
}

impl DevCluster {
    fn start(state: &Path, args: &[&std::ffi::OsStr]) -> DevCluster {
        let mut child = Command::new(binary())
            .arg("--state-dir")
            .arg(state)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for stream in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("dev_cluster> {line}");
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        DevCluster {
            child,
            lines,
            output: Vec::new(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a line containing `needle`.
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + READY;
        while !self.output.iter().any(|line| line.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.output.push(line),
                Err(_) => panic!(
                    "no line with {needle:?} within {READY:?}: {:?}",
                    self.output
                ),
            }
        }
    }

    fn assert_printed(&self, needle: &str) {
        assert!(
            self.output.iter().any(|line| line.contains(needle)),
            "no line with {needle:?}: {:?}",
            self.output
        );
    }

    /// Waits for it to exit, and for the rest of its output.
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + STOPPED;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader threads end with the pipes, which closed with the process.
                self.output.extend(self.lines.iter());
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {STOPPED:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            signal("-TERM", self.pid());
            let deadline = Instant::now() + STOPPED;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What the pid file says.
#[derive(Debug, Clone)]
struct Record {
    pid: u32,
    data_dir: PathBuf,
    processes: Vec<u32>,
}

impl Record {
    fn read(state: &Path) -> Record {
        let text = std::fs::read_to_string(state.join("dev-cluster.pid")).unwrap();
        let values = |key: &str| -> Vec<String> {
            text.lines()
                .filter_map(|line| line.strip_prefix(key))
                .map(str::to_owned)
                .collect()
        };
        Record {
            pid: values("pid ")[0].parse().unwrap(),
            data_dir: PathBuf::from(&values("data-dir ")[0]),
            processes: values("process ")
                .iter()
                .map(|pid| pid.parse().unwrap())
                .collect(),
        }
    }
}

/// Kills, on drop, the processes a SIGKILLed dev cluster left, if the test did not get as far
/// as the next dev cluster stopping them.
struct Leftovers(Record);

impl Drop for Leftovers {
    fn drop(&mut self) {
        let marker = self.0.data_dir.to_string_lossy().into_owned();
        for pid in &self.0.processes {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&marker) {
                signal("-KILL", *pid);
            }
        }
        let _ = std::fs::remove_dir_all(&self.0.data_dir);
    }
}

fn signal(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}
