//! The examples in Python, JavaScript and Go through the real `Host` on a real control plane,
//! beside the Rust example: each converges like it, with its Events on its objects, also with 32
//! objects created at once under the host's default limits.

use std::time::Duration;

use kube::api::{DynamicObject, PostParams};
use serde_json::json;

use crate::hostile::{Arena, HostUnderTest, NS};
use crate::util::{built_plugin, dynamic_api, events_regarding, eventually, kubectl};

/// Objects created at once: the host's default instance slots.
const AT_ONCE: usize = 32;

/// One example in another language: its plugin file, its kind and its CRD.
struct Example {
    plugin: &'static str,
    name: &'static str,
    kind: (&'static str, &'static str, &'static str, &'static str),
    crd: &'static str,
}

const PYTHON: Example = Example {
    plugin: "myresource_py",
    name: "myresource-py",
    kind: (
        "mygroup.example.com",
        "v1alpha1",
        "PyResource",
        "pyresources",
    ),
    crd: concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../plugins/myresource-py/manifests/crd.yaml"
    ),
};

const JAVASCRIPT: Example = Example {
    plugin: "myresource_js",
    name: "myresource-js",
    kind: (
        "mygroup.example.com",
        "v1alpha1",
        "JsResource",
        "jsresources",
    ),
    crd: concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../plugins/myresource-js/manifests/crd.yaml"
    ),
};

const GO: Example = Example {
    plugin: "myresource_go",
    name: "myresource-go",
    kind: (
        "mygroup.example.com",
        "v1alpha1",
        "GoResource",
        "goresources",
    ),
    crd: concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../plugins/myresource-go/manifests/crd.yaml"
    ),
};

/// Runs `example` beside the Rust example: `AT_ONCE` objects of its kind converge, each with
/// its `Created` Event, and no call fails on a limit.
async fn converges_beside_the_rust_example(example: &Example) {
    let arena = Arena::new().await;
    kubectl(&arena.env, &["apply", "-f", example.crd]).await;
    let (_, _, _, plural) = example.kind;
    let crd = format!("crd/{plural}.mygroup.example.com");
    kubectl(
        &arena.env,
        &["wait", "--for=condition=Established", &crd, "--timeout=60s"],
    )
    .await;
    let host = HostUnderTest::start(
        &arena,
        &[&built_plugin("myresource"), &built_plugin(example.plugin)],
        |host| host,
    )
    .await;
    host.ready().await;

    let api = dynamic_api(&arena.client(), NS, example.kind);
    let (group, version, kind, _) = example.kind;
    let mut uids = Vec::new();
    for i in 0..AT_ONCE {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": format!("{group}/{version}"),
            "kind": kind,
            "metadata": {"name": format!("{}-{i}", example.name)},
            "spec": {"image": "nginx:1.27", "replicas": 1},
        }))
        .expect("object");
        let created = api
            .create(&PostParams::default(), &object)
            .await
            .expect("create object");
        uids.push(created.metadata.uid.expect("uid"));
    }
    eventually(&format!("{AT_ONCE} {kind}s to converge"), || async {
        let objects = api.list(&Default::default()).await.expect("list");
        let converged = objects
            .items
            .iter()
            .filter(|object| {
                let observed = object.data["status"]["observedGeneration"].as_i64();
                observed.is_some() && observed == object.metadata.generation
            })
            .count();
        (converged == AT_ONCE).then_some(())
    })
    .await;
    for uid in &uids {
        let events = events_regarding(&arena.client(), NS, uid).await;
        assert!(
            events
                .iter()
                .any(|event| event.reason.as_deref() == Some("Created")),
            "no Created Event on {uid}: {events:?}"
        );
    }
    let failed = format!(
        "wasm_reconciler_reconciles_total{{plugin=\"{}\",result=\"failed\"}}",
        example.name
    );
    assert_eq!(
        host.metric(&failed),
        0.0,
        "calls failed on a limit or a trap"
    );
    arena.example_converges("rust-beside").await;
    // What a user sees.
    let describe = kubectl(
        &arena.env,
        &[
            "describe",
            &kind.to_lowercase(),
            &format!("{}-0", example.name),
            "-n",
            NS,
        ],
    )
    .await;
    assert!(describe.contains("Created"), "{describe}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    host.stop().await;
}

#[tokio::test]
async fn the_python_example_converges_beside_the_rust_one_32_at_once() {
    converges_beside_the_rust_example(&PYTHON).await;
}

#[tokio::test]
async fn the_javascript_example_converges_beside_the_rust_one_32_at_once() {
    converges_beside_the_rust_example(&JAVASCRIPT).await;
}

#[tokio::test]
async fn the_go_example_converges_beside_the_rust_one_32_at_once() {
    converges_beside_the_rust_example(&GO).await;
}
