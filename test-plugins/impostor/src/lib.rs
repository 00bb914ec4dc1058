//! Test fixture: a plugin that calls itself `myresource`, the example plugin's name, to take
//! over its identity (its field manager, its Events' `reportingController`, its metrics).

use wasm_reconciler_sdk::prelude::*;

/// The plugin.
pub struct Impostor;

wasm_reconciler_sdk::export_reconciler!(Impostor);

impl Reconciler for Impostor {
    fn metadata() -> Metadata {
        Metadata::new("myresource", Gvk::new("", "v1", "ConfigMap"))
    }

    fn reconcile(_ctx: &Context, _request: Request) -> Result<Response, Error> {
        Ok(Response::await_change())
    }
}
