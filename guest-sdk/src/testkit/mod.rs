//! Runs a [`Reconciler`] natively, against fakes that check what the host checks.
//!
//! The [`TestKit`] holds a [`FakeClient`] store across reconciles; each
//! [`reconcile`](TestKit::reconcile) returns an [`Outcome`] with the result and everything
//! that reconcile did: events recorded (and refused), objects applied, status patches, log
//! lines, and the status as it ends up.
//!
//! ```
//! use serde_json::json;
//! use wasm_reconciler_sdk::testkit::{RecordedEvent, TestKit};
//! # use wasm_reconciler_sdk::{eventf, Context, Error, Gvk, Metadata, Reconciler, Request, Response};
//! # struct Greeter;
//! # impl Reconciler for Greeter {
//! #     fn metadata() -> Metadata { Metadata::new("greeter", Gvk::new("example.com", "v1", "Greeting")) }
//! #     fn reconcile(ctx: &Context, request: Request) -> Result<Response, Error> {
//! #         eventf!(ctx.recorder(), Normal, "Greeted", "Hello, {}", request.name())?;
//! #         ctx.client().patch_status(&json!({"greeted": true}))?;
//! #         Ok(Response::await_change())
//! #     }
//! # }
//!
//! let mut kit = TestKit::new();
//! // apiVersion and kind default to the reconciled kind from the plugin's metadata.
//! let outcome = kit.reconcile::<Greeter>(json!({
//!     "metadata": {"name": "world", "namespace": "default", "generation": 1},
//! }));
//!
//! assert!(outcome.result().is_ok());
//! assert_eq!(outcome.events(), [RecordedEvent::normal("Greeted", "Hello, world")]);
//! assert_eq!(outcome.status(), Some(&json!({"greeted": true})));
//! ```
//!
//! # What is checked like the host
//!
//! - The plugin's [`Metadata`](crate::Metadata) is [validated](crate::Metadata::validate).
//! - Event reasons and annotations: a refused event returns the host's [`EventError`] to
//!   the reconciler and shows up in [`Outcome::rejected_events`], not in
//!   [`Outcome::events`]. Long messages are truncated as the host truncates them.
//! - Declared kinds: `get` on an undeclared kind and `apply` on a kind not owned fail with
//!   [`ClientError::Forbidden`](crate::ClientError::Forbidden).
//! - `apply` sets the namespace and controller owner reference; `patch_status` is a JSON
//!   merge patch.
//!
//! See [`FakeClient`] for what the fakes do not model.
//!
//! [`EventError`]: crate::EventError

mod fakes;

use std::rc::Rc;

use serde::Serialize;
use serde_json::Value;

pub use fakes::{
    FakeClient, FakeLog, FakeRecorder, LogLine, Operation, RecordedEvent, RejectedEvent,
};

use crate::{Context, Error, Reconciler, Response};

/// Runs reconcilers natively over a [`FakeClient`] store that persists across reconciles,
/// so a test can reconcile, look, and reconcile again, like the host does.
#[derive(Debug, Clone, Default)]
pub struct TestKit {
    client: FakeClient,
}

impl TestKit {
    /// A kit with an empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores an object (an owned child, something the plugin reads) before reconciling.
    ///
    /// # Panics
    ///
    /// As for [`FakeClient::insert`].
    #[must_use]
    pub fn with_object(self, object: impl Serialize) -> Self {
        self.client.insert(object);
        self
    }

    /// The store, to add, inspect or remove objects between reconciles, or to
    /// [inject failures](FakeClient::fail_next).
    pub fn client(&self) -> &FakeClient {
        &self.client
    }

    /// Reconciles `object` with `R`, as the host would, and reports what happened.
    ///
    /// `object` is stored as the reconciled object first (replacing any earlier version), so
    /// the reconciler can `get` it and patch its status. A missing `apiVersion` or `kind`
    /// is filled in from `R`'s metadata.
    ///
    /// # Panics
    ///
    /// If `R::metadata()` is invalid, if `object` is not a JSON object with a
    /// `metadata.name`, or if its kind is not the one `R` reconciles: mistakes the host
    /// would refuse long before a reconcile.
    pub fn reconcile<R: Reconciler>(&mut self, object: impl Serialize) -> Outcome {
        let metadata = R::metadata();
        if let Err(error) = metadata.validate() {
            panic!("the plugin's metadata is invalid: {error}");
        }
        let kind = metadata.reconciled_kind().clone();
        let mut object = serde_json::to_value(object)
            .unwrap_or_else(|e| panic!("cannot serialize the object: {e}"));
        let Some(fields) = object.as_object_mut() else {
            panic!("the reconciled object must be a JSON object, not {object}");
        };
        fields
            .entry("apiVersion")
            .or_insert_with(|| Value::String(kind.api_version()));
        fields
            .entry("kind")
            .or_insert_with(|| Value::String(kind.kind().to_owned()));
        let request =
            crate::Request::from_json(object.to_string()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            request.gvk().as_ref(),
            Some(&kind),
            "the object's kind must be the one the plugin reconciles"
        );

        self.client.scope_to(metadata);
        self.client.set_reconciled(&object);
        let recorder = FakeRecorder::new();
        let log = FakeLog::new();
        let (applied_before, patches_before) = self.client.counts();
        let ctx = Context::new(
            Rc::new(recorder.clone()),
            Rc::new(self.client.clone()),
            Rc::new(log.clone()),
        );

        let result = crate::guest::run::<R>(&ctx, object.to_string());

        let mut applied = self.client.applied();
        let mut status_patches = self.client.status_patches();
        Outcome {
            result,
            events: recorder.events(),
            rejected_events: recorder.rejected(),
            applied: applied.split_off(applied_before.min(applied.len())),
            status_patches: status_patches.split_off(patches_before.min(status_patches.len())),
            logs: log.lines(),
            object: self.client.reconciled().unwrap_or(object),
        }
    }
}

/// What one [`TestKit::reconcile`] did.
#[derive(Debug, Clone)]
#[must_use]
pub struct Outcome {
    result: Result<Response, Error>,
    events: Vec<RecordedEvent>,
    rejected_events: Vec<RejectedEvent>,
    applied: Vec<Value>,
    status_patches: Vec<Value>,
    logs: Vec<LogLine>,
    object: Value,
}

impl Outcome {
    /// What the reconciler returned.
    pub fn result(&self) -> &Result<Response, Error> {
        &self.result
    }

    /// What the reconciler returned, by value.
    pub fn into_result(self) -> Result<Response, Error> {
        self.result
    }

    /// The response, if the reconcile succeeded.
    pub fn response(&self) -> Option<&Response> {
        self.result.as_ref().ok()
    }

    /// The error, if the reconcile failed.
    pub fn error(&self) -> Option<&Error> {
        self.result.as_ref().err()
    }

    /// The events the host would have posted, in order.
    pub fn events(&self) -> &[RecordedEvent] {
        &self.events
    }

    /// The events the host would have refused, with the error the reconciler got.
    pub fn rejected_events(&self) -> &[RejectedEvent] {
        &self.rejected_events
    }

    /// The objects applied, as the reconciler sent them.
    pub fn applied(&self) -> &[Value] {
        &self.applied
    }

    /// The status patches, as the reconciler sent them.
    pub fn status_patches(&self) -> &[Value] {
        &self.status_patches
    }

    /// The log lines written.
    pub fn logs(&self) -> &[LogLine] {
        &self.logs
    }

    /// The reconciled object as stored after the reconcile, status patches merged in.
    pub fn object(&self) -> &Value {
        &self.object
    }

    /// The reconciled object's `status` after the reconcile, if it has one.
    pub fn status(&self) -> Option<&Value> {
        self.object.get("status")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{ClientError, ErrorKind, EventType, Gvk, Metadata, Request, eventf};

    const WIDGET: Gvk = Gvk::from_static("example.com", "v1", "Widget");
    const CONFIG_MAP: Gvk = Gvk::from_static("", "v1", "ConfigMap");
    const SECRET: Gvk = Gvk::from_static("", "v1", "Secret");

    /// Exercises every capability; what it does is steered by the widget's spec.
    struct Widgets;

    impl Reconciler for Widgets {
        fn metadata() -> Metadata {
            Metadata::new("widgets", WIDGET).owns(CONFIG_MAP)
        }

        fn reconcile(ctx: &Context, request: Request) -> Result<Response, Error> {
            let spec = &request.object_value()["spec"];
            let reason = spec["reason"].as_str().unwrap_or("Synced");
            if spec["readSecret"] == true {
                ctx.client().get::<Value>(&SECRET, "s")?;
            }
            let existing = ctx.client().get::<Value>(&CONFIG_MAP, request.name())?;
            ctx.client().apply(&json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": request.name()},
                "data": {"existed": existing.is_some().to_string()},
            }))?;
            ctx.log().info(format_args!("synced {}", request.name()));
            eventf!(ctx.recorder(), Normal, reason, "Synced {}", request.name())?;
            ctx.recorder().annotated_event(
                [("example.com/id", "1")],
                EventType::Warning,
                "Annotated",
                "with annotations",
            )?;
            ctx.client().patch_status(
                &json!({"observedGeneration": request.generation(), "phase": "Ready"}),
            )?;
            Ok(Response::requeue_after(std::time::Duration::from_secs(60)))
        }
    }

    fn widget(spec: Value) -> Value {
        json!({"metadata": {"name": "w", "namespace": "ns", "generation": 2, "uid": "u"}, "spec": spec})
    }

    #[test]
    fn outcome_reports_everything_one_reconcile_did() {
        let mut kit = TestKit::new();
        let outcome = kit.reconcile::<Widgets>(widget(json!({})));

        assert_eq!(
            outcome.response().and_then(Response::requeue_delay),
            Some(std::time::Duration::from_secs(60))
        );
        assert_eq!(
            outcome.events(),
            [
                RecordedEvent::normal("Synced", "Synced w"),
                RecordedEvent::warning("Annotated", "with annotations")
                    .with_annotation("example.com/id", "1"),
            ]
        );
        assert_eq!(outcome.applied().len(), 1);
        assert_eq!(outcome.applied()[0]["data"]["existed"], "false");
        assert_eq!(
            outcome.status_patches(),
            [json!({"observedGeneration": 2, "phase": "Ready"})]
        );
        assert_eq!(
            outcome.status(),
            Some(&json!({"observedGeneration": 2, "phase": "Ready"}))
        );
        assert_eq!(outcome.object()["kind"], "Widget");
        assert_eq!(
            outcome.logs(),
            [LogLine {
                level: crate::Level::Info,
                message: "synced w".into()
            }]
        );
    }

    #[test]
    fn store_persists_across_reconciles_but_outcomes_do_not_accumulate() {
        let mut kit = TestKit::new();
        let _ = kit.reconcile::<Widgets>(widget(json!({})));
        let second = kit.reconcile::<Widgets>(widget(json!({})));

        assert_eq!(second.applied().len(), 1);
        assert_eq!(second.applied()[0]["data"]["existed"], "true");
        assert_eq!(second.status_patches().len(), 1);
        assert_eq!(kit.client().applied().len(), 2);
        let stored = kit.client().object(&CONFIG_MAP, "w").unwrap();
        assert_eq!(stored["metadata"]["ownerReferences"][0]["kind"], "Widget");
    }

    #[test]
    fn bad_reason_is_refused_like_the_host_refuses_it() {
        let outcome = TestKit::new().reconcile::<Widgets>(widget(json!({"reason": "not synced"})));

        let error = outcome
            .error()
            .expect("the refused event fails the reconcile through `?`");
        assert_eq!(error.kind(), ErrorKind::Terminal);
        assert!(outcome.events().is_empty());
        assert_eq!(outcome.rejected_events().len(), 1);
        assert_eq!(outcome.rejected_events()[0].event.reason, "not synced");
    }

    #[test]
    fn undeclared_kind_is_forbidden() {
        let outcome = TestKit::new().reconcile::<Widgets>(widget(json!({"readSecret": true})));
        let error = outcome.error().unwrap();
        assert!(error.is_terminal());
        assert!(error.message().contains("forbidden"), "{error}");
        assert!(outcome.applied().is_empty());
    }

    #[test]
    fn injected_unavailability_is_a_transient_error() {
        let mut kit = TestKit::new();
        kit.client().fail_next(
            Operation::Apply,
            ClientError::Unavailable("connection refused".into()),
        );
        let outcome = kit.reconcile::<Widgets>(widget(json!({})));
        assert_eq!(outcome.error().map(Error::kind), Some(ErrorKind::Transient));
        assert!(outcome.applied().is_empty());
    }

    #[test]
    fn objects_given_up_front_are_visible() {
        let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w", "namespace": "ns"}});
        let outcome = TestKit::new()
            .with_object(config_map)
            .reconcile::<Widgets>(widget(json!({})));
        assert_eq!(outcome.applied()[0]["data"]["existed"], "true");
    }
}
