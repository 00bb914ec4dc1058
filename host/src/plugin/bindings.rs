//! Host bindings generated from the plugin contract in `wit/0.1.0/`.
//!
//! Imports are async (they reach the API server) and trappable (a host failure can end the
//! guest's call); exports are async so a reconcile can wait on its imports without blocking a
//! runtime thread.

#![allow(missing_docs, reason = "generated code")]

wasmtime::component::bindgen!({
    path: "../wit/0.1.0",
    world: "reconciler",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub(crate) use self::wasm_reconciler::plugin::{client, event_recorder, log, types};
