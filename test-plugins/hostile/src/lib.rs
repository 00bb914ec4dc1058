//! Test fixture: a plugin that misbehaves as the reconciled ConfigMap's `data.mode` says, with
//! its parameters in other `data` keys. What it saw is reported, where a test needs it, in an
//! owned ConfigMap `<name>-report` beside the reconciled one.
//!
//! - `spin`: loops forever;
//! - `allocate`: allocates without bound;
//! - `panic`: panics with a message;
//! - `undeclared`: reads a Service, a kind it did not declare;
//! - `escape`: applies a ConfigMap into another namespace;
//! - `scope-escape`: reads and writes through names that would change the request path;
//! - `hold`: touches `mib` MiB of memory, then sleeps `secs` seconds;
//! - `sleep`: sleeps `secs` seconds;
//! - `huge`: passes `kib` KiB through the import `target` (`apply`, `status`, `reason`,
//!   `message`, `annotation`, `log`, `name`);
//! - `invalid-reasons`: records `count` distinct invalid reasons of `bytes` bytes each;
//! - `requeue-now`: asks for an immediate requeue, every time;
//! - `get-loop`: reads a ConfigMap in a loop until the host says no, and says how often in
//!   a `LoopReport` Event;
//! - `log-flood`: writes `lines` log lines of `bytes` bytes, each with a forged line inside;
//! - `read-secret`: reads the Secret `secret` and reports what it got;
//! - anything else: succeeds.

use std::hint::black_box;
use std::time::Duration;

use wasm_reconciler_sdk::prelude::*;
use wasm_reconciler_sdk::serde_json::{self, Value, json};

/// The plugin.
pub struct Hostile;

wasm_reconciler_sdk::export_reconciler!(Hostile);

const CONFIG_MAP: Gvk = Gvk::from_static("", "v1", "ConfigMap");
const NAMESPACE: Gvk = Gvk::from_static("", "v1", "Namespace");
const SECRET: Gvk = Gvk::from_static("", "v1", "Secret");

impl Reconciler for Hostile {
    fn metadata() -> Metadata {
        Metadata::new("hostile", CONFIG_MAP)
            .owns(CONFIG_MAP)
            .reads(NAMESPACE)
            .reads(SECRET)
    }

    fn reconcile(ctx: &Context, request: Request) -> Result<Response, Error> {
        let data = &request.object_value()["data"];
        let number = |key: &str, default: u64| {
            data[key]
                .as_str()
                .and_then(|value| value.parse().ok())
                .unwrap_or(default)
        };
        match data["mode"].as_str() {
            Some("spin") => {
                let mut n: u64 = 0;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            Some("allocate") => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    black_box(&hoard);
                }
            }
            Some("panic") => panic!("hostile plugin panicked on purpose"),
            Some("undeclared") => {
                let service = ctx
                    .client()
                    .get_raw(&Gvk::new("", "v1", "Service"), "anything");
                Err(Error::terminal(format!("undeclared read: {service:?}")))
            }
            Some("escape") => {
                let applied = ctx.client().apply(&json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "escaped", "namespace": "kube-system"},
                }));
                Err(Error::terminal(format!("escape: {applied:?}")))
            }
            Some("scope-escape") => {
                let client = ctx.client();
                let mut seen = serde_json::Map::new();
                let attempts = [
                    (NAMESPACE, "victim/secrets/topsecret"),
                    (NAMESPACE, "kube-system/serviceaccounts"),
                    (CONFIG_MAP, "target/status"),
                    (CONFIG_MAP, ".."),
                    (CONFIG_MAP, "%2e%2e"),
                    (CONFIG_MAP, "x?watch=true"),
                ];
                for (i, (kind, name)) in attempts.iter().enumerate() {
                    let got = client.get_raw(kind, name);
                    seen.insert(format!("get{i}"), Value::String(verdict(&got)));
                }
                let applied = client.apply(&json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "a/../../secrets/b"},
                }));
                seen.insert("apply".into(), Value::String(verdict(&applied)));
                report(ctx, &request, Value::Object(seen))?;
                Ok(Response::await_change())
            }
            Some("hold") => {
                let mut held = vec![0u8; usize::try_from(number("mib", 60) << 20).unwrap_or(0)];
                // Touch every page, so that the memory is really used.
                for page in held.chunks_mut(4096) {
                    page[0] = 1;
                }
                std::thread::sleep(Duration::from_secs(number("secs", 5)));
                black_box(&held);
                Ok(Response::await_change())
            }
            Some("sleep") => {
                std::thread::sleep(Duration::from_secs(number("secs", 60)));
                Ok(Response::await_change())
            }
            Some("huge") => {
                let big = "x".repeat(usize::try_from(number("kib", 4096) << 10).unwrap_or(0));
                let target = data["target"].as_str().unwrap_or("status");
                let outcome = huge(ctx, target, &big);
                report(ctx, &request, json!({ target: outcome }))?;
                Ok(Response::await_change())
            }
            Some("invalid-reasons") => {
                let bytes = usize::try_from(number("bytes", 1 << 20)).unwrap_or(0);
                for i in 0..number("count", 1000) {
                    let reason = format!("not a reason {i} {}", "x".repeat(bytes));
                    let _ = ctx.recorder().event(EventType::Normal, &reason, "m");
                }
                Ok(Response::await_change())
            }
            Some("requeue-now") => Ok(Response::requeue_after(Duration::ZERO)),
            Some("get-loop") => {
                let mut calls = 0u64;
                let last = loop {
                    match ctx.client().get_raw(&CONFIG_MAP, "does-not-exist") {
                        Ok(_) => calls += 1,
                        Err(error) => break error,
                    }
                };
                // An Event, not the report: the report would need one more API call.
                let _ = ctx.recorder().event(
                    EventType::Normal,
                    "LoopReport",
                    &format!("calls={calls} last={last:?}"),
                );
                Ok(Response::await_change())
            }
            Some("log-flood") => {
                let line = format!(
                    "flood\n2026-12-03T00:00:00Z  INFO wasm_reconciler: forged line {}",
                    "x".repeat(usize::try_from(number("bytes", 1 << 20)).unwrap_or(0))
                );
                for _ in 0..number("lines", 1000) {
                    ctx.log().info(&line);
                }
                Ok(Response::await_change())
            }
            Some("read-secret") => {
                let name = data["secret"].as_str().unwrap_or("secret");
                let got = ctx.client().get_raw(&SECRET, name);
                report(ctx, &request, json!({"secret": verdict(&got)}))?;
                Ok(Response::await_change())
            }
            _ => Ok(Response::await_change()),
        }
    }
}

/// Passes `big` through the import `target`; says how that went.
fn huge(ctx: &Context, target: &str, big: &str) -> String {
    let recorder = ctx.recorder();
    match target {
        "apply" => verdict(&ctx.client().apply(&json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "huge"}, "data": {"big": big},
        }))),
        "reason" => format!("{:?}", recorder.event(EventType::Normal, big, "m")),
        "message" => format!("{:?}", recorder.event(EventType::Normal, "Huge", big)),
        "annotation" => format!(
            "{:?}",
            recorder.annotated_event([("example.com/big", big)], EventType::Normal, "Huge", "m")
        ),
        "log" => {
            ctx.log().info(big);
            "logged".to_owned()
        }
        "name" => verdict(&ctx.client().get_raw(&CONFIG_MAP, big)),
        _ => verdict(&ctx.client().patch_status(&json!({ "big": big }))),
    }
}

/// `ok` or the error, short enough for a ConfigMap value.
fn verdict<T>(result: &Result<T, ClientError>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(error) => format!("{error:?}").chars().take(300).collect(),
    }
}

/// Writes `data` into the owned ConfigMap `<name>-report`.
fn report(ctx: &Context, request: &Request, data: Value) -> Result<(), Error> {
    ctx.client()
        .apply(&json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("{}-report", request.name())},
            "data": data,
        }))
        .map(drop)
        .map_err(|error| Error::transient(format!("report: {error:?}")))
}
