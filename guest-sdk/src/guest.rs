//! The glue between a [`Reconciler`] and the WIT world: the export adapter that
//! [`export_reconciler!`](crate::export_reconciler) names, and the capabilities backed by the
//! host's imports.
//!
//! Everything here is compiled on every target so that native `cargo check`/`clippy` see it,
//! but it only runs inside a component: natively, wit-bindgen's import stubs panic. Native
//! code uses the [test kit](crate::testkit) instead.

use std::marker::PhantomData;
use std::rc::Rc;

use crate::wit::wasm_reconciler::plugin::{client, event_recorder, log, types};
use crate::{
    ClientError, Context, Error, Event, EventError, EventSink, EventType, Gvk, Level, LogSink,
    Metadata, ObjectClient, Reconciler, Request, Response,
};

/// Implements the generated `Guest` trait for a [`Reconciler`]; named only by
/// [`export_reconciler!`](crate::export_reconciler).
pub struct Export<R>(PhantomData<fn() -> R>);

impl<R: Reconciler> crate::wit::Guest for Export<R> {
    fn metadata() -> types::PluginMetadata {
        R::metadata().into()
    }

    fn reconcile(
        request: types::ReconcileRequest,
    ) -> Result<types::ReconcileResponse, types::ReconcileError> {
        let ctx = Context::new(Rc::new(HostEvents), Rc::new(HostClient), Rc::new(HostLog));
        run::<R>(&ctx, request.object)
            .map(|response| types::ReconcileResponse {
                requeue_after_ms: response.requeue_after_ms(),
            })
            .map_err(|error| match error.kind() {
                crate::ErrorKind::Transient => types::ReconcileError::Transient(error.to_string()),
                crate::ErrorKind::Terminal => types::ReconcileError::Terminal(error.to_string()),
            })
    }
}

/// One reconcile, from the object's JSON to the plugin's answer: shared by the component
/// export and the test kit, so both parse requests the same way.
pub(crate) fn run<R: Reconciler>(ctx: &Context, object: String) -> Result<Response, Error> {
    let request = Request::from_json(object)?;
    R::reconcile(ctx, request)
}

impl From<Metadata> for types::PluginMetadata {
    fn from(metadata: Metadata) -> Self {
        Self {
            name: metadata.name().to_owned(),
            reconciles: metadata.reconciled_kind().into(),
            owns: metadata.owned_kinds().iter().map(Into::into).collect(),
            reads: metadata.read_kinds().iter().map(Into::into).collect(),
        }
    }
}

impl From<&Gvk> for types::GroupVersionKind {
    fn from(gvk: &Gvk) -> Self {
        Self {
            group: gvk.group().to_owned(),
            version: gvk.version().to_owned(),
            kind: gvk.kind().to_owned(),
        }
    }
}

/// Events through the `event-recorder` import.
struct HostEvents;

impl EventSink for HostEvents {
    fn record(&self, event: &Event<'_>) -> Result<(), EventError> {
        let event_type = match event.event_type {
            EventType::Normal => event_recorder::EventType::Normal,
            EventType::Warning => event_recorder::EventType::Warning,
        };
        let result = if event.annotations.is_empty() {
            event_recorder::event(event_type, event.reason, event.message)
        } else {
            event_recorder::annotated_event(
                event.annotations,
                event_type,
                event.reason,
                event.message,
            )
        };
        result.map_err(|error| match error {
            event_recorder::EventError::InvalidReason(m) => EventError::InvalidReason(m),
            event_recorder::EventError::InvalidAnnotation(m) => EventError::InvalidAnnotation(m),
            event_recorder::EventError::NoObject => EventError::NoObject,
        })
    }
}

/// Objects through the `client` import.
struct HostClient;

impl ObjectClient for HostClient {
    fn get(&self, kind: &Gvk, name: &str) -> Result<Option<String>, ClientError> {
        client::get(&kind.into(), name).map_err(Into::into)
    }

    fn apply(&self, object: &str) -> Result<String, ClientError> {
        client::apply(object).map_err(Into::into)
    }

    fn patch_status(&self, status: &str) -> Result<String, ClientError> {
        client::patch_status(status).map_err(Into::into)
    }
}

impl From<client::ClientError> for ClientError {
    fn from(error: client::ClientError) -> Self {
        match error {
            client::ClientError::Forbidden(m) => Self::Forbidden(m),
            client::ClientError::Invalid(m) => Self::Invalid(m),
            client::ClientError::Api((code, message)) => Self::Api { code, message },
            client::ClientError::Unavailable(m) => Self::Unavailable(m),
        }
    }
}

/// Lines through the `log` import.
struct HostLog;

impl LogSink for HostLog {
    fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Trace => log::Level::Trace,
            Level::Debug => log::Level::Debug,
            Level::Info => log::Level::Info,
            Level::Warn => log::Level::Warn,
            Level::Error => log::Level::Error,
        };
        log::log(level, message);
    }
}
