//! Shared helpers: built plugins, the host running in-process, and polling.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wasm_reconciler::{Host, HostError};

/// The example plugin's kind: group, version, kind and plural.
pub const MYRESOURCE: (&str, &str, &str, &str) = (
    "mygroup.example.com",
    "v1alpha1",
    "MyResource",
    "myresources",
);
/// The example plugin's CRD.
pub const MYRESOURCE_CRD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../plugins/myresource/manifests/crd.yaml"
);

/// How long a test waits for the host to make something true.
pub const CONVERGE: Duration = Duration::from_secs(60);

/// The `.wasm` of a plugin built for wasm32-wasip2 in release, by `cargo xtask test` or
/// `cargo build --target wasm32-wasip2 --release -p <name>`.
pub fn built_plugin(name: &str) -> PathBuf {
    let dir = std::env::var_os("WASM_RECONCILER_TEST_PLUGINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("wasm32-wasip2").join("release"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "plugin {} is not built: run `cargo xtask test`, or `cargo build --target wasm32-wasip2 --release -p {name}`",
        path.display()
    );
    path
}

/// The cargo target directory this test binary was built into.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // <target>/debug/deps/tests-<hash>
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .nth(3)
        .expect("test binary lives in <target>/<profile>/deps")
        .to_owned()
}

/// A plugins directory holding copies of `plugins`.
pub fn plugins_dir(plugins: &[&Path]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for plugin in plugins {
        let name = plugin.file_name().expect("plugin file name");
        std::fs::copy(plugin, dir.path().join(name)).expect("copy plugin");
    }
    dir
}

/// The host running in this process until [`RunningHost::stop`].
pub struct RunningHost {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), HostError>>,
}

impl RunningHost {
    pub fn start(host: Host, client: kube::Client) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(host.run(client, async move {
            let _ = stopped.await;
        }));
        Self {
            stop: Some(stop),
            task,
        }
    }

    /// Stops the host and returns how its run ended.
    pub async fn stop(mut self) -> Result<(), HostError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("host stops within 30 s")
            .expect("host task did not panic")
    }
}

/// Polls `check` every 200 ms until it returns `Some`, or panics after `CONVERGE` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + CONVERGE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {CONVERGE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A namespaced dynamic API for `group/version/kind` with the given plural.
pub fn dynamic_api(
    client: &kube::Client,
    namespace: &str,
    (group, version, kind, plural): (&str, &str, &str, &str),
) -> Api<DynamicObject> {
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// Runs the real kubectl against the test control plane and returns its stdout.
pub async fn kubectl(env: &testenv::TestEnv, args: &[&str]) -> String {
    let mut command = tokio::process::Command::from(env.kubectl().expect("kubectl is available"));
    let output = command.args(args).output().await.expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The value of the counter or gauge `name{labels}` in Prometheus text, 0 if absent.
pub fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A loopback address with a port that was free a moment ago.
pub fn free_address() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local address")
}

/// `GET path` over plain HTTP/1.1: the status code and the body.
pub async fn http_get(address: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())?;
    Some((status, body))
}

/// The events.k8s.io Events in `namespace` about the object with `uid`.
pub async fn events_regarding(
    client: &kube::Client,
    namespace: &str,
    uid: &str,
) -> Vec<k8s_openapi::api::events::v1::Event> {
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), namespace);
    events
        .list(&kube::api::ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|event| event.regarding.as_ref().and_then(|r| r.uid.as_deref()) == Some(uid))
        .collect()
}

/// Waits for the Deployment `name` and checks that the MyResource with `owner_uid` controls it.
pub async fn controlled_deployment(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    owner_uid: &str,
) -> k8s_openapi::api::apps::v1::Deployment {
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), namespace);
    let deployment = eventually("the Deployment", || async {
        deployments.get_opt(name).await.expect("get deployment")
    })
    .await;
    let owner = deployment
        .metadata
        .owner_references
        .as_ref()
        .and_then(|refs| refs.iter().find(|r| r.controller == Some(true)))
        .expect("the Deployment has a controller owner reference");
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        ("MyResource", name, owner_uid)
    );
    assert_eq!(owner.block_owner_deletion, Some(true));
    deployment
}

/// The example's `demo` MyResource (image nginx:1.27, 2 replicas), ready to create.
pub fn demo_my_resource() -> DynamicObject {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "mygroup.example.com/v1alpha1",
        "kind": "MyResource",
        "metadata": {"name": "demo"},
        "spec": {"image": "nginx:1.27", "replicas": 2},
    }))
    .expect("MyResource")
}
