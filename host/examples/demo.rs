//! The README's demo: a local control plane (testenv), the `wasm-reconciler` binary running the
//! example plugin against it, a sample MyResource, and `kubectl describe` of it with the
//! plugin's Events. Everything is stopped and removed at the end.
//!
//! Run it with `cargo xtask demo`, which builds the control plane, the plugin and the host and
//! passes their paths: `demo --host <wasm-reconciler binary> --plugins <dir>`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use testenv::TestEnv;

const CRD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../plugins/myresource/manifests/crd.yaml"
);
const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../plugins/myresource/manifests/sample.yaml"
);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (host_binary, plugins) = parse_args()?;

    banner("starting a local control plane (etcd + kube-apiserver)");
    let env = TestEnv::start()
        .await
        .context("starting the control plane")?;
    println!(
        "API server {}, kubeconfig {}",
        env.apiserver_url(),
        env.kubeconfig_path().display()
    );

    banner("installing the MyResource CRD");
    kubectl(&env, &["apply", "-f", CRD])?;
    kubectl(
        &env,
        &[
            "wait",
            "--for=condition=Established",
            "crd/myresources.mygroup.example.com",
            "--timeout=60s",
        ],
    )?;

    banner(&format!("running wasm-reconciler on {}", plugins.display()));
    let mut host = HostProcess::spawn(&host_binary, &plugins, &env)?;

    banner("applying a sample MyResource");
    kubectl(&env, &["apply", "-f", SAMPLE])?;
    wait_for_event(&env, "Created")?;

    banner("changing its image: the plugin updates the Deployment");
    kubectl(
        &env,
        &[
            "patch",
            "myresource",
            "demo",
            "--type=merge",
            "-p",
            r#"{"spec":{"image":"nginx:1.28"}}"#,
        ],
    )?;
    wait_for_event(&env, "Updated")?;

    banner("kubectl get myresources,deployments");
    print!("{}", kubectl(&env, &["get", "myresources,deployments"])?);
    banner("kubectl describe myresource demo");
    print!("{}", kubectl(&env, &["describe", "myresource", "demo"])?);

    banner("stopping");
    host.stop()?;
    env.stop().context("stopping the control plane")?;
    println!("done: the host stopped cleanly and the control plane is gone");
    Ok(())
}

fn parse_args() -> anyhow::Result<(PathBuf, PathBuf)> {
    let mut host = None;
    let mut plugins = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--host") => host = args.next().map(PathBuf::from),
            Some("--plugins") => plugins = args.next().map(PathBuf::from),
            _ => bail!(
                "usage: demo --host <wasm-reconciler binary> --plugins <dir> (run it with `cargo xtask demo`)"
            ),
        }
    }
    match (host, plugins) {
        (Some(host), Some(plugins)) => Ok((host, plugins)),
        _ => bail!(
            "usage: demo --host <wasm-reconciler binary> --plugins <dir> (run it with `cargo xtask demo`)"
        ),
    }
}

fn banner(text: &str) {
    println!("\n==> {text}");
}

fn kubectl(env: &TestEnv, args: &[&str]) -> anyhow::Result<String> {
    let output = env
        .kubectl()?
        .args(args)
        .output()
        .with_context(|| format!("running kubectl {}", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Waits until `kubectl describe myresource demo` lists an event with `reason`.
fn wait_for_event(env: &TestEnv, reason: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let describe = kubectl(env, &["describe", "myresource", "demo"])?;
        let seen = describe
            .lines()
            .skip_while(|line| !line.starts_with("Events:"))
            .any(|line| line.split_whitespace().nth(1) == Some(reason));
        if seen {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("no {reason} event after 60 s:\n{describe}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The host binary, run as a user would run it, with its log on this terminal.
struct HostProcess {
    child: Option<Child>,
}

impl HostProcess {
    fn spawn(binary: &PathBuf, plugins: &PathBuf, env: &TestEnv) -> anyhow::Result<Self> {
        let child = Command::new(binary)
            .args(["run", "--plugins"])
            .arg(plugins)
            .arg("--kubeconfig")
            .arg(env.kubeconfig_path())
            // Any free loopback port: the demo must not depend on 8080/8081 being free.
            .args([
                "--health-addr",
                "127.0.0.1:0",
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info,kube=warn".into()),
            )
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Self { child: Some(child) })
    }

    /// Sends SIGTERM, as Kubernetes does, and waits for a clean exit.
    fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .context("sending SIGTERM")?;
        if !status.success() {
            bail!("could not signal the host");
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait()? {
                if status.success() {
                    return Ok(());
                }
                bail!("the host exited with {status}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("the host did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
