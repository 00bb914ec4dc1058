//! Host bindings generated from each version of the plugin contract in `wit/<version>/`.
//!
//! Imports are async (they reach the API server) and trappable (a host failure can end the
//! guest's call); exports are async so a reconcile can wait on its imports without blocking a
//! runtime thread. Each version is its own set of types: the host implements the imports of
//! every version it serves, and a plugin links against the one it was built for.

#![allow(missing_docs, reason = "generated code")]

/// `wasm-reconciler:plugin@0.1.0`: reconcile only, live reads.
pub(crate) mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/0.1.0",
        world: "reconciler",
        imports: { default: async | trappable },
        exports: { default: async },
    });

    pub(crate) use self::wasm_reconciler::plugin::{client, event_recorder, log, types};
}

/// `wasm-reconciler:plugin@0.2.0`: finalizers and cleanup, selectors, watches, cached reads.
pub(crate) mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit/0.2.0",
        world: "reconciler",
        imports: { default: async | trappable },
        exports: { default: async },
    });

    pub(crate) use self::wasm_reconciler::plugin::{client, event_recorder, log, types};
}
