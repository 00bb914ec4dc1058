//! Write [wasm-reconciler] plugins in Rust: Kubernetes reconcile logic that runs as a
//! sandboxed WebAssembly component inside the wasm-reconciler host.
//!
//! A plugin is a type that implements [`Reconciler`], exported with [`export_reconciler!`]:
//!
//! ```
//! use wasm_reconciler_sdk::{eventf, Context, Error, Gvk, Metadata, Reconciler, Request, Response};
//!
//! struct Hello;
//!
//! impl Reconciler for Hello {
//!     fn metadata() -> Metadata {
//!         Metadata::new("hello", Gvk::new("example.com", "v1", "Greeting"))
//!     }
//!     fn reconcile(ctx: &Context, request: Request) -> Result<Response, Error> {
//!         eventf!(ctx.recorder(), Normal, "Greeted", "Hello, {}", request.name())?;
//!         Ok(Response::await_change())
//!     }
//! }
//!
//! wasm_reconciler_sdk::export_reconciler!(Hello);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release` (crate type `cdylib`) and put
//! the `.wasm` file in the host's plugins directory. This crate is the only dependency a
//! plugin needs for the host: it generates the bindings to the WIT contract
//! (`wasm-reconciler:plugin@0.2.0`) and keeps them out of sight.
//!
//! # Reading guide
//!
//! - [`Reconciler`]: the trait a plugin implements: [`Metadata`] in, [`Request`] ->
//!   [`Response`] or [`Error`] for each reconcile, and an optional
//!   [`cleanup`](Reconciler::cleanup) before an object with the plugin's finalizer goes.
//! - [`Metadata`]: the kinds the plugin reconciles, owns, reads and [watches](WatchMapping);
//!   its scope (a [`LabelSelector`], namespaces); its finalizer, concurrency and resync.
//! - [`Context`]: what a call may use: the event [`Recorder`] (with [`eventf!`] and
//!   [`annotated_eventf!`]), the scoped [`Client`] (get from the host's cache, `get_live`,
//!   list, apply, delete, patch the status), and the [`Logger`].
//! - [`conditions`]: status conditions and `SetStatusCondition`; [`clock`] for the time.
//! - [`testkit`]: runs a reconciler natively against fakes that check what the host checks,
//!   finalizer flow and watch mappings included.
//! - [`prelude`]: the names most plugins use, in one `use`.
//!
//! # Design
//!
//! Each capability in [`Context`] is a thin type over a trait object ([`EventSink`],
//! [`ObjectClient`], [`LogSink`]). Inside a component they call the host's WIT imports;
//! natively, where those imports do not exist, the [`testkit`] fakes stand in. So the same
//! reconcile function is unit-tested with `cargo test` and shipped as `.wasm` unchanged.
//!
//! [wasm-reconciler]: https://github.com/wasm-reconciler/wasm-reconciler

#![deny(missing_docs)]

mod client;
pub mod clock;
pub mod conditions;
mod context;
mod error;
mod guest;
mod gvk;
mod log;
mod metadata;
mod names;
pub mod recorder;
mod request;
mod response;
mod selector;
pub mod testkit;

pub use client::{Client, ClientError, ObjectClient, Propagation};
pub use conditions::{Condition, ConditionStatus};
pub use context::Context;
pub use error::{Error, ErrorKind, ResultExt};
pub use gvk::Gvk;
pub use log::{Level, LogSink, Logger};
pub use metadata::{Metadata, MetadataError, Watch, WatchMapping};
pub use recorder::{Event, EventError, EventSink, EventType, Recorder};
pub use request::Request;
pub use response::Response;
pub use selector::{LabelSelector, Operator, Requirement, SelectorError};

/// The names most plugins use, for `use wasm_reconciler_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{
        ClientError, Context, Error, ErrorKind, EventType, Gvk, LabelSelector, Metadata,
        Propagation, Reconciler, Request, Response, ResultExt, WatchMapping, annotated_eventf,
        eventf,
    };
}

/// Re-exported so that plugins and their tests can write `serde_json::json!` and name
/// `Value` without a version mismatch.
pub use serde_json;

/// Re-exported for the generated bindings, which find their runtime through this path.
#[doc(hidden)]
pub use wit_bindgen;

/// The bindings wit-bindgen generates from `wit/plugin.wit`. Not part of the API: use the
/// types at the crate root.
///
/// The path is relative to this crate's manifest, and `wit/` is inside the crate, so the
/// bindings build wherever the crate is: a path or git dependency, vendored, or packaged.
#[doc(hidden)]
#[allow(
    unsafe_code,
    reason = "wit-bindgen's generated ABI glue reads and writes linear memory by raw pointer"
)]
#[allow(
    missing_docs,
    reason = "generated code; the WIT documents its own items"
)]
pub mod wit {
    wit_bindgen::generate!({
        path: "wit",
        world: "reconciler",
        runtime_path: "crate::wit_bindgen::rt",
        pub_export_macro: true,
        default_bindings_module: "::wasm_reconciler_sdk::wit",
    });
}

/// Items that [`export_reconciler!`] expands to. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::guest::Export;
}

/// A reconciler plugin: what it declares, and how it brings the world in line with one
/// object. The Rust form of controller-runtime's `Reconciler` plus its builder's
/// `For`/`Owns`/`Watches`.
///
/// The host calls [`metadata`](Reconciler::metadata) once, when it loads the plugin, and
/// [`reconcile`](Reconciler::reconcile) each time an object of the reconciled kind (or an
/// object it owns or watches) changes, or a requeue falls due. With a
/// [finalizer](Metadata::finalizer) declared, it calls [`cleanup`](Reconciler::cleanup)
/// instead once the object is being deleted. Each call runs in a fresh instance: nothing
/// survives between calls, so there is no `self`.
///
/// Export the implementing type with [`export_reconciler!`]; see the [crate docs](crate)
/// for a whole plugin and [`testkit`] for testing one.
pub trait Reconciler: 'static {
    /// Describes the plugin: its name, the kinds it reconciles, owns, reads and watches,
    /// and how the host runs it. The host refuses every client call on a kind not declared
    /// here.
    ///
    /// Called before any object exists: it must not use a [`Context`].
    fn metadata() -> Metadata;

    /// Brings the world in line with the object in `request`.
    ///
    /// Reconciliation is level-triggered: look at what is (the object, its owned objects
    /// through [`Context::client`]) and make it what it should be, whatever happened before.
    /// The same call may come twice; make it idempotent. Never called for an object that is
    /// being deleted (`metadata.deletionTimestamp` set): see [`cleanup`](Reconciler::cleanup).
    ///
    /// # Errors
    ///
    /// A transient [`Error`] makes the host retry with backoff; a terminal one makes it wait
    /// for the object to change.
    fn reconcile(ctx: &Context, request: Request) -> Result<Response, Error>;

    /// Cleans up after an object that is being deleted, or that leaves the plugin's scope
    /// (its labels stop matching the [selector](Metadata::selector)): what owner references
    /// cannot clean up, such as external resources or objects in other namespaces.
    ///
    /// Called only when the metadata declares a [finalizer](Metadata::finalizer), instead of
    /// `reconcile`, for as long as the object carries it; the host removes the finalizer
    /// when `cleanup` succeeds, and the object can go. Events it records attach to the
    /// object. Keep it idempotent: it may run again after a success whose finalizer removal
    /// failed. The default does nothing and succeeds.
    ///
    /// # Errors
    ///
    /// As for [`reconcile`](Reconciler::reconcile): the finalizer stays, and the host calls
    /// `cleanup` again after backoff (transient) or on the next change (terminal).
    fn cleanup(ctx: &Context, request: Request) -> Result<(), Error> {
        let _ = (ctx, request);
        Ok(())
    }
}

/// Exports a [`Reconciler`] as the plugin's component exports (`metadata`, `reconcile` and
/// `cleanup`).
///
/// Write it once, at the root of the plugin crate (crate type `cdylib`):
///
/// ```
/// # use wasm_reconciler_sdk::{Context, Error, Gvk, Metadata, Reconciler, Request, Response};
/// # struct MyReconciler;
/// # impl Reconciler for MyReconciler {
/// #     fn metadata() -> Metadata { Metadata::new("my", Gvk::new("example.com", "v1", "My")) }
/// #     fn reconcile(_: &Context, _: Request) -> Result<Response, Error> { Ok(Response::await_change()) }
/// # }
/// wasm_reconciler_sdk::export_reconciler!(MyReconciler);
/// ```
///
/// # Requirements
///
/// - The type implements [`Reconciler`]; a type that does not fails to compile here, on
///   every target.
/// - At most one `export_reconciler!` per component: the exports have fixed names.
///
/// # Generated code
///
/// On `wasm32` targets, the exported `metadata`, `reconcile` and `cleanup` functions of the
/// `wasm-reconciler:plugin/reconciler` world (contract 0.2.0), which call the reconciler with a [`Context`]
/// over the host's imports and convert its answer. The ABI glue is wit-bindgen's, generated
/// inside this crate, so the plugin crate itself may keep `#![forbid(unsafe_code)]`. On
/// other targets, only the trait check: native builds (tests, `cargo check`) export
/// nothing.
#[macro_export]
macro_rules! export_reconciler {
    ($reconciler:ty $(,)?) => {
        const _: () = {
            fn assert_reconciler<R: $crate::Reconciler>() {}
            let _: fn() = assert_reconciler::<$reconciler>;
        };
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type WasmReconcilerExport = $crate::__private::Export<$reconciler>;
    $crate::wit::export!(WasmReconcilerExport with_types_in $crate::wit);
        };
    };
}
