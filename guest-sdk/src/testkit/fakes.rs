//! Fake capabilities that record what a reconciler did and refuse what the host refuses.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::recorder::{truncate_message, validate_annotations, validate_reason};
use crate::{
    ClientError, Event, EventError, EventSink, EventType, Gvk, Level, LogSink, Metadata,
    ObjectClient,
};

/// An event a [`FakeRecorder`] accepted, as the host would post it (the message truncated
/// like the host truncates it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Normal or Warning.
    pub event_type: EventType,
    /// The reason.
    pub reason: String,
    /// The message, truncated as the host would.
    pub message: String,
    /// The annotations, in the order given; empty for a plain event.
    pub annotations: Vec<(String, String)>,
}

impl RecordedEvent {
    /// A `Normal` event without annotations, for comparing in tests.
    pub fn normal(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(EventType::Normal, reason, message)
    }

    /// A `Warning` event without annotations, for comparing in tests.
    pub fn warning(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(EventType::Warning, reason, message)
    }

    /// An event without annotations.
    pub fn new(
        event_type: EventType,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            event_type,
            reason: reason.into(),
            message: message.into(),
            annotations: Vec::new(),
        }
    }

    /// The same event with one more annotation.
    #[must_use]
    pub fn with_annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.push((key.into(), value.into()));
        self
    }
}

/// An event a [`FakeRecorder`] refused, and why: what the host would have refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedEvent {
    /// The event as the reconciler tried to record it.
    pub event: RecordedEvent,
    /// The error the reconciler got back.
    pub error: EventError,
}

/// An [`EventSink`] that keeps events in memory, after checking them with the host's rules
/// (reason UpperCamelCase of 1-128 characters, valid annotation keys). Clones share one
/// record.
#[derive(Debug, Clone, Default)]
pub struct FakeRecorder {
    state: Rc<RefCell<RecorderState>>,
}

#[derive(Debug, Default)]
struct RecorderState {
    events: Vec<RecordedEvent>,
    rejected: Vec<RejectedEvent>,
}

impl FakeRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events accepted so far, oldest first.
    pub fn events(&self) -> Vec<RecordedEvent> {
        self.state.borrow().events.clone()
    }

    /// The events refused so far, oldest first.
    pub fn rejected(&self) -> Vec<RejectedEvent> {
        self.state.borrow().rejected.clone()
    }
}

impl EventSink for FakeRecorder {
    fn record(&self, event: &Event<'_>) -> Result<(), EventError> {
        let checked =
            validate_reason(event.reason).and_then(|()| validate_annotations(event.annotations));
        let mut state = self.state.borrow_mut();
        let mut recorded = RecordedEvent {
            event_type: event.event_type,
            reason: event.reason.to_owned(),
            message: event.message.to_owned(),
            annotations: event.annotations.to_vec(),
        };
        match checked {
            Ok(()) => {
                recorded.message = truncate_message(event.message).into_owned();
                state.events.push(recorded);
                Ok(())
            }
            Err(error) => {
                state.rejected.push(RejectedEvent {
                    event: recorded,
                    error: error.clone(),
                });
                Err(error)
            }
        }
    }
}

/// A line written through a [`FakeLog`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The level.
    pub level: Level,
    /// The message.
    pub message: String,
}

/// A [`LogSink`] that keeps lines in memory and also prints them to stderr, where the test
/// harness shows them for failed tests. Clones share one record.
#[derive(Debug, Clone, Default)]
pub struct FakeLog {
    lines: Rc<RefCell<Vec<LogLine>>>,
}

impl FakeLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// The lines written so far, oldest first.
    pub fn lines(&self) -> Vec<LogLine> {
        self.lines.borrow().clone()
    }
}

impl LogSink for FakeLog {
    fn log(&self, level: Level, message: &str) {
        eprintln!("[plugin {level}] {message}");
        self.lines.borrow_mut().push(LogLine {
            level,
            message: message.to_owned(),
        });
    }
}

/// A client call, for [`FakeClient::fail_next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// [`Client::get`](crate::Client::get) and `get_raw`.
    Get,
    /// [`Client::apply`](crate::Client::apply) and `apply_raw`.
    Apply,
    /// [`Client::patch_status`](crate::Client::patch_status) and `patch_status_raw`.
    PatchStatus,
}

/// An [`ObjectClient`] over objects in memory, keyed by kind and name, that enforces what
/// the host enforces.
///
/// Once [scoped](FakeClient::scoped_to) to a plugin's [`Metadata`] (the
/// [`TestKit`](super::TestKit) does this), `get` on an undeclared kind and `apply` on a kind
/// the plugin does not own fail with [`ClientError::Forbidden`], like the host. `apply`
/// stores the object with the reconciled object's namespace and a controller owner
/// reference to it, as the host does; `patch_status` merges into the reconciled object's
/// status as a JSON merge patch. Clones share one store.
///
/// # Caveats
///
/// `apply` replaces the stored object (keeping its `status`) rather than merging field
/// ownership as server-side apply does, there is no API-server validation or defaulting,
/// and every object lives in one namespace.
#[derive(Debug, Clone, Default)]
pub struct FakeClient {
    state: Rc<RefCell<ClientState>>,
}

#[derive(Debug, Default)]
struct ClientState {
    objects: BTreeMap<(Gvk, String), Value>,
    metadata: Option<Metadata>,
    reconciled: Option<(Gvk, String)>,
    applied: Vec<Value>,
    status_patches: Vec<Value>,
    failures: Vec<(Operation, ClientError)>,
}

impl FakeClient {
    /// An empty store that allows every kind, until [scoped](FakeClient::scoped_to).
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows from now on only what `metadata` declares, as the host does.
    pub fn scope_to(&self, metadata: Metadata) {
        self.state.borrow_mut().metadata = Some(metadata);
    }

    /// The same client, [scoped](FakeClient::scope_to) to `metadata`.
    #[must_use]
    pub fn scoped_to(self, metadata: Metadata) -> Self {
        self.scope_to(metadata);
        self
    }

    /// Stores an object, replacing one of the same kind and name.
    ///
    /// # Panics
    ///
    /// If `object` is not a JSON object with string `apiVersion`, `kind` and
    /// `metadata.name`: a mistake in the test itself.
    pub fn insert(&self, object: impl Serialize) {
        let object = serde_json::to_value(object)
            .unwrap_or_else(|e| panic!("cannot serialize the object: {e}"));
        let key =
            key_of(&object).unwrap_or_else(|problem| panic!("cannot insert {object}: {problem}"));
        self.state.borrow_mut().objects.insert(key, object);
    }

    /// Stores the object being reconciled: `patch_status` patches it, `apply` makes it the
    /// owner, and its namespace is the namespace of every object.
    ///
    /// # Panics
    ///
    /// As for [`FakeClient::insert`].
    pub fn set_reconciled(&self, object: impl Serialize) {
        let object = serde_json::to_value(object)
            .unwrap_or_else(|e| panic!("cannot serialize the object: {e}"));
        let key = key_of(&object)
            .unwrap_or_else(|problem| panic!("cannot reconcile {object}: {problem}"));
        let mut state = self.state.borrow_mut();
        state.objects.insert(key.clone(), object);
        state.reconciled = Some(key);
    }

    /// The stored object of this kind and name, if any.
    pub fn object(&self, kind: &Gvk, name: &str) -> Option<Value> {
        self.state
            .borrow()
            .objects
            .get(&(kind.clone(), name.to_owned()))
            .cloned()
    }

    /// The object being reconciled, as stored now (with status patches merged in).
    pub fn reconciled(&self) -> Option<Value> {
        let state = self.state.borrow();
        state
            .reconciled
            .as_ref()
            .and_then(|key| state.objects.get(key))
            .cloned()
    }

    /// Removes and returns the stored object of this kind and name, if any.
    pub fn remove(&self, kind: &Gvk, name: &str) -> Option<Value> {
        self.state
            .borrow_mut()
            .objects
            .remove(&(kind.clone(), name.to_owned()))
    }

    /// Every stored object, ordered by kind and name.
    pub fn objects(&self) -> Vec<Value> {
        self.state.borrow().objects.values().cloned().collect()
    }

    /// Every object applied so far, as the reconciler sent it, oldest first. Refused
    /// applies are not included.
    pub fn applied(&self) -> Vec<Value> {
        self.state.borrow().applied.clone()
    }

    /// Every status patch so far, as the reconciler sent it, oldest first.
    pub fn status_patches(&self) -> Vec<Value> {
        self.state.borrow().status_patches.clone()
    }

    /// Makes the next call of `operation` fail with `error`, e.g. to test how a reconciler
    /// handles an unavailable API server. Failures queue up in order.
    pub fn fail_next(&self, operation: Operation, error: ClientError) {
        self.state.borrow_mut().failures.push((operation, error));
    }

    pub(crate) fn counts(&self) -> (usize, usize) {
        let state = self.state.borrow();
        (state.applied.len(), state.status_patches.len())
    }
}

impl ClientState {
    fn take_failure(&mut self, operation: Operation) -> Result<(), ClientError> {
        match self.failures.iter().position(|(op, _)| *op == operation) {
            Some(index) => Err(self.failures.remove(index).1),
            None => Ok(()),
        }
    }

    fn namespace(&self) -> Option<String> {
        let object = self.objects.get(self.reconciled.as_ref()?)?;
        object
            .pointer("/metadata/namespace")?
            .as_str()
            .map(str::to_owned)
    }

    fn owner_reference(&self) -> Option<Value> {
        let object = self.objects.get(self.reconciled.as_ref()?)?;
        let field = |pointer| object.pointer(pointer).cloned().unwrap_or(Value::Null);
        Some(json!({
            "apiVersion": field("/apiVersion"),
            "kind": field("/kind"),
            "name": field("/metadata/name"),
            "uid": field("/metadata/uid"),
            "controller": true,
            "blockOwnerDeletion": true,
        }))
    }
}

impl ObjectClient for FakeClient {
    fn get(&self, kind: &Gvk, name: &str) -> Result<Option<String>, ClientError> {
        let mut state = self.state.borrow_mut();
        state.take_failure(Operation::Get)?;
        if let Some(metadata) = &state.metadata
            && !metadata.may_get(kind)
        {
            return Err(ClientError::Forbidden(format!(
                "{kind} is not declared in the plugin's metadata (reconciles, owns or reads)"
            )));
        }
        Ok(state
            .objects
            .get(&(kind.clone(), name.to_owned()))
            .map(Value::to_string))
    }

    fn apply(&self, object: &str) -> Result<String, ClientError> {
        let mut state = self.state.borrow_mut();
        state.take_failure(Operation::Apply)?;
        let sent: Value =
            serde_json::from_str(object).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let (kind, name) = key_of(&sent).map_err(ClientError::Invalid)?;
        if let Some(metadata) = &state.metadata
            && !metadata.may_apply(&kind)
        {
            return Err(ClientError::Forbidden(format!(
                "{kind} is not owned by the plugin; declare it with Metadata::owns"
            )));
        }
        let namespace = state.namespace();
        let requested = sent.pointer("/metadata/namespace").and_then(Value::as_str);
        if let (Some(requested), Some(namespace)) = (requested, &namespace)
            && requested != namespace
        {
            return Err(ClientError::Forbidden(format!(
                "namespace {requested:?} is outside the reconciled object's namespace {namespace:?}"
            )));
        }

        let mut stored = sent.clone();
        let key = (kind, name);
        if let Some(fields) = stored.as_object_mut() {
            // Apply to the main resource never writes status: keep what is there.
            fields.remove("status");
            if let Some(status) = state.objects.get(&key).and_then(|old| old.get("status")) {
                fields.insert("status".to_owned(), status.clone());
            }
        }
        if let Some(meta) = stored.get_mut("metadata").and_then(Value::as_object_mut) {
            if let Some(namespace) = namespace {
                meta.insert("namespace".to_owned(), Value::String(namespace));
            }
            if let Some(owner) = state.owner_reference() {
                meta.insert("ownerReferences".to_owned(), Value::Array(vec![owner]));
            }
        }
        state.applied.push(sent);
        state.objects.insert(key, stored.clone());
        Ok(stored.to_string())
    }

    fn patch_status(&self, status: &str) -> Result<String, ClientError> {
        let mut state = self.state.borrow_mut();
        state.take_failure(Operation::PatchStatus)?;
        let patch: Value =
            serde_json::from_str(status).map_err(|e| ClientError::Invalid(e.to_string()))?;
        if !patch.is_object() {
            return Err(ClientError::Invalid(format!(
                "the status patch must be a JSON object, not {patch}"
            )));
        }
        let key = state.reconciled.clone().ok_or_else(|| {
            ClientError::Invalid("there is no reconciled object to patch".to_owned())
        })?;
        state.status_patches.push(patch.clone());
        let object = state
            .objects
            .entry(key)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(fields) = object.as_object_mut() {
            merge_patch(fields.entry("status").or_insert(Value::Null), &patch);
        }
        Ok(object.to_string())
    }
}

/// The store key of an object: its kind and name.
fn key_of(object: &Value) -> Result<(Gvk, String), String> {
    let field = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                format!(
                    "the object has no string {}",
                    &pointer[1..].replace('/', ".")
                )
            })
    };
    let kind = Gvk::from_api_version(field("/apiVersion")?, field("/kind")?);
    Ok((kind, field("/metadata/name")?.to_owned()))
}

/// Applies a JSON merge patch (RFC 7386) to `target`.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(fields) = target {
        for (key, value) in patch {
            if value.is_null() {
                fields.remove(key);
            } else {
                merge_patch(fields.entry(key.as_str()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        // The examples of RFC 7386, section 3, that cover objects, nulls and arrays.
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (mut target, patch, expected) in cases {
            merge_patch(&mut target, &patch);
            assert_eq!(target, expected, "patch {patch}");
        }
    }

    #[test]
    fn recorder_refuses_what_the_host_refuses_and_keeps_it_apart() {
        let recorder = FakeRecorder::new();
        let ok = Event {
            event_type: EventType::Normal,
            reason: "Created",
            message: "m",
            annotations: &[],
        };
        let bad = Event {
            reason: "created",
            ..ok
        };
        assert_eq!(recorder.record(&ok), Ok(()));
        assert!(matches!(
            recorder.record(&bad),
            Err(EventError::InvalidReason(_))
        ));
        assert_eq!(recorder.events(), [RecordedEvent::normal("Created", "m")]);
        assert_eq!(recorder.rejected().len(), 1);
        assert_eq!(recorder.rejected()[0].event.reason, "created");
    }

    #[test]
    fn scoped_client_enforces_declared_kinds() {
        let owner = Gvk::new("example.com", "v1", "Owner");
        let deployment = Gvk::new("apps", "v1", "Deployment");
        let client = FakeClient::new()
            .scoped_to(Metadata::new("p", owner.clone()).reads(deployment.clone()));
        client.set_reconciled(
            json!({"apiVersion": "example.com/v1", "kind": "Owner", "metadata": {"name": "o"}}),
        );

        assert!(client.get(&deployment, "d").unwrap().is_none());
        assert!(client.get(&owner, "o").unwrap().is_some());
        assert!(matches!(
            client.get(&Gvk::new("", "v1", "Secret"), "s"),
            Err(ClientError::Forbidden(_))
        ));
        let read_only =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}});
        assert!(matches!(
            client.apply(&read_only.to_string()),
            Err(ClientError::Forbidden(_))
        ));
        assert!(client.applied().is_empty());
    }

    #[test]
    fn apply_sets_namespace_and_owner_and_keeps_status() {
        let owner = Gvk::new("example.com", "v1", "Owner");
        let cm = Gvk::new("", "v1", "ConfigMap");
        let client = FakeClient::new().scoped_to(Metadata::new("p", owner).owns(cm.clone()));
        client.set_reconciled(json!({
            "apiVersion": "example.com/v1", "kind": "Owner",
            "metadata": {"name": "o", "namespace": "ns", "uid": "u-1"},
        }));
        client.insert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "status": {"x": 1}}));

        let sent = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}});
        let stored: Value =
            serde_json::from_str(&client.apply(&sent.to_string()).unwrap()).unwrap();
        assert_eq!(stored["metadata"]["namespace"], "ns");
        assert_eq!(stored["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert_eq!(stored["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(stored["status"], json!({"x": 1}));
        assert_eq!(client.object(&cm, "c"), Some(stored));
        assert_eq!(client.applied(), [sent]);

        let elsewhere = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "other"}});
        assert!(matches!(
            client.apply(&elsewhere.to_string()),
            Err(ClientError::Forbidden(_))
        ));
        assert!(matches!(client.apply("{}"), Err(ClientError::Invalid(_))));
    }

    #[test]
    fn patch_status_merges_into_the_reconciled_object() {
        let client = FakeClient::new();
        client.set_reconciled(json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"}, "status": {"a": 1, "b": 2}}));
        client.patch_status(r#"{"b": null, "c": 3}"#).unwrap();
        assert_eq!(
            client.reconciled().unwrap()["status"],
            json!({"a": 1, "c": 3})
        );
        assert!(matches!(
            client.patch_status("[1]"),
            Err(ClientError::Invalid(_))
        ));
        assert_eq!(client.status_patches(), [json!({"b": null, "c": 3})]);
    }

    #[test]
    fn injected_failures_hit_the_next_matching_call_once() {
        let client = FakeClient::new();
        client.fail_next(Operation::Get, ClientError::Unavailable("down".into()));
        let kind = Gvk::new("", "v1", "ConfigMap");
        assert!(
            client
                .patch_status("{}")
                .is_err_and(|e| matches!(e, ClientError::Invalid(_)))
        );
        assert_eq!(
            client.get(&kind, "c"),
            Err(ClientError::Unavailable("down".into()))
        );
        assert_eq!(client.get(&kind, "c"), Ok(None));
    }
}
