//! What one reconcile of the example plugin costs: a fresh instance plus the call, against the
//! same logic compiled natively, in the same run.
//!
//! The object is the steady state (its Deployment exists and matches), the most common
//! reconcile: the plugin reads the Deployment and patches the status. The API server is an
//! in-memory HTTP service, so the numbers are the host's and the guest's, not the network's.
//!
//! A second group, `languages`, runs the same steady-state reconcile in the Rust, Python,
//! JavaScript and Go examples, each for its own kind, with the same object otherwise, and
//! prints each component's size and compile time: the examples found in
//! `WASM_RECONCILER_TEST_PLUGINS` (where `cargo xtask plugins` builds them) are measured.
//!
//! Needs the plugin built: `cargo build --target wasm32-wasip2 --release -p myresource`.
//! Run: `cargo bench -p wasm-reconciler --bench reconcile`.

use std::path::PathBuf;
use std::rc::Rc;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{Response, StatusCode};
use kube::api::DynamicObject;
use kube::client::Body;
use myresource::MyResourceReconciler;
use serde_json::{Value, json};
use wasm_reconciler::bench::ReconcileHarness;
use wasm_reconciler_sdk::{
    ClientError, Context, Event, EventError, EventSink, Gvk, Level, LogSink, ObjectClient,
    Reconciler, Request,
};

fn my_resource() -> Value {
    resource_of_kind("MyResource")
}

/// The steady-state object, of `kind` in the example's group.
fn resource_of_kind(kind: &str) -> Value {
    json!({
        "apiVersion": "mygroup.example.com/v1alpha1",
        "kind": kind,
        "metadata": {
            "name": "demo", "namespace": "default", "uid": "6c0f6d3e-0000-4000-8000-000000000001",
            "generation": 1, "resourceVersion": "100",
        },
        "spec": {"image": "nginx:1.27", "replicas": 2},
        "status": {"observedGeneration": 1, "deployment": "demo", "image": "nginx:1.27", "replicas": 2, "readyReplicas": 2},
    })
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "demo", "namespace": "default", "uid": "6c0f6d3e-0000-4000-8000-000000000002",
            "resourceVersion": "101",
            "labels": {"app.kubernetes.io/name": "demo", "app.kubernetes.io/managed-by": "myresource"},
            "ownerReferences": [{"apiVersion": "mygroup.example.com/v1alpha1", "kind": "MyResource", "name": "demo",
                                 "uid": "6c0f6d3e-0000-4000-8000-000000000001", "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "demo"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "demo", "app.kubernetes.io/managed-by": "myresource"}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
            },
        },
        "status": {"replicas": 2, "readyReplicas": 2},
    })
}

/// An API server in memory: the Deployment for GETs, the MyResource for status patches.
fn in_memory_client() -> kube::Client {
    let service = tower::service_fn(|request: http::Request<Body>| async move {
        let path = request.uri().path();
        let body = if path.ends_with("/deployments/demo") {
            deployment()
        } else if let Some(kind) = status_of(path) {
            resource_of_kind(&kind)
        } else {
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "message": "not found"})
        };
        let status = if body["kind"] == "Status" {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(bytes))
    });
    kube::Client::new(service, "default")
}

/// The kind whose object `demo`'s status `path` patches: `.../pyresources/demo/status` is a
/// `PyResource`'s.
fn status_of(path: &str) -> Option<String> {
    let plural = path.strip_suffix("/demo/status")?.rsplit('/').next()?;
    let singular = plural.strip_suffix("resources")?;
    let mut prefix = singular.chars();
    let first = prefix.next()?.to_ascii_uppercase();
    Some(format!("{first}{}Resource", prefix.as_str()))
}

/// The native baseline's host: answers with the same JSON text the host's client would hand
/// the guest, and drops events and log lines.
struct NativeHost {
    deployment: String,
    my_resource: String,
}

impl ObjectClient for NativeHost {
    fn get(&self, _kind: &Gvk, _name: &str) -> Result<Option<String>, ClientError> {
        Ok(Some(self.deployment.clone()))
    }
    fn apply(&self, _object: &str) -> Result<String, ClientError> {
        Ok(self.deployment.clone())
    }
    fn patch_status(&self, _status: &str) -> Result<String, ClientError> {
        Ok(self.my_resource.clone())
    }
}

impl EventSink for NativeHost {
    fn record(&self, _event: &Event<'_>) -> Result<(), EventError> {
        Ok(())
    }
}

impl LogSink for NativeHost {
    fn log(&self, _level: Level, _message: &str) {}
}

fn plugin_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    target.join("wasm32-wasip2/release/myresource.wasm")
}

fn reconcile(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let path = plugin_path();
    // kube's client spawns its buffer task, so it is made inside the runtime.
    let harness_client = runtime.block_on(async { in_memory_client() });
    let harness = runtime
        .block_on(ReconcileHarness::load(&path, harness_client.clone()))
        .unwrap_or_else(|error| {
            panic!("load {}: {error} (build the plugin first)", path.display())
        });
    let object: DynamicObject = serde_json::from_value(my_resource()).expect("MyResource");
    runtime
        .block_on(harness.reconcile(&object))
        .expect("the call completes")
        .expect("steady-state reconcile succeeds");

    let mut group = c.benchmark_group("reconcile_steady_state");
    group.bench_function("wasm_fresh_instance_metadata_only", |b| {
        b.to_async(&runtime).iter(|| async {
            harness.metadata_call().await.expect("metadata");
        });
    });
    group.bench_function("wasm_fresh_instance", |b| {
        b.to_async(&runtime).iter(|| async {
            harness
                .reconcile(&object)
                .await
                .expect("call")
                .expect("reconcile");
        });
    });
    // What the host's client does on the plugin's behalf in that reconcile, without Wasm.
    let deployments: kube::Api<DynamicObject> = kube::Api::namespaced_with(
        harness_client.clone(),
        "default",
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "apps",
            "v1",
            "Deployment",
        )),
    );
    let my_resources: kube::Api<DynamicObject> = kube::Api::namespaced_with(
        harness_client,
        "default",
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "mygroup.example.com",
            "v1alpha1",
            "MyResource",
        )),
    );
    let status_patch = kube::api::Patch::Merge(json!({"status": {"observedGeneration": 1}}));
    group.bench_function("host_api_calls_alone", |b| {
        b.to_async(&runtime).iter(|| async {
            let found = deployments.get_opt("demo").await.expect("get");
            assert!(found.is_some());
            my_resources
                .patch_status("demo", &kube::api::PatchParams::default(), &status_patch)
                .await
                .expect("patch status");
        });
    });
    group.bench_function("native_same_logic", |b| {
        let host = Rc::new(NativeHost {
            deployment: deployment().to_string(),
            my_resource: my_resource().to_string(),
        });
        let ctx = Context::new(host.clone(), host.clone(), host);
        let object = my_resource().to_string();
        b.iter(|| {
            let request = Request::from_json(object.clone()).expect("request");
            let response = MyResourceReconciler::reconcile(&ctx, request).expect("reconcile");
            let _ = std::hint::black_box(response);
        });
    });
    group.finish();
}

/// The examples in every language: file name and reconciled kind. The first is the Rust
/// example as built against contract 0.1.0 (`tests/fixtures/`), the same logic as the next
/// over the other contract version.
const EXAMPLES: [(&str, &str); 5] = [
    ("myresource-0.1.0.wasm", "MyResource"),
    ("myresource.wasm", "MyResource"),
    ("myresource_py.wasm", "PyResource"),
    ("myresource_js.wasm", "JsResource"),
    ("myresource_go.wasm", "GoResource"),
];

fn languages(c: &mut Criterion) {
    let Some(dir) = std::env::var_os("WASM_RECONCILER_TEST_PLUGINS").map(PathBuf::from) else {
        eprintln!(
            "languages: WASM_RECONCILER_TEST_PLUGINS is not set; `cargo xtask plugins` prints it"
        );
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let client = runtime.block_on(async { in_memory_client() });
    let mut group = c.benchmark_group("languages");
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (file, kind) in EXAMPLES {
        let (path, label) = if file.ends_with("-0.1.0.wasm") {
            (fixtures.join(file), format!("{kind}_contract_0.1.0"))
        } else {
            (dir.join(file), kind.to_owned())
        };
        let Ok(size) = std::fs::metadata(&path).map(|metadata| metadata.len()) else {
            eprintln!("languages: {} not built; skipped", path.display());
            continue;
        };
        let started = std::time::Instant::now();
        let harness = runtime
            .block_on(ReconcileHarness::load(&path, client.clone()))
            .unwrap_or_else(|error| panic!("load {}: {error}", path.display()));
        eprintln!(
            "languages: {file}: {:.1} MB, compiled in {:.2} s",
            size as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
        let object: DynamicObject = serde_json::from_value(resource_of_kind(kind)).expect("object");
        runtime
            .block_on(harness.reconcile(&object))
            .expect("the call completes")
            .expect("steady-state reconcile succeeds");
        group.bench_function(format!("{label}_instantiate_and_metadata"), |b| {
            b.to_async(&runtime).iter(|| async {
                harness.metadata_call().await.expect("metadata");
            });
        });
        group.bench_function(format!("{label}_reconcile"), |b| {
            b.to_async(&runtime).iter(|| async {
                harness
                    .reconcile(&object)
                    .await
                    .expect("call")
                    .expect("reconcile");
            });
        });
    }
    group.finish();
}

criterion_group!(benches, reconcile, languages);
criterion_main!(benches);
