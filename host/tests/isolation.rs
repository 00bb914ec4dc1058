//! A hostile plugin fails alone and loudly: spinning, hoarding memory, panicking, or reaching
//! for what it did not declare each ends that one call with the right error, and the next
//! call runs normally. No control plane: the API server is an in-memory stub answering 404.

use std::time::{Duration, Instant};

use http::{Response, StatusCode};
use kube::api::DynamicObject;
use kube::client::Body;
use serde_json::json;
use wasm_reconciler::bench::ReconcileHarness;
use wasm_reconciler::{CallError, SandboxConfig};

use crate::util::built_plugin;

fn not_found_client() -> kube::Client {
    let service = tower::service_fn(|_request: http::Request<Body>| async {
        let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound", "message": "not found"});
        Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&status).unwrap_or_default()))
    });
    kube::Client::new(service, "default")
}

fn config_map(mode: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "target", "namespace": "default", "uid": "00000000-0000-4000-8000-000000000001"},
        "data": {"mode": mode},
    }))
    .expect("ConfigMap")
}

async fn hostile() -> ReconcileHarness {
    let limits = SandboxConfig::default()
        .cpu_limit(Duration::from_millis(300))
        .memory_limit(32 << 20)
        .call_timeout(Duration::from_secs(20));
    ReconcileHarness::load_with(&built_plugin("hostile"), not_found_client(), limits)
        .await
        .expect("the hostile fixture loads")
}

/// After any misbehaviour, a well-behaved call on the same plugin still works.
async fn still_works(harness: &ReconcileHarness) {
    let outcome = harness.reconcile(&config_map("behave")).await;
    assert!(matches!(outcome, Ok(Ok(()))), "{outcome:?}");
}

#[tokio::test]
async fn a_spinning_plugin_is_stopped_at_its_cpu_limit() {
    let harness = hostile().await;
    let started = Instant::now();
    let outcome = harness.reconcile(&config_map("spin")).await;
    assert!(
        matches!(outcome, Err(CallError::CpuLimit(_))),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped long before the wall-clock timeout"
    );
    still_works(&harness).await;
}

#[tokio::test]
async fn a_plugin_that_hoards_memory_is_stopped_at_its_memory_limit() {
    let harness = hostile().await;
    let outcome = harness.reconcile(&config_map("allocate")).await;
    assert!(
        matches!(outcome, Err(CallError::MemoryLimit { limit, .. }) if limit == 32 << 20),
        "{outcome:?}"
    );
    still_works(&harness).await;
}

#[tokio::test]
async fn a_panic_is_a_trap_that_carries_the_panic_message() {
    let harness = hostile().await;
    let outcome = harness.reconcile(&config_map("panic")).await;
    let Err(error) = outcome else {
        panic!("expected a trap, got {outcome:?}");
    };
    let CallError::Trap {
        stderr, backtrace, ..
    } = &error
    else {
        panic!("expected a trap, got {error:?}");
    };
    assert!(
        stderr.contains("hostile plugin panicked on purpose"),
        "{stderr}"
    );
    assert!(backtrace.contains("wasm backtrace"), "{backtrace}");
    // The message, which the host's ReconcileFailed Event carries (at most 1 KiB), says why
    // and leaves the backtrace to the log.
    let message = error.to_string();
    assert!(
        message.contains("hostile plugin panicked on purpose") && message.len() < 1024,
        "{message}"
    );
    still_works(&harness).await;
}

#[tokio::test]
async fn undeclared_kinds_and_other_namespaces_are_refused() {
    let harness = hostile().await;
    let undeclared = harness.reconcile(&config_map("undeclared")).await;
    assert!(
        matches!(&undeclared, Ok(Err(message)) if message.contains("Forbidden") && message.contains("Service")),
        "{undeclared:?}"
    );
    let escape = harness.reconcile(&config_map("escape")).await;
    assert!(
        matches!(&escape, Ok(Err(message)) if message.contains("Forbidden") && message.contains("kube-system")),
        "{escape:?}"
    );
    still_works(&harness).await;
}
