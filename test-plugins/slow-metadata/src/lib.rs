//! Test fixture: a plugin whose `metadata` sleeps for an hour, which costs no CPU: only a
//! wall-clock limit on the call stops it.

use std::time::Duration;

use wasm_reconciler_sdk::prelude::*;

/// The plugin.
pub struct SlowMetadata;

wasm_reconciler_sdk::export_reconciler!(SlowMetadata);

impl Reconciler for SlowMetadata {
    fn metadata() -> Metadata {
        std::thread::sleep(Duration::from_secs(3600));
        Metadata::new("slow-metadata", Gvk::new("", "v1", "ConfigMap"))
    }

    fn reconcile(_ctx: &Context, _request: Request) -> Result<Response, Error> {
        Ok(Response::await_change())
    }
}
