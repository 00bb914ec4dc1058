//! Test fixture for contract 0.2.0: reconciles ConfigMaps labelled `probe=true` in the
//! namespaces `arena` and `second`, with a
//! finalizer, an owned ConfigMap each, and three watches (Secrets by a label naming the
//! probe, ServiceAccounts by owner reference, Leases by namespace). Every call records an
//! Event saying what it saw, with a nonce so that no two calls' Events are aggregated: the
//! tests count calls by counting Events.
//!
//! What a probe's `data` asks for:
//! - `delete: <name>`: instead of applying its owned ConfigMap, delete the ConfigMap `<name>`
//!   and record the result as a `DeleteResult` Event.
//! - `apply-self: yes`: apply the probe itself, as an object it would own, and record the
//!   result as an `ApplySelfResult` Event.
//! - `cleanup: fail`: cleanup fails (transiently) with a `CleanupFailed` Warning, so the host
//!   retries it; without it, cleanup records `CleanedUp`.

use std::hash::{BuildHasher, Hasher};

use wasm_reconciler_sdk::prelude::*;
use wasm_reconciler_sdk::serde_json::{Value, json};
use wasm_reconciler_sdk::{LabelSelector, Propagation, WatchMapping};

const CONFIG_MAP: Gvk = Gvk::from_static("", "v1", "ConfigMap");
const SECRET: Gvk = Gvk::from_static("", "v1", "Secret");
const SERVICE_ACCOUNT: Gvk = Gvk::from_static("", "v1", "ServiceAccount");
const LEASE: Gvk = Gvk::from_static("coordination.k8s.io", "v1", "Lease");
/// The label of a Secret that names the probe it is for.
pub const FOR_LABEL: &str = "probe.wasm-reconciler.dev/for";
/// The namespaces the probe watches: the tests' own and one more (so that the host watches
/// all namespaces and keeps only these two).
pub const NAMESPACES: [&str; 2] = ["arena", "second"];
/// The probe's finalizer.
pub const FINALIZER: &str = "probe.wasm-reconciler.dev/cleanup";

/// The plugin.
pub struct Probe;

wasm_reconciler_sdk::export_reconciler!(Probe);

impl Reconciler for Probe {
    fn metadata() -> Metadata {
        Metadata::new("contract-probe", CONFIG_MAP)
            .owns(CONFIG_MAP)
            .watches(SECRET, WatchMapping::Label(FOR_LABEL.into()))
            .watches(SERVICE_ACCOUNT, WatchMapping::OwnerReferences)
            .watches(LEASE, WatchMapping::SameNamespace)
            .selector(LabelSelector::new().match_label("probe", "true"))
            .namespaces(NAMESPACES)
            .finalizer(FINALIZER)
            .max_concurrent_reconciles(2)
    }

    fn reconcile(ctx: &Context, request: Request) -> Result<Response, Error> {
        let object = request.object_value();
        let name = request.name();
        let client = ctx.client();
        if object["data"]["apply-self"] == "yes" {
            // An owner reference from the object to itself would keep it from ever going.
            let result = client.apply(&json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name}, "data": {"owner": name},
            }));
            let message = match result {
                Ok(_) => "applied itself".to_owned(),
                Err(error) => format!("apply itself failed: {error}"),
            };
            ctx.recorder()
                .event(EventType::Normal, "ApplySelfResult", &message)?;
        }
        if let Some(target) = object["data"]["delete"].as_str() {
            let result = match client.delete(&CONFIG_MAP, target, Propagation::Background) {
                Ok(existed) => format!("deleted {target}: existed={existed}"),
                Err(error) => format!("delete {target} failed: {error}"),
            };
            ctx.recorder()
                .event(EventType::Normal, "DeleteResult", &result)?;
        } else {
            client.apply(&json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("{name}-owned")},
                "data": {"owner": name},
            }))?;
        }
        // What the caches say, from the listing calls.
        let for_me = LabelSelector::new().match_label(FOR_LABEL, name);
        let secrets: Vec<Value> = client.list(&SECRET, Some(&for_me))?;
        let leases: Vec<Value> = client.list(&LEASE, None)?;
        let owned: Option<Value> = client.get(&CONFIG_MAP, &format!("{name}-owned"))?;
        let message = format!(
            "{} finalizers={} secrets={} leases={} owned={}",
            nonce(),
            object["metadata"]["finalizers"],
            versions(&secrets),
            versions(&leases),
            owned
                .as_ref()
                .map_or("none".to_owned(), |o| o["data"]["touched"].to_string()),
        );
        ctx.recorder()
            .event(EventType::Normal, "Reconciled", &message)?;
        Ok(Response::await_change())
    }

    fn cleanup(ctx: &Context, request: Request) -> Result<(), Error> {
        if request.object_value()["data"]["cleanup"] == "fail" {
            ctx.recorder().event(
                EventType::Warning,
                "CleanupFailed",
                &format!("{} asked to fail", nonce()),
            )?;
            return Err(Error::transient("cleanup asked to fail"));
        }
        ctx.recorder().event(
            EventType::Normal,
            "CleanedUp",
            &format!("{} cleaned up", nonce()),
        )?;
        Ok(())
    }
}

/// `name@resourceVersion` of each object, in the order listed.
fn versions(objects: &[Value]) -> String {
    let names: Vec<String> = objects
        .iter()
        .map(|o| {
            format!(
                "{}@{}",
                o["metadata"]["name"].as_str().unwrap_or("?"),
                o["metadata"]["resourceVersion"].as_str().unwrap_or("?")
            )
        })
        .collect();
    format!("[{}]", names.join(","))
}

/// A number that differs on every call (the guest's hash seed comes from `wasi:random`).
fn nonce() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_reconciler_sdk::testkit::TestKit;

    #[test]
    fn a_probe_applies_its_owned_config_map_and_says_what_it_saw() {
        let probe = json!({"metadata": {"name": "a", "namespace": "arena", "uid": "u1",
            "labels": {"probe": "true"}}});
        let outcome = TestKit::new().reconcile::<Probe>(probe);
        assert!(outcome.result().is_ok(), "{:?}", outcome.result());
        assert_eq!(outcome.applied().len(), 1);
        let event = &outcome.events()[0];
        assert_eq!(event.reason, "Reconciled");
        assert!(event.message.contains(FINALIZER), "{}", event.message);
    }
}
