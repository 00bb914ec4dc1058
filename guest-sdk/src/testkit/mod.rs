//! Runs a [`Reconciler`] natively, against fakes that check what the host checks.
//!
//! The [`TestKit`] holds a [`FakeClient`] store across reconciles; each
//! [`reconcile`](TestKit::reconcile) returns an [`Outcome`] with the result and everything
//! that call did: which of `reconcile` or `cleanup` ran ([`Called`]), the finalizer added or
//! removed, events recorded (and refused), objects applied and deleted, status patches, log
//! lines, and the object as it ends up.
//!
//! ```
//! use serde_json::json;
//! use wasm_reconciler_sdk::testkit::{Called, RecordedEvent, TestKit};
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
//! assert_eq!(outcome.called(), Called::Reconcile);
//! assert!(outcome.result().is_ok());
//! assert_eq!(outcome.events(), [RecordedEvent::normal("Greeted", "Hello, world")]);
//! assert_eq!(outcome.status(), Some(&json!({"greeted": true})));
//! ```
//!
//! # What is checked like the host
//!
//! - The plugin's [`Metadata`](crate::Metadata) is [validated](crate::Metadata::validate).
//! - Which call runs, and the finalizer: see [`TestKit::reconcile`].
//! - Event reasons and annotations: a refused event returns the host's [`EventError`] to
//!   the reconciler and shows up in [`Outcome::rejected_events`], not in
//!   [`Outcome::events`]. Long messages are truncated as the host truncates them.
//! - Client calls: declared kinds, object names, selectors, and control for `delete`; see
//!   [`FakeClient`], which also says what the fakes do not model.
//! - Requeues for changes to owned and watched objects: [`TestKit::requests_for`].
//!
//! # Time
//!
//! While the kit runs a call, [`clock::now`] (and so
//! [`set_condition`](crate::conditions::set_condition)) returns the kit's time, which starts at
//! 2026-01-01T00:00:00Z and moves only when the test says so ([`TestKit::set_now`],
//! [`TestKit::advance`]).
//!
//! [`EventError`]: crate::EventError

mod client;
mod fakes;
mod watch;

use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

pub use client::{FakeClient, ObjectKey, Operation};
pub use fakes::{FakeLog, FakeRecorder, LogLine, RecordedEvent, RejectedEvent};

use crate::{Context, Error, Gvk, Reconciler, Response, clock};

/// Where the kit's clock starts: 2026-01-01T00:00:00Z, in seconds since the Unix epoch.
const START_SECONDS: u64 = 1_767_225_600;

/// Runs reconcilers natively over a [`FakeClient`] store that persists across calls, so a
/// test can reconcile, look, and reconcile again, like the host does.
#[derive(Debug, Clone)]
pub struct TestKit {
    client: FakeClient,
    now: SystemTime,
}

/// Which of the plugin's functions a [`TestKit::reconcile`] called, as the host would have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Called {
    /// [`Reconciler::reconcile`].
    Reconcile,
    /// [`Reconciler::cleanup`]: the object is being deleted or left the plugin's scope, and
    /// carries its finalizer.
    Cleanup,
    /// Neither: the host would not call the plugin for this object.
    Nothing,
}

impl Default for TestKit {
    fn default() -> Self {
        Self {
            client: FakeClient::default(),
            now: UNIX_EPOCH + Duration::from_secs(START_SECONDS),
        }
    }
}

impl TestKit {
    /// A kit with an empty store, its clock at 2026-01-01T00:00:00Z.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores an object (an owned child, something the plugin reads or watches, another
    /// object of the reconciled kind) before reconciling.
    ///
    /// # Panics
    ///
    /// As for [`FakeClient::insert`].
    #[must_use]
    pub fn with_object(self, object: impl Serialize) -> Self {
        self.client.insert(object);
        self
    }

    /// The same kit, its clock at `now`.
    #[must_use]
    pub fn with_now(mut self, now: SystemTime) -> Self {
        self.now = now;
        self
    }

    /// The time [`clock::now`] returns during the kit's calls.
    pub fn now(&self) -> SystemTime {
        self.now
    }

    /// Sets the kit's clock.
    pub fn set_now(&mut self, now: SystemTime) {
        self.now = now;
    }

    /// Moves the kit's clock forward by `by`.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// The store, to add, inspect or remove objects between reconciles, or to
    /// [inject failures](FakeClient::fail_next).
    pub fn client(&self) -> &FakeClient {
        &self.client
    }

    /// Hands `object` to `R` as the host would, and reports what happened.
    ///
    /// `object` is stored as the reconciled object first (replacing any earlier version), so
    /// the plugin can `get` it and patch its status. A missing `apiVersion` or `kind` is
    /// filled in from `R`'s metadata, and a missing `metadata.uid` with the stored object's
    /// or, for a new object, `uid-of-<namespace>/<name>`, so that owner references match
    /// from one call to the next.
    ///
    /// Then, like the host:
    ///
    /// - An object outside the declared [namespaces](crate::Metadata::namespaces) is not
    ///   handed to the plugin: [`Called::Nothing`].
    /// - An object being deleted (`metadata.deletionTimestamp` set), or whose labels do not
    ///   match the [selector](crate::Metadata::selector) (it left the plugin's scope), is
    ///   never reconciled. If it carries the plugin's [finalizer](crate::Metadata::finalizer),
    ///   [`cleanup`](Reconciler::cleanup) runs ([`Called::Cleanup`]); when it succeeds, the
    ///   finalizer (only the plugin's) is removed ([`Outcome::finalizer_removed`]), and a
    ///   deleting object left with no finalizers is removed from the store, as the API server
    ///   deletes it. When it fails, the finalizer stays. Without the finalizer, nothing runs.
    /// - Otherwise [`reconcile`](Reconciler::reconcile) runs ([`Called::Reconcile`]). With a
    ///   finalizer declared that the object does not carry yet, it is added to
    ///   `metadata.finalizers` first ([`Outcome::finalizer_added`]), and `reconcile` gets the
    ///   object with it.
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
        if request.uid().is_none() {
            let uid = self.stored_uid(&kind, request.namespace(), request.name());
            if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("uid".to_owned(), Value::String(uid));
            }
        }

        let in_namespaces = metadata.in_namespaces(request.namespace());
        let in_selector = metadata
            .label_selector()
            .is_none_or(|selector| selector.matches(&request.labels()));
        let finalizer = metadata.finalizer_name().map(str::to_owned);
        let carries_finalizer = finalizer
            .as_deref()
            .is_some_and(|f| request.finalizers().contains(&f));
        let called = if !in_namespaces {
            Called::Nothing
        } else if request.is_being_deleted() || !in_selector {
            if carries_finalizer {
                Called::Cleanup
            } else {
                Called::Nothing
            }
        } else {
            Called::Reconcile
        };

        self.client.scope_to(metadata);
        self.client.set_reconciled(&object);
        let finalizer_added = match &finalizer {
            Some(finalizer) if called == Called::Reconcile && !carries_finalizer => {
                self.client
                    .update_reconciled(|object| add_finalizer(object, finalizer));
                true
            }
            _ => false,
        };
        let recorder = FakeRecorder::new();
        let log = FakeLog::new();
        let before = self.client.counts();
        let ctx = Context::new(
            Rc::new(recorder.clone()),
            Rc::new(self.client.clone()),
            Rc::new(log.clone()),
        );
        let handed = self.client.reconciled().unwrap_or(object);

        let result = {
            let _pin = clock::pin(self.now);
            match called {
                Called::Reconcile => crate::guest::run::<R>(&ctx, handed.to_string()),
                Called::Cleanup => crate::guest::run_cleanup::<R>(&ctx, handed.to_string())
                    .map(|()| Response::await_change()),
                Called::Nothing => Ok(Response::await_change()),
            }
        };

        let finalizer_removed = match &finalizer {
            Some(finalizer) if called == Called::Cleanup && result.is_ok() => {
                self.client
                    .update_reconciled(|object| remove_finalizer(object, finalizer));
                true
            }
            _ => false,
        };
        let object = self.client.reconciled().unwrap_or(handed);
        let no_finalizers_left = object
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if finalizer_removed && request.is_being_deleted() && no_finalizers_left {
            self.client.remove_reconciled();
        }

        Outcome {
            called,
            result,
            finalizer_added,
            finalizer_removed,
            events: recorder.events(),
            rejected_events: recorder.rejected(),
            applied: since(self.client.applied(), before.applied),
            deleted: since(self.client.deleted(), before.deleted),
            status_patches: since(self.client.status_patches(), before.status_patches),
            logs: log.lines(),
            object,
        }
    }

    /// The reconciled objects the host would requeue for a change to `object`, an object of
    /// a kind `R` owns or watches; sorted, without duplicates.
    ///
    /// The host's rules:
    ///
    /// - For an owned kind: the owner named by the object's controller owner reference (one
    ///   with `controller: true`) of the reconciled kind.
    /// - For a watched kind, by its [`WatchMapping`](crate::WatchMapping):
    ///   - `OwnerReferences`: every owner reference whose `apiVersion`'s group and whose kind
    ///     are the reconciled kind's (the version is ignored), by name, in the object's
    ///     namespace;
    ///   - `Label(key)`: the object named by that label's value, in the object's namespace;
    ///     none when the label is absent or its value is not a valid object name;
    ///   - `SameNamespace`: every object of the reconciled kind in the store that is in the
    ///     plugin's scope (selector and namespaces), in the object's namespace (all of them
    ///     when the object is cluster-scoped).
    ///
    /// For the first two the keys are the host's requeue keys, whether or not the store holds
    /// such an object. An object outside the plugin's [namespaces](crate::Metadata::namespaces)
    /// requeues nothing, and so does one of a kind `R` neither owns nor watches.
    ///
    /// ```
    /// use serde_json::json;
    /// use wasm_reconciler_sdk::testkit::{ObjectKey, TestKit};
    /// # use wasm_reconciler_sdk::{Context, Error, Gvk, Metadata, Reconciler, Request, Response, WatchMapping};
    /// # struct Apps;
    /// # impl Reconciler for Apps {
    /// #     fn metadata() -> Metadata {
    /// #         Metadata::new("apps", Gvk::new("example.com", "v1", "App"))
    /// #             .watches(Gvk::new("", "v1", "Secret"), WatchMapping::Label("example.com/app".into()))
    /// #     }
    /// #     fn reconcile(_: &Context, _: Request) -> Result<Response, Error> { Ok(Response::await_change()) }
    /// # }
    ///
    /// let secret = json!({
    ///     "apiVersion": "v1", "kind": "Secret",
    ///     "metadata": {"name": "db", "namespace": "shop", "labels": {"example.com/app": "web"}},
    /// });
    /// assert_eq!(TestKit::new().requests_for::<Apps>(secret), [ObjectKey::namespaced("shop", "web")]);
    /// ```
    ///
    /// # Panics
    ///
    /// If `R::metadata()` is invalid, or `object` is not a JSON object with string
    /// `apiVersion`, `kind` and `metadata.name`.
    pub fn requests_for<R: Reconciler>(&self, object: impl Serialize) -> Vec<ObjectKey> {
        let metadata = R::metadata();
        if let Err(error) = metadata.validate() {
            panic!("the plugin's metadata is invalid: {error}");
        }
        let object = serde_json::to_value(object)
            .unwrap_or_else(|e| panic!("cannot serialize the object: {e}"));
        let (kind, _, _) = client::key_of(&object)
            .unwrap_or_else(|problem| panic!("cannot map {object}: {problem}"));
        let reconciled = self.client.objects_of(metadata.reconciled_kind());
        watch::requests_for(&metadata, &kind, &object, &reconciled)
    }

    /// The uid of the stored object of this kind, namespace and name, or one made up from
    /// its namespace and name.
    fn stored_uid(&self, kind: &Gvk, namespace: Option<&str>, name: &str) -> String {
        self.client
            .object_in(kind, namespace, name)
            .and_then(|stored| Some(stored.pointer("/metadata/uid")?.as_str()?.to_owned()))
            .unwrap_or_else(|| match namespace {
                Some(namespace) => format!("uid-of-{namespace}/{name}"),
                None => format!("uid-of-{name}"),
            })
    }
}

/// The entries of `all` after the first `from`: what one call added.
fn since<T>(mut all: Vec<T>, from: usize) -> Vec<T> {
    all.split_off(from.min(all.len()))
}

/// Appends `finalizer` to `metadata.finalizers`, as the host's patch does.
fn add_finalizer(object: &mut Value, finalizer: &str) {
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let finalizers = meta
        .entry("finalizers")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !finalizers.is_array() {
        *finalizers = Value::Array(Vec::new());
    }
    if let Value::Array(names) = finalizers {
        names.push(Value::String(finalizer.to_owned()));
    }
}

/// Removes `finalizer`, and only it, from `metadata.finalizers`.
fn remove_finalizer(object: &mut Value, finalizer: &str) {
    if let Some(Value::Array(names)) = object.pointer_mut("/metadata/finalizers") {
        names.retain(|name| name != finalizer);
    }
}

/// What one [`TestKit::reconcile`] did.
#[derive(Debug, Clone)]
#[must_use]
pub struct Outcome {
    called: Called,
    result: Result<Response, Error>,
    finalizer_added: bool,
    finalizer_removed: bool,
    events: Vec<RecordedEvent>,
    rejected_events: Vec<RejectedEvent>,
    applied: Vec<Value>,
    deleted: Vec<(Gvk, String)>,
    status_patches: Vec<Value>,
    logs: Vec<LogLine>,
    object: Value,
}

impl Outcome {
    /// Which function ran: `reconcile`, `cleanup`, or neither.
    pub fn called(&self) -> Called {
        self.called
    }

    /// What the call returned: `reconcile`'s result; for `cleanup`,
    /// `Ok(Response::await_change())` on success or its error; for [`Called::Nothing`],
    /// `Ok(Response::await_change())`.
    pub fn result(&self) -> &Result<Response, Error> {
        &self.result
    }

    /// What the call returned, by value.
    pub fn into_result(self) -> Result<Response, Error> {
        self.result
    }

    /// The response, if the call succeeded.
    pub fn response(&self) -> Option<&Response> {
        self.result.as_ref().ok()
    }

    /// The error, if the call failed.
    pub fn error(&self) -> Option<&Error> {
        self.result.as_ref().err()
    }

    /// Whether the kit added the plugin's finalizer to the object before `reconcile`.
    pub fn finalizer_added(&self) -> bool {
        self.finalizer_added
    }

    /// Whether the kit removed the plugin's finalizer after a successful `cleanup`.
    pub fn finalizer_removed(&self) -> bool {
        self.finalizer_removed
    }

    /// The events the host would have posted, in order.
    pub fn events(&self) -> &[RecordedEvent] {
        &self.events
    }

    /// The events the host would have refused, with the error the plugin got.
    pub fn rejected_events(&self) -> &[RejectedEvent] {
        &self.rejected_events
    }

    /// The objects applied, as the plugin sent them.
    pub fn applied(&self) -> &[Value] {
        &self.applied
    }

    /// The objects deleted, as kind and name.
    pub fn deleted(&self) -> &[(Gvk, String)] {
        &self.deleted
    }

    /// The status patches, as the plugin sent them.
    pub fn status_patches(&self) -> &[Value] {
        &self.status_patches
    }

    /// The log lines written.
    pub fn logs(&self) -> &[LogLine] {
        &self.logs
    }

    /// The reconciled object after the call: status patches merged in, the finalizer added
    /// or removed. Also when the store no longer holds it (deleted once its last finalizer
    /// was removed).
    pub fn object(&self) -> &Value {
        &self.object
    }

    /// The reconciled object's `status` after the call, if it has one.
    pub fn status(&self) -> Option<&Value> {
        self.object.get("status")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::conditions::set_condition;
    use crate::testkit::client::merge_patch;
    use crate::{
        ClientError, Condition, ConditionStatus, ErrorKind, EventType, LabelSelector, Metadata,
        Propagation, Request, WatchMapping, eventf,
    };

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

    const GUARD: &str = "example.com/guard";

    /// Declares a finalizer, a selector and namespaces. Reconcile records the finalizers it
    /// sees and sets a `Ready` condition from `spec.ready`; cleanup deletes the ConfigMap
    /// of the same name, or fails when `spec.failCleanup` is set.
    struct Guarded;

    impl Reconciler for Guarded {
        fn metadata() -> Metadata {
            Metadata::new("guarded", WIDGET)
                .owns(CONFIG_MAP)
                .selector(LabelSelector::new().match_label("managed", "true"))
                .namespaces(["ns", "other"])
                .finalizer(GUARD)
        }

        fn reconcile(ctx: &Context, request: Request) -> Result<Response, Error> {
            eventf!(
                ctx.recorder(),
                Normal,
                "Reconciled",
                "finalizers {:?}",
                request.finalizers()
            )?;
            ctx.client().apply(&json!({
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": request.name()},
            }))?;
            let mut conditions: Vec<Condition> =
                serde_json::from_value(request.object_value()["status"]["conditions"].clone())
                    .unwrap_or_default();
            let status = if request.object_value()["spec"]["ready"] == false {
                ConditionStatus::False
            } else {
                ConditionStatus::True
            };
            if set_condition(
                &mut conditions,
                Condition::new("Ready", status, "Checked", ""),
            ) {
                ctx.client()
                    .patch_status(&json!({"conditions": conditions}))?;
            }
            Ok(Response::await_change())
        }

        fn cleanup(ctx: &Context, request: Request) -> Result<(), Error> {
            if request.object_value()["spec"]["failCleanup"] == true {
                return Err(Error::transient("the external resource is still there"));
            }
            if ctx
                .client()
                .delete(&CONFIG_MAP, request.name(), Propagation::Background)?
            {
                eventf!(
                    ctx.recorder(),
                    Normal,
                    "CleanedUp",
                    "deleted {}",
                    request.name()
                )?;
            }
            Ok(())
        }
    }

    fn guarded(extra: Value) -> Value {
        let mut object = json!({
            "metadata": {"name": "g", "namespace": "ns", "labels": {"managed": "true"}},
            "spec": {},
        });
        merge_patch(&mut object, &extra);
        object
    }

    fn finalizers(outcome: &Outcome) -> Value {
        outcome.object()["metadata"]["finalizers"].clone()
    }

    #[test]
    fn finalizer_is_added_before_the_first_reconcile_and_only_once() {
        let mut kit = TestKit::new();
        let first = kit.reconcile::<Guarded>(guarded(json!({})));
        assert_eq!(first.called(), Called::Reconcile);
        assert!(first.finalizer_added());
        assert_eq!(
            first.events(),
            [RecordedEvent::normal(
                "Reconciled",
                format!("finalizers [{GUARD:?}]")
            )]
        );
        assert_eq!(finalizers(&first), json!([GUARD]));

        let second = kit.reconcile::<Guarded>(first.object().clone());
        assert_eq!(second.called(), Called::Reconcile);
        assert!(!second.finalizer_added());
        assert_eq!(finalizers(&second), json!([GUARD]));
    }

    #[test]
    fn finalizer_is_added_after_those_of_others() {
        let outcome = TestKit::new().reconcile::<Guarded>(guarded(
            json!({"metadata": {"finalizers": ["other.io/keep"]}}),
        ));
        assert_eq!(finalizers(&outcome), json!(["other.io/keep", GUARD]));
    }

    #[test]
    fn deleting_object_gets_cleanup_and_loses_only_our_finalizer() {
        let mut kit = TestKit::new();
        let created = kit.reconcile::<Guarded>(guarded(json!({})));
        let mut deleting = created.object().clone();
        merge_patch(
            &mut deleting,
            &json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z",
                                 "finalizers": ["other.io/keep", GUARD]}}),
        );

        let outcome = kit.reconcile::<Guarded>(deleting);
        assert_eq!(outcome.called(), Called::Cleanup);
        assert!(outcome.result().is_ok());
        assert!(outcome.finalizer_removed());
        assert_eq!(outcome.deleted(), [(CONFIG_MAP, "g".to_owned())]);
        assert_eq!(
            outcome.events(),
            [RecordedEvent::normal("CleanedUp", "deleted g")]
        );
        assert_eq!(finalizers(&outcome), json!(["other.io/keep"]));
        // Another finalizer holds the object: it is still there.
        assert!(kit.client().reconciled().is_some());
    }

    #[test]
    fn deleting_object_goes_once_its_last_finalizer_is_removed() {
        let mut kit = TestKit::new();
        let created = kit.reconcile::<Guarded>(guarded(json!({})));
        let mut deleting = created.object().clone();
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");

        let outcome = kit.reconcile::<Guarded>(deleting);
        assert!(outcome.finalizer_removed());
        assert_eq!(finalizers(&outcome), json!([]));
        assert_eq!(kit.client().reconciled(), None);
    }

    #[test]
    fn failed_cleanup_keeps_the_finalizer() {
        let outcome = TestKit::new().reconcile::<Guarded>(guarded(json!({
            "metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": [GUARD]},
            "spec": {"failCleanup": true},
        })));
        assert_eq!(outcome.called(), Called::Cleanup);
        assert_eq!(outcome.error().map(Error::kind), Some(ErrorKind::Transient));
        assert!(!outcome.finalizer_removed());
        assert_eq!(finalizers(&outcome), json!([GUARD]));
    }

    #[test]
    fn deleting_object_without_the_finalizer_calls_nothing() {
        let deleting = json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}});
        let outcome = TestKit::new().reconcile::<Guarded>(guarded(deleting.clone()));
        assert_eq!(outcome.called(), Called::Nothing);
        assert!(outcome.result().is_ok());
        assert!(!outcome.finalizer_added() && !outcome.finalizer_removed());

        // Without a finalizer declared, the host skips deleting objects altogether.
        let mut widget = widget(json!({}));
        merge_patch(&mut widget, &deleting);
        let outcome = TestKit::new().reconcile::<Widgets>(widget);
        assert_eq!(outcome.called(), Called::Nothing);
        assert!(outcome.applied().is_empty() && outcome.events().is_empty());
    }

    #[test]
    fn object_leaving_scope_is_cleaned_up_and_released() {
        let mut kit = TestKit::new();
        let created = kit.reconcile::<Guarded>(guarded(json!({})));
        let mut unlabelled = created.object().clone();
        unlabelled["metadata"]["labels"] = json!({"managed": "false"});

        let outcome = kit.reconcile::<Guarded>(unlabelled.clone());
        assert_eq!(outcome.called(), Called::Cleanup);
        assert!(outcome.finalizer_removed());
        assert_eq!(outcome.deleted(), [(CONFIG_MAP, "g".to_owned())]);
        // Not being deleted: it stays, released.
        assert_eq!(
            kit.client().reconciled().unwrap()["metadata"]["finalizers"],
            json!([])
        );

        // Released, it is out of scope and nothing runs any more.
        let again = kit.reconcile::<Guarded>(outcome.object().clone());
        assert_eq!(again.called(), Called::Nothing);
    }

    #[test]
    fn objects_outside_the_scope_are_not_reconciled() {
        let unmatched =
            TestKit::new().reconcile::<Guarded>(guarded(json!({"metadata": {"labels": null}})));
        assert_eq!(unmatched.called(), Called::Nothing);
        assert!(!unmatched.finalizer_added());

        let elsewhere = TestKit::new()
            .reconcile::<Guarded>(guarded(json!({"metadata": {"namespace": "third"}})));
        assert_eq!(elsewhere.called(), Called::Nothing);
        assert!(elsewhere.applied().is_empty());

        let listed = TestKit::new()
            .reconcile::<Guarded>(guarded(json!({"metadata": {"namespace": "other"}})));
        assert_eq!(listed.called(), Called::Reconcile);
    }

    #[test]
    fn missing_uids_are_filled_in_and_kept() {
        let mut kit = TestKit::new();
        let first = kit.reconcile::<Guarded>(guarded(json!({})));
        assert_eq!(first.object()["metadata"]["uid"], "uid-of-ns/g");
        // The applied ConfigMap is controlled by that uid, so cleanup may delete it even when
        // the test hands over the object without a uid.
        let mut deleting = guarded(json!({"metadata": {"finalizers": [GUARD]}}));
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        let cleanup = kit.reconcile::<Guarded>(deleting);
        assert_eq!(cleanup.deleted().len(), 1, "{:?}", cleanup.error());
    }

    #[test]
    fn the_clock_is_the_kits_during_a_call() {
        let mut kit = TestKit::new();
        let first = kit.reconcile::<Guarded>(guarded(json!({})));
        assert_eq!(
            first.status().unwrap()["conditions"][0]["lastTransitionTime"],
            "2026-01-01T00:00:00Z"
        );

        kit.advance(Duration::from_secs(90));
        let mut not_ready = first.object().clone();
        not_ready["spec"]["ready"] = json!(false);
        let second = kit.reconcile::<Guarded>(not_ready);
        assert_eq!(
            second.status().unwrap()["conditions"][0]["lastTransitionTime"],
            "2026-01-01T00:01:30Z"
        );
        assert_eq!(
            kit.now(),
            UNIX_EPOCH + Duration::from_secs(START_SECONDS + 90)
        );
    }

    const POD: Gvk = Gvk::from_static("", "v1", "Pod");
    const SERVICE: Gvk = Gvk::from_static("", "v1", "Service");
    const NODE: Gvk = Gvk::from_static("", "v1", "Node");

    /// Owns ConfigMaps and watches a kind per mapping.
    struct Watcher;

    impl Reconciler for Watcher {
        fn metadata() -> Metadata {
            Metadata::new("watcher", WIDGET)
                .owns(CONFIG_MAP)
                .watches(SECRET, WatchMapping::Label("example.com/widget".into()))
                .watches(POD, WatchMapping::OwnerReferences)
                .watches(SERVICE, WatchMapping::SameNamespace)
                .watches(NODE, WatchMapping::SameNamespace)
                .selector(LabelSelector::new().does_not_exist("ignore"))
                .namespaces(["ns", "other"])
        }

        fn reconcile(_: &Context, _: Request) -> Result<Response, Error> {
            Ok(Response::await_change())
        }
    }

    fn object(kind: &Gvk, namespace: Option<&str>, name: &str, metadata: Value) -> Value {
        let mut object = json!({"apiVersion": kind.api_version(), "kind": kind.kind(),
                                "metadata": {"name": name}});
        if let Some(namespace) = namespace {
            object["metadata"]["namespace"] = json!(namespace);
        }
        merge_patch(&mut object["metadata"], &metadata);
        object
    }

    fn owner(api_version: &str, kind: &str, name: &str, controller: bool) -> Value {
        json!({"apiVersion": api_version, "kind": kind, "name": name, "uid": format!("u-{name}"),
               "controller": controller})
    }

    #[test]
    fn owned_objects_requeue_their_controller_of_the_reconciled_kind() {
        let config_map = object(
            &CONFIG_MAP,
            Some("ns"),
            "c",
            json!({"ownerReferences": [
                owner("example.com/v1", "Widget", "a", false),
                owner("example.com/v1", "Widget", "b", true),
                owner("apps/v1", "Deployment", "d", true),
            ]}),
        );
        assert_eq!(
            TestKit::new().requests_for::<Watcher>(config_map),
            [ObjectKey::namespaced("ns", "b")]
        );
    }

    #[test]
    fn owner_reference_mapping_takes_every_owner_of_the_group_and_kind() {
        let pod = object(
            &POD,
            Some("ns"),
            "p",
            json!({"ownerReferences": [
                owner("example.com/v2", "Widget", "b", false),
                owner("example.com/v1", "Widget", "a", true),
                owner("example.com/v1", "Widget", "a", false),
                owner("other.com/v1", "Widget", "x", false),
                owner("example.com/v1", "Gadget", "y", false),
            ]}),
        );
        assert_eq!(
            TestKit::new().requests_for::<Watcher>(pod),
            [
                ObjectKey::namespaced("ns", "a"),
                ObjectKey::namespaced("ns", "b")
            ]
        );
    }

    #[test]
    fn label_mapping_names_one_object_when_the_value_is_a_name() {
        let kit = TestKit::new();
        let secret = |labels: Value| object(&SECRET, Some("ns"), "s", json!({"labels": labels}));
        assert_eq!(
            kit.requests_for::<Watcher>(secret(json!({"example.com/widget": "w1"}))),
            [ObjectKey::namespaced("ns", "w1")]
        );
        assert!(kit.requests_for::<Watcher>(secret(json!({}))).is_empty());
        assert!(
            kit.requests_for::<Watcher>(secret(json!({"example.com/widget": ""})))
                .is_empty()
        );
        assert!(
            kit.requests_for::<Watcher>(secret(json!({"example.com/widget": ".."})))
                .is_empty()
        );
    }

    #[test]
    fn same_namespace_mapping_takes_stored_objects_in_scope() {
        let widget = |namespace: &str, name: &str, labels: Value| {
            object(&WIDGET, Some(namespace), name, json!({"labels": labels}))
        };
        let kit = TestKit::new()
            .with_object(widget("ns", "b", json!({})))
            .with_object(widget("ns", "a", json!({})))
            .with_object(widget("ns", "ignored", json!({"ignore": "yes"})))
            .with_object(widget("other", "c", json!({})))
            .with_object(widget("third", "d", json!({})));

        let service = object(&SERVICE, Some("ns"), "svc", json!({}));
        assert_eq!(
            kit.requests_for::<Watcher>(service),
            [
                ObjectKey::namespaced("ns", "a"),
                ObjectKey::namespaced("ns", "b")
            ]
        );
        // A cluster-scoped watched object requeues every reconciled object in scope.
        let node = object(&NODE, None, "n", json!({}));
        assert_eq!(
            kit.requests_for::<Watcher>(node),
            [
                ObjectKey::namespaced("ns", "a"),
                ObjectKey::namespaced("ns", "b"),
                ObjectKey::namespaced("other", "c"),
            ]
        );
    }

    #[test]
    fn objects_outside_the_namespaces_or_of_other_kinds_requeue_nothing() {
        let kit = TestKit::new();
        let secret = object(
            &SECRET,
            Some("third"),
            "s",
            json!({"labels": {"example.com/widget": "w"}}),
        );
        assert!(kit.requests_for::<Watcher>(secret).is_empty());
        let deployment = object(
            &Gvk::new("apps", "v1", "Deployment"),
            Some("ns"),
            "d",
            json!({"ownerReferences": [owner("example.com/v1", "Widget", "w", true)]}),
        );
        assert!(kit.requests_for::<Watcher>(deployment).is_empty());
    }
}
