//! Test fixture: a plugin that misbehaves as the reconciled ConfigMap's `data.mode` says.
//!
//! - `spin`: loops forever;
//! - `allocate`: allocates without bound;
//! - `panic`: panics with a message;
//! - `undeclared`: reads a Secret, a kind it did not declare;
//! - `escape`: applies a ConfigMap into another namespace;
//! - anything else: succeeds.

use std::hint::black_box;

use wasm_reconciler_sdk::prelude::*;
use wasm_reconciler_sdk::serde_json::json;

/// The plugin.
pub struct Hostile;

wasm_reconciler_sdk::export_reconciler!(Hostile);

impl Reconciler for Hostile {
    fn metadata() -> Metadata {
        Metadata::new("hostile", Gvk::new("", "v1", "ConfigMap")).owns(Gvk::new(
            "",
            "v1",
            "ConfigMap",
        ))
    }

    fn reconcile(ctx: &Context, request: Request) -> Result<Response, Error> {
        match request.object_value()["data"]["mode"].as_str() {
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
                let secret = ctx
                    .client()
                    .get_raw(&Gvk::new("", "v1", "Secret"), "anything");
                Err(Error::terminal(format!("undeclared read: {secret:?}")))
            }
            Some("escape") => {
                let applied = ctx.client().apply(&json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "escaped", "namespace": "kube-system"},
                }));
                Err(Error::terminal(format!("escape: {applied:?}")))
            }
            _ => Ok(Response::await_change()),
        }
    }
}
