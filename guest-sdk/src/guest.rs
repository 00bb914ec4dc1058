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
    ClientError, Context, Error, ErrorKind, Event, EventError, EventSink, EventType, Gvk,
    LabelSelector, Level, LogSink, Metadata, ObjectClient, Operator, Propagation, Reconciler,
    Request, Response, WatchMapping,
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
        run::<R>(&host_context(), request.object)
            .map(|response| types::ReconcileResponse {
                requeue_after_ms: response.requeue_after_ms(),
            })
            .map_err(into_wit_error)
    }

    fn cleanup(request: types::ReconcileRequest) -> Result<(), types::ReconcileError> {
        run_cleanup::<R>(&host_context(), request.object).map_err(into_wit_error)
    }
}

/// A context over the host's imports.
fn host_context() -> Context {
    Context::new(Rc::new(HostEvents), Rc::new(HostClient), Rc::new(HostLog))
}

/// A reconcile or cleanup error as the WIT carries it.
fn into_wit_error(error: Error) -> types::ReconcileError {
    match error.kind() {
        ErrorKind::Transient => types::ReconcileError::Transient(error.to_string()),
        ErrorKind::Terminal => types::ReconcileError::Terminal(error.to_string()),
    }
}

/// One reconcile, from the object's JSON to the plugin's answer: shared by the component
/// export and the test kit, so both parse requests the same way.
pub(crate) fn run<R: Reconciler>(ctx: &Context, object: String) -> Result<Response, Error> {
    let request = Request::from_json(object)?;
    R::reconcile(ctx, request)
}

/// One cleanup, as [`run`] is one reconcile.
pub(crate) fn run_cleanup<R: Reconciler>(ctx: &Context, object: String) -> Result<(), Error> {
    let request = Request::from_json(object)?;
    R::cleanup(ctx, request)
}

impl From<Metadata> for types::PluginMetadata {
    fn from(metadata: Metadata) -> Self {
        Self {
            name: metadata.name().to_owned(),
            reconciles: metadata.reconciled_kind().into(),
            owns: metadata.owned_kinds().iter().map(Into::into).collect(),
            reads: metadata.read_kinds().iter().map(Into::into).collect(),
            watches: metadata
                .watched()
                .iter()
                .map(|watch| types::Watch {
                    kind: watch.kind().into(),
                    mapping: match watch.mapping() {
                        WatchMapping::OwnerReferences => types::WatchMapping::OwnerReferences,
                        WatchMapping::Label(key) => types::WatchMapping::Label(key.clone()),
                        WatchMapping::SameNamespace => types::WatchMapping::SameNamespace,
                    },
                })
                .collect(),
            selector: metadata.label_selector().map(Into::into),
            namespaces: metadata.namespace_scope().to_vec(),
            finalizer: metadata.finalizer_name().map(str::to_owned),
            max_concurrent_reconciles: metadata.max_concurrent(),
            resync_after_ms: metadata
                .resync_period()
                .map(crate::response::millis_rounded_up),
        }
    }
}

impl From<&LabelSelector> for types::LabelSelector {
    fn from(selector: &LabelSelector) -> Self {
        Self {
            match_labels: selector
                .match_labels()
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
            match_expressions: selector
                .match_expressions()
                .iter()
                .map(|requirement| types::SelectorRequirement {
                    key: requirement.key().to_owned(),
                    operator: match requirement.operator() {
                        Operator::In => types::SelectorOperator::In,
                        Operator::NotIn => types::SelectorOperator::NotIn,
                        Operator::Exists => types::SelectorOperator::Exists,
                        Operator::DoesNotExist => types::SelectorOperator::DoesNotExist,
                    },
                    values: requirement.values().to_vec(),
                })
                .collect(),
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

    fn get_live(&self, kind: &Gvk, name: &str) -> Result<Option<String>, ClientError> {
        client::get_live(&kind.into(), name).map_err(Into::into)
    }

    fn list(
        &self,
        kind: &Gvk,
        selector: Option<&LabelSelector>,
    ) -> Result<Vec<String>, ClientError> {
        let selector = selector.map(types::LabelSelector::from);
        client::list(&kind.into(), selector.as_ref()).map_err(Into::into)
    }

    fn delete(
        &self,
        kind: &Gvk,
        name: &str,
        propagation: Propagation,
    ) -> Result<bool, ClientError> {
        let propagation = match propagation {
            Propagation::Background => client::PropagationPolicy::Background,
            Propagation::Foreground => client::PropagationPolicy::Foreground,
            Propagation::Orphan => client::PropagationPolicy::Orphan,
        };
        client::delete(&kind.into(), name, propagation).map_err(Into::into)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::LabelSelector;

    #[test]
    fn metadata_converts_to_what_the_host_reads() {
        let secret = Gvk::new("", "v1", "Secret");
        let metadata = Metadata::new("p", Gvk::new("example.com", "v1", "Widget"))
            .watches(
                secret.clone(),
                WatchMapping::Label("example.com/widget".into()),
            )
            .watches(Gvk::new("", "v1", "Pod"), WatchMapping::OwnerReferences)
            .selector(
                LabelSelector::new()
                    .match_label("a", "b")
                    .key_not_in("c", ["d"]),
            )
            .namespaces(["ns"])
            .finalizer("example.com/f")
            .max_concurrent_reconciles(3)
            .resync_every(Duration::from_micros(1_500_001));
        let wit = types::PluginMetadata::from(metadata);

        assert_eq!(wit.watches.len(), 2);
        assert_eq!(wit.watches[0].kind.kind, "Secret");
        assert!(
            matches!(&wit.watches[0].mapping, types::WatchMapping::Label(key) if key == "example.com/widget")
        );
        assert!(matches!(
            wit.watches[1].mapping,
            types::WatchMapping::OwnerReferences
        ));
        let selector = wit.selector.expect("a selector");
        assert_eq!(selector.match_labels, [("a".to_owned(), "b".to_owned())]);
        assert_eq!(selector.match_expressions[0].key, "c");
        assert!(matches!(
            selector.match_expressions[0].operator,
            types::SelectorOperator::NotIn
        ));
        assert_eq!(selector.match_expressions[0].values, ["d"]);
        assert_eq!(wit.namespaces, ["ns"]);
        assert_eq!(wit.finalizer.as_deref(), Some("example.com/f"));
        assert_eq!(wit.max_concurrent_reconciles, Some(3));
        assert_eq!(wit.resync_after_ms, Some(1501));
    }

    #[test]
    fn metadata_without_the_new_fields_converts_to_nones() {
        let wit = types::PluginMetadata::from(Metadata::new("p", Gvk::new("", "v1", "ConfigMap")));
        assert!(wit.watches.is_empty() && wit.namespaces.is_empty());
        assert!(wit.selector.is_none() && wit.finalizer.is_none());
        assert_eq!(wit.max_concurrent_reconciles, None);
        assert_eq!(wit.resync_after_ms, None);
    }
}
