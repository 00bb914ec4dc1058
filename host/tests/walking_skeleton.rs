//! The example plugin end to end: a MyResource gets a Deployment it controls, Events that
//! `kubectl describe` shows, an observed status, and an invalid spec is reported once and
//! not retried.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;
use testenv::TestEnv;
use wasm_reconciler::Host;

use crate::util::{
    MYRESOURCE, MYRESOURCE_CRD, RunningHost, built_plugin, controlled_deployment, demo_my_resource,
    dynamic_api, events_regarding, eventually, free_address, http_get, kubectl, plugins_dir,
};

/// Lines of `kubectl describe`'s Events table that match type, reason and source.
fn described_events<'a>(describe: &'a str, kind: &str, reason: &str) -> Vec<&'a str> {
    describe
        .lines()
        .skip_while(|line| !line.starts_with("Events:"))
        .filter(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            columns.first() == Some(&kind)
                && columns.get(1) == Some(&reason)
                && columns.contains(&"myresource")
        })
        .collect()
}

async fn events_with_reason(
    client: &kube::Client,
    namespace: &str,
    uid: &str,
    reason: &str,
) -> Vec<Event> {
    let mut events = events_regarding(client, namespace, uid).await;
    events.retain(|event| event.reason.as_deref() == Some(reason));
    events
}

#[tokio::test]
async fn myresource_plugin_reconciles_and_reports_through_events() {
    let env = TestEnv::start().await.expect("control plane starts");
    let client = env.client();
    let ns = "skeleton";

    kubectl(&env, &["apply", "-f", MYRESOURCE_CRD]).await;
    kubectl(
        &env,
        &[
            "wait",
            "--for=condition=Established",
            "crd/myresources.mygroup.example.com",
            "--timeout=60s",
        ],
    )
    .await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace"),
        )
        .await
        .expect("create namespace");

    // A corrupt plugin beside the real one is skipped and holds readiness back, naming the
    // file; the real one runs.
    let plugins = plugins_dir(&[&built_plugin("myresource")]);
    std::fs::write(plugins.path().join("corrupt.wasm"), b"\0asm not really")
        .expect("write corrupt plugin");
    let probes = free_address();
    let host = RunningHost::start(
        Host::new(plugins.path()).health_addr(probes),
        client.clone(),
    );
    let (code, body) = eventually(
        "/readyz to name only the corrupt file once the caches are synced",
        || async {
            let (code, body) = http_get(probes, "/readyz").await?;
            let failing = body.lines().filter(|line| line.starts_with("[-]")).count();
            (failing == 1 && body.contains("[-]file/corrupt.wasm: ")).then_some((code, body))
        },
    )
    .await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(http_get(probes, "/healthz").await.map(|r| r.0), Some(200));

    // Created: a Deployment controlled by the MyResource, and a Normal Created event.
    let resources = dynamic_api(&client, ns, MYRESOURCE);
    let demo: DynamicObject = demo_my_resource();
    let demo = resources
        .create(&PostParams::default(), &demo)
        .await
        .expect("create MyResource");
    let uid = demo.metadata.uid.clone().expect("uid");

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let deployment = controlled_deployment(&client, ns, "demo", &uid).await;
    let spec = deployment.spec.as_ref().expect("deployment spec");
    assert_eq!(spec.replicas, Some(2));
    let image = spec
        .template
        .spec
        .as_ref()
        .and_then(|pod| pod.containers.first())
        .and_then(|c| c.image.clone());
    assert_eq!(image.as_deref(), Some("nginx:1.27"));

    let describe = eventually("`kubectl describe` to show Normal Created", || async {
        let text = kubectl(&env, &["describe", "myresource", "demo", "-n", ns]).await;
        (!described_events(&text, "Normal", "Created").is_empty()).then_some(text)
    })
    .await;
    let created = described_events(&describe, "Normal", "Created");
    assert!(created[0].contains("Created deployment demo"), "{describe}");

    let status = eventually("the observed status", || async {
        let object = resources.get("demo").await.expect("get MyResource");
        let status = object.data.get("status").cloned()?;
        (status.get("observedGeneration") == Some(&json!(1))).then_some(status)
    })
    .await;
    assert_eq!(status["deployment"], json!("demo"));
    assert_eq!(status["replicas"], json!(2));
    assert_eq!(status["image"], json!("nginx:1.27"));

    // Updated: a spec change updates the Deployment and says so.
    resources
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"image": "nginx:1.28", "replicas": 3}})),
        )
        .await
        .expect("change spec");
    eventually("the Deployment to be updated", || async {
        let deployment = deployments.get("demo").await.expect("get deployment");
        (deployment.spec.and_then(|s| s.replicas) == Some(3)).then_some(())
    })
    .await;
    let describe = eventually("`kubectl describe` to show Normal Updated", || async {
        let text = kubectl(&env, &["describe", "myresource", "demo", "-n", ns]).await;
        (!described_events(&text, "Normal", "Updated").is_empty()).then_some(text)
    })
    .await;
    assert!(
        described_events(&describe, "Normal", "Updated")[0].contains("nginx:1.28"),
        "{describe}"
    );

    // InvalidSpec: a Warning, the problem in the status, the Deployment left alone, no retries.
    resources
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": -1}})),
        )
        .await
        .expect("make spec invalid");
    let describe = eventually("`kubectl describe` to show Warning InvalidSpec", || async {
        let text = kubectl(&env, &["describe", "myresource", "demo", "-n", ns]).await;
        (!described_events(&text, "Warning", "InvalidSpec").is_empty()).then_some(text)
    })
    .await;
    assert!(
        described_events(&describe, "Warning", "InvalidSpec")[0].contains("replicas"),
        "{describe}"
    );
    eventually("the invalid spec in the status", || async {
        let object = resources.get("demo").await.expect("get MyResource");
        let status = object.data.get("status")?;
        (status.get("observedGeneration") == Some(&json!(3)) && status.get("invalidSpec").is_some())
            .then_some(())
    })
    .await;
    // A retry loop would record the event again within milliseconds (backoff starts at 5 ms).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let invalid = events_with_reason(&client, ns, &uid, "InvalidSpec").await;
    assert_eq!(
        invalid.len(),
        1,
        "exactly one InvalidSpec event: {invalid:#?}"
    );
    assert!(
        invalid[0].series.is_none(),
        "the InvalidSpec event was not repeated: {:#?}",
        invalid[0]
    );
    let deployment = deployments.get("demo").await.expect("get deployment");
    assert_eq!(
        deployment.spec.and_then(|s| s.replicas),
        Some(3),
        "an invalid spec leaves the Deployment alone"
    );

    let created = events_with_reason(&client, ns, &uid, "Created").await;
    let event = &created[0];
    assert_eq!(event.reporting_controller.as_deref(), Some("myresource"));
    assert!(
        event
            .reporting_instance
            .as_deref()
            .is_some_and(|i| i.starts_with("myresource-") && i.len() <= 128)
    );
    assert!(event.event_time.is_some());

    let (status, metrics) = http_get(probes, "/metrics")
        .await
        .expect("/metrics answers");
    assert_eq!(status, 200);
    for family in [
        r#"wasm_reconciler_reconciles_total{plugin="myresource",result="success"}"#,
        r#"wasm_reconciler_reconciles_total{plugin="myresource",result="terminal_error"} 1"#,
        r#"wasm_reconciler_events_total{plugin="myresource",reason="InvalidSpec",outcome="created"} 1"#,
        "wasm_reconciler_plugins_loaded 1",
        "wasm_reconciler_plugin_load_failures_total 1",
    ] {
        assert!(
            metrics.contains(family),
            "{family} missing from:\n{metrics}"
        );
    }

    host.stop().await.expect("host ran and stopped cleanly");
}
