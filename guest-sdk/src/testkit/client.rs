//! An in-memory object store that answers client calls with the host's checks.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::names::validate_object_name;
use crate::{ClientError, Gvk, LabelSelector, Metadata, ObjectClient, Propagation};

/// A client call, for [`FakeClient::fail_next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// [`Client::get`](crate::Client::get) and `get_raw`.
    Get,
    /// [`Client::get_live`](crate::Client::get_live) and `get_live_raw`.
    GetLive,
    /// [`Client::list`](crate::Client::list) and `list_raw`.
    List,
    /// [`Client::apply`](crate::Client::apply) and `apply_raw`.
    Apply,
    /// [`Client::delete`](crate::Client::delete).
    Delete,
    /// [`Client::patch_status`](crate::Client::patch_status) and `patch_status_raw`.
    PatchStatus,
}

/// Where an object is: its namespace (`None` for a cluster-scoped object) and name.
///
/// [`TestKit::requests_for`](super::TestKit::requests_for) answers with these; they sort by
/// namespace, then name, cluster-scoped objects first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The namespace; `None` for a cluster-scoped object.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl ObjectKey {
    /// The key of a namespaced object.
    pub fn namespaced(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }

    /// The key of a cluster-scoped object.
    pub fn cluster_scoped(name: impl Into<String>) -> Self {
        Self {
            namespace: None,
            name: name.into(),
        }
    }
}

/// `namespace/name`, or `name` alone when cluster-scoped, like `kubectl` and controller-runtime.
impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{namespace}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// An [`ObjectClient`] over objects in memory, keyed by kind, namespace and name, that
/// enforces what the host enforces.
///
/// An object without `metadata.namespace` is taken as cluster-scoped: `get` finds it from
/// any namespace and `list` includes it. Every other object is in its namespace, and the
/// calls see only the reconciled object's.
///
/// Once [scoped](FakeClient::scoped_to) to a plugin's [`Metadata`] (the
/// [`TestKit`](super::TestKit) does this), it refuses what the host refuses:
///
/// - `get`, `get_live` and `list` only on the reconciled kind and owned, read or watched
///   kinds; `apply` and `delete` only on owned kinds ([`ClientError::Forbidden`]);
/// - names that are empty, `.`, `..`, longer than 253 bytes, or contain anything but ASCII
///   letters, digits and `-._:@+~` ([`ClientError::Invalid`]), in every call that takes one;
/// - a selector that [`LabelSelector::validate`] refuses ([`ClientError::Invalid`]);
/// - `delete` of an object that has no owner reference with `controller: true` to the
///   reconciled object's uid ([`ClientError::Forbidden`]).
///
/// `apply` stores the object with the reconciled object's namespace and a controller owner
/// reference to it, as the host does; `patch_status` merges into the reconciled object's
/// status as a JSON merge patch; `list` returns objects sorted by namespace and name.
/// Objects are returned without `metadata.managedFields`. Clones share one store.
///
/// # Caveats
///
/// `apply` replaces the stored object (keeping its `status`) rather than merging field
/// ownership as server-side apply does; there is no API-server validation or defaulting;
/// `get` and `get_live` read the same store, so the cache never lags; and nothing acts on a
/// deletion: no garbage collection of dependents, whatever the [`Propagation`].
#[derive(Debug, Clone, Default)]
pub struct FakeClient {
    state: Rc<RefCell<ClientState>>,
}

/// The store key of an object: its kind, namespace (`None` when cluster-scoped) and name.
type StoreKey = (Gvk, Option<String>, String);

#[derive(Debug, Default)]
struct ClientState {
    objects: BTreeMap<StoreKey, Value>,
    metadata: Option<Metadata>,
    reconciled: Option<StoreKey>,
    applied: Vec<Value>,
    status_patches: Vec<Value>,
    deleted: Vec<(Gvk, String)>,
    failures: Vec<(Operation, ClientError)>,
}

/// How many writes the store had recorded at one point, to tell one reconcile's apart.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    pub(crate) applied: usize,
    pub(crate) status_patches: usize,
    pub(crate) deleted: usize,
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

    /// Stores an object, replacing one of the same kind, namespace and name.
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
    /// owner, `delete` checks control against its uid, and its namespace is the one every
    /// call sees.
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

    /// The stored object of this kind and name as `get` finds it: in the reconciled object's
    /// namespace, or cluster-scoped.
    pub fn object(&self, kind: &Gvk, name: &str) -> Option<Value> {
        let state = self.state.borrow();
        let key = state.find(kind, name)?;
        state.objects.get(&key).cloned()
    }

    /// The stored object of this kind in `namespace` (`None` for cluster-scoped) with this
    /// name, if any.
    pub fn object_in(&self, kind: &Gvk, namespace: Option<&str>, name: &str) -> Option<Value> {
        self.state
            .borrow()
            .objects
            .get(&(kind.clone(), namespace.map(str::to_owned), name.to_owned()))
            .cloned()
    }

    /// The object being reconciled, as stored now (with status patches merged in); `None`
    /// before the first reconcile, or once it is gone.
    pub fn reconciled(&self) -> Option<Value> {
        let state = self.state.borrow();
        state
            .reconciled
            .as_ref()
            .and_then(|key| state.objects.get(key))
            .cloned()
    }

    /// Removes and returns the stored object of this kind and name, found as
    /// [`FakeClient::object`] finds it.
    pub fn remove(&self, kind: &Gvk, name: &str) -> Option<Value> {
        let mut state = self.state.borrow_mut();
        let key = state.find(kind, name)?;
        state.objects.remove(&key)
    }

    /// Every stored object, ordered by kind, namespace and name.
    pub fn objects(&self) -> Vec<Value> {
        self.state.borrow().objects.values().cloned().collect()
    }

    /// Every stored object of `kind`, in every namespace, ordered by namespace and name.
    pub fn objects_of(&self, kind: &Gvk) -> Vec<Value> {
        self.state
            .borrow()
            .objects
            .iter()
            .filter(|((k, _, _), _)| k == kind)
            .map(|(_, object)| object.clone())
            .collect()
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

    /// Every object deleted so far, as kind and name, oldest first. Refused deletes and
    /// deletes of missing objects are not included.
    pub fn deleted(&self) -> Vec<(Gvk, String)> {
        self.state.borrow().deleted.clone()
    }

    /// Makes the next call of `operation` fail with `error`, e.g. to test how a reconciler
    /// handles an unavailable API server. Failures queue up in order.
    pub fn fail_next(&self, operation: Operation, error: ClientError) {
        self.state.borrow_mut().failures.push((operation, error));
    }

    pub(crate) fn counts(&self) -> Counts {
        let state = self.state.borrow();
        Counts {
            applied: state.applied.len(),
            status_patches: state.status_patches.len(),
            deleted: state.deleted.len(),
        }
    }

    /// Changes the stored reconciled object in place; nothing if there is none.
    pub(crate) fn update_reconciled(&self, change: impl FnOnce(&mut Value)) {
        let mut state = self.state.borrow_mut();
        let ClientState {
            objects,
            reconciled,
            ..
        } = &mut *state;
        if let Some(object) = reconciled.as_ref().and_then(|key| objects.get_mut(key)) {
            change(object);
        }
    }

    /// Removes the reconciled object from the store, as the API server deletes an object
    /// whose last finalizer is gone.
    pub(crate) fn remove_reconciled(&self) {
        let mut state = self.state.borrow_mut();
        if let Some(key) = state.reconciled.clone() {
            state.objects.remove(&key);
        }
    }
}

impl ClientState {
    fn take_failure(&mut self, operation: Operation) -> Result<(), ClientError> {
        match self.failures.iter().position(|(op, _)| *op == operation) {
            Some(index) => Err(self.failures.remove(index).1),
            None => Ok(()),
        }
    }

    fn reconciled_object(&self) -> Option<&Value> {
        self.objects.get(self.reconciled.as_ref()?)
    }

    /// The reconciled object's namespace; `None` when it is cluster-scoped or there is none.
    fn namespace(&self) -> Option<String> {
        self.reconciled.as_ref()?.1.clone()
    }

    /// The key under which a call finds `kind` `name`: in the reconciled object's namespace,
    /// else cluster-scoped.
    fn find(&self, kind: &Gvk, name: &str) -> Option<StoreKey> {
        let namespaced = (kind.clone(), self.namespace(), name.to_owned());
        let cluster_scoped = (kind.clone(), None, name.to_owned());
        [namespaced, cluster_scoped]
            .into_iter()
            .find(|key| self.objects.contains_key(key))
    }

    fn check(
        &self,
        allowed: fn(&Metadata, &Gvk) -> bool,
        kind: &Gvk,
        what: &str,
    ) -> Result<(), ClientError> {
        match &self.metadata {
            Some(metadata) if !allowed(metadata, kind) => Err(ClientError::Forbidden(format!(
                "{kind} is not {what} in the plugin's metadata"
            ))),
            _ => Ok(()),
        }
    }

    fn read(
        &mut self,
        operation: Operation,
        kind: &Gvk,
        name: &str,
    ) -> Result<Option<String>, ClientError> {
        self.take_failure(operation)?;
        self.check(
            Metadata::may_get,
            kind,
            "declared (reconciled, owned, read or watched)",
        )?;
        validate_object_name(name).map_err(ClientError::Invalid)?;
        Ok(self
            .find(kind, name)
            .and_then(|key| self.objects.get(&key))
            .map(|object| without_managed_fields(object).to_string()))
    }

    fn owner_reference(&self) -> Option<Value> {
        let object = self.reconciled_object()?;
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
        self.state.borrow_mut().read(Operation::Get, kind, name)
    }

    fn get_live(&self, kind: &Gvk, name: &str) -> Result<Option<String>, ClientError> {
        self.state.borrow_mut().read(Operation::GetLive, kind, name)
    }

    fn list(
        &self,
        kind: &Gvk,
        selector: Option<&LabelSelector>,
    ) -> Result<Vec<String>, ClientError> {
        let mut state = self.state.borrow_mut();
        state.take_failure(Operation::List)?;
        state.check(
            Metadata::may_list,
            kind,
            "declared (reconciled, owned, read or watched)",
        )?;
        if let Some(selector) = selector {
            selector
                .validate()
                .map_err(|e| ClientError::Invalid(e.to_string()))?;
        }
        let namespace = state.namespace();
        // The store's order is kind, namespace, name: sorted by namespace and name already.
        Ok(state
            .objects
            .iter()
            .filter(|((k, ns, _), _)| k == kind && (ns.is_none() || *ns == namespace))
            .filter(|(_, object)| {
                selector.is_none_or(|s| s.matches(&crate::selector::labels_of(object)))
            })
            .map(|(_, object)| without_managed_fields(object).to_string())
            .collect())
    }

    fn apply(&self, object: &str) -> Result<String, ClientError> {
        let mut state = self.state.borrow_mut();
        state.take_failure(Operation::Apply)?;
        let sent: Value =
            serde_json::from_str(object).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let (kind, requested, name) = key_of(&sent).map_err(ClientError::Invalid)?;
        state.check(
            Metadata::may_apply,
            &kind,
            "owned; declare it with Metadata::owns",
        )?;
        validate_object_name(&name).map_err(ClientError::Invalid)?;
        let namespace = state.namespace();
        if let (Some(requested), Some(namespace)) = (&requested, &namespace)
            && requested != namespace
        {
            return Err(ClientError::Forbidden(format!(
                "namespace {requested:?} is outside the reconciled object's namespace {namespace:?}"
            )));
        }

        let key = (kind, namespace.clone().or(requested), name);
        let mut stored = sent.clone();
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

    fn delete(
        &self,
        kind: &Gvk,
        name: &str,
        propagation: Propagation,
    ) -> Result<bool, ClientError> {
        let _ = propagation;
        let mut state = self.state.borrow_mut();
        state.take_failure(Operation::Delete)?;
        state.check(
            Metadata::may_delete,
            kind,
            "owned; declare it with Metadata::owns",
        )?;
        validate_object_name(name).map_err(ClientError::Invalid)?;
        let Some(key) = state.find(kind, name) else {
            return Ok(false);
        };
        let owner_uid = state
            .reconciled_object()
            .and_then(|object| object.pointer("/metadata/uid"))
            .and_then(Value::as_str);
        let controlled = owner_uid.is_some_and(|uid| {
            state
                .objects
                .get(&key)
                .is_some_and(|object| is_controlled_by(object, uid))
        });
        if !controlled {
            return Err(ClientError::Forbidden(format!(
                "{kind} {name:?} is not controlled by the reconciled object (no owner reference \
                 with controller: true to its uid)"
            )));
        }
        state.objects.remove(&key);
        state.deleted.push((key.0, key.2));
        Ok(true)
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

/// Whether `object` has an owner reference with `controller: true` and this uid.
pub(crate) fn is_controlled_by(object: &Value, uid: &str) -> bool {
    owner_references(object)
        .any(|reference| reference["controller"] == true && reference["uid"].as_str() == Some(uid))
}

/// The entries of `metadata.ownerReferences`.
pub(crate) fn owner_references(object: &Value) -> impl Iterator<Item = &Value> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The object as the host hands it over: without `metadata.managedFields`.
fn without_managed_fields(object: &Value) -> std::borrow::Cow<'_, Value> {
    if object.pointer("/metadata/managedFields").is_none() {
        return std::borrow::Cow::Borrowed(object);
    }
    let mut object = object.clone();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    std::borrow::Cow::Owned(object)
}

/// The store key of an object: its kind, namespace and name.
pub(crate) fn key_of(object: &Value) -> Result<StoreKey, String> {
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
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok((kind, namespace, field("/metadata/name")?.to_owned()))
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
        client.insert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}, "status": {"x": 1}}));

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

    const OWNER: Gvk = Gvk::from_static("example.com", "v1", "Owner");
    const CM: Gvk = Gvk::from_static("", "v1", "ConfigMap");
    const NODE: Gvk = Gvk::from_static("", "v1", "Node");

    /// A client scoped to a plugin that owns ConfigMaps and reads Nodes, reconciling the
    /// owner `o` in `ns` with uid `u-1`.
    fn scoped() -> FakeClient {
        let client = FakeClient::new().scoped_to(Metadata::new("p", OWNER).owns(CM).reads(NODE));
        client.set_reconciled(json!({
            "apiVersion": "example.com/v1", "kind": "Owner",
            "metadata": {"name": "o", "namespace": "ns", "uid": "u-1"},
        }));
        client
    }

    fn config_map(namespace: &str, name: &str, labels: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": namespace, "labels": labels}})
    }

    fn names(listed: &[String]) -> Vec<String> {
        listed
            .iter()
            .map(|json| {
                let object: Value = serde_json::from_str(json).unwrap();
                ObjectKey {
                    namespace: object["metadata"]["namespace"].as_str().map(str::to_owned),
                    name: object["metadata"]["name"].as_str().unwrap().to_owned(),
                }
                .to_string()
            })
            .collect()
    }

    #[test]
    fn names_are_checked_like_the_host_checks_them_before_any_request() {
        let client = scoped();
        for bad in ["", ".", "..", "x/scale", "x%2Fscale", &"a".repeat(254)] {
            assert!(
                matches!(client.get(&CM, bad), Err(ClientError::Invalid(_))),
                "{bad:?}"
            );
            assert!(
                matches!(client.get_live(&CM, bad), Err(ClientError::Invalid(_))),
                "{bad:?}"
            );
            assert!(
                matches!(
                    client.delete(&CM, bad, Propagation::Background),
                    Err(ClientError::Invalid(_))
                ),
                "{bad:?}"
            );
            let object =
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": bad}});
            assert!(
                matches!(
                    client.apply(&object.to_string()),
                    Err(ClientError::Invalid(_))
                ),
                "{bad:?}"
            );
        }
        assert_eq!(client.get(&CM, "system:a@b+c~d"), Ok(None));
    }

    #[test]
    fn reads_see_the_reconciled_namespace_and_cluster_scoped_objects() {
        let client = scoped();
        client.insert(config_map("ns", "here", json!({})));
        client.insert(config_map("other", "there", json!({})));
        client.insert(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}));

        assert!(client.get(&CM, "here").unwrap().is_some());
        assert!(client.get_live(&CM, "here").unwrap().is_some());
        assert_eq!(client.get(&CM, "there"), Ok(None));
        assert!(client.get(&NODE, "n1").unwrap().is_some());
        assert_eq!(client.object(&CM, "there"), None);
        assert!(client.object_in(&CM, Some("other"), "there").is_some());
    }

    #[test]
    fn managed_fields_are_left_out_of_what_reads_return() {
        let client = scoped();
        let mut object = config_map("ns", "c", json!({"a": "b"}));
        object["metadata"]["managedFields"] = json!([{"manager": "kubectl"}]);
        client.insert(object);

        let got: Value = serde_json::from_str(&client.get(&CM, "c").unwrap().unwrap()).unwrap();
        assert!(got["metadata"].get("managedFields").is_none());
        let listed: Value = serde_json::from_str(&client.list(&CM, None).unwrap()[0]).unwrap();
        assert!(listed["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn list_filters_by_namespace_and_selector_and_sorts() {
        let client = scoped();
        client.insert(config_map("ns", "b", json!({"app": "web"})));
        client.insert(config_map("ns", "a", json!({"app": "web", "tier": "edge"})));
        client.insert(config_map("ns", "c", json!({"app": "db"})));
        client.insert(config_map("other", "d", json!({"app": "web"})));
        client.insert(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"}}));
        client.insert(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}));

        assert_eq!(
            names(&client.list(&CM, None).unwrap()),
            ["ns/a", "ns/b", "ns/c"]
        );
        let web = LabelSelector::new().match_label("app", "web");
        assert_eq!(
            names(&client.list(&CM, Some(&web)).unwrap()),
            ["ns/a", "ns/b"]
        );
        let not_edge = web.clone().does_not_exist("tier");
        assert_eq!(names(&client.list(&CM, Some(&not_edge)).unwrap()), ["ns/b"]);
        assert_eq!(names(&client.list(&NODE, None).unwrap()), ["n1", "n2"]);
    }

    #[test]
    fn list_refuses_undeclared_kinds_and_invalid_selectors() {
        let client = scoped();
        assert!(matches!(
            client.list(&Gvk::new("", "v1", "Secret"), None),
            Err(ClientError::Forbidden(_))
        ));
        let bad = LabelSelector::new().key_in("app", Vec::<String>::new());
        assert!(matches!(
            client.list(&CM, Some(&bad)),
            Err(ClientError::Invalid(_))
        ));
        client.fail_next(Operation::List, ClientError::Unavailable("down".into()));
        assert!(matches!(
            client.list(&CM, None),
            Err(ClientError::Unavailable(_))
        ));
    }

    #[test]
    fn delete_removes_a_controlled_object_and_records_it() {
        let client = scoped();
        let applied =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mine"}});
        client.apply(&applied.to_string()).unwrap();

        assert_eq!(
            client.delete(&CM, "mine", Propagation::Foreground),
            Ok(true)
        );
        assert_eq!(client.object(&CM, "mine"), None);
        assert_eq!(client.deleted(), [(CM, "mine".to_owned())]);
        assert_eq!(
            client.delete(&CM, "mine", Propagation::Background),
            Ok(false)
        );
        assert_eq!(client.deleted().len(), 1);
    }

    #[test]
    fn delete_refuses_objects_the_reconciled_object_does_not_control() {
        let client = scoped();
        let mut foreign = config_map("ns", "foreign", json!({}));
        foreign["metadata"]["ownerReferences"] = json!([{"apiVersion": "example.com/v1", "kind": "Owner", "name": "x", "uid": "u-2", "controller": true}]);
        client.insert(foreign);
        let mut not_controller = config_map("ns", "shared", json!({}));
        not_controller["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "example.com/v1", "kind": "Owner", "name": "o", "uid": "u-1"}]);
        client.insert(not_controller);
        client.insert(config_map("ns", "orphan", json!({})));

        for name in ["foreign", "shared", "orphan"] {
            let error = client
                .delete(&CM, name, Propagation::Background)
                .unwrap_err();
            assert!(
                matches!(&error, ClientError::Forbidden(m) if m.contains("not controlled by the reconciled object")),
                "{name}: {error}"
            );
            assert!(client.object(&CM, name).is_some());
        }
        assert!(matches!(
            client.delete(&NODE, "n", Propagation::Background),
            Err(ClientError::Forbidden(_))
        ));
        assert!(client.deleted().is_empty());
    }
}
