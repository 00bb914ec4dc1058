//! An API server in memory for `reconcile`: it serves the seeded objects to GETs and lists
//! (with label selectors), takes server-side applies, status merge patches, deletes (with a
//! uid precondition) and Events, remembers every call, and answers anything else with an
//! error rather than pretending.
//!
//! It speaks HTTP to the host's real client ([`client`] wraps it in a `kube::Client`), so that
//! the host's own checks, URLs and payloads are what it sees. It does not emulate field
//! ownership (an apply replaces the stored object but keeps its status), validation,
//! defaulting, admission, conversion between versions, or other controllers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use http::{Method, StatusCode};
use kube::api::GroupVersionKind;
use serde_json::{Map, Value, json};

use crate::kinds::ResolvedKind;

/// The group and resource of events the recorder writes.
const EVENTS_GROUP: &str = "events.k8s.io";
const EVENTS: &str = "events";

/// Where an object is stored: its resource, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ObjectKey {
    pub(crate) group: String,
    pub(crate) version: String,
    pub(crate) plural: String,
    pub(crate) namespace: Option<String>,
    pub(crate) name: String,
}

/// A call the plugin's client made, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Call {
    /// A GET of one object.
    Get {
        /// The kind, when it is one the API knows.
        kind: Option<GroupVersionKind>,
        key: ObjectKey,
        found: bool,
    },
    /// A server-side apply, with the object as the host sent it.
    Apply { key: ObjectKey, object: Value },
    /// A merge patch of a status subresource: the `status` part of the patch.
    StatusPatch { key: ObjectKey, status: Value },
    /// A list of a collection (`key.name` is empty), with its label selector.
    List {
        kind: Option<GroupVersionKind>,
        key: ObjectKey,
        selector: String,
        found: usize,
    },
    /// A delete of one object.
    Delete {
        kind: Option<GroupVersionKind>,
        key: ObjectKey,
        found: bool,
    },
}

/// An object given to [`FakeApi::seed`] twice.
#[derive(Debug, thiserror::Error)]
#[error("{resource} {name:?} is given twice{}", in_namespace(.namespace))]
pub(crate) struct Duplicate {
    resource: String,
    namespace: Option<String>,
    name: String,
}

fn in_namespace(namespace: &Option<String>) -> String {
    namespace
        .as_ref()
        .map(|namespace| format!(" in namespace {namespace}"))
        .unwrap_or_default()
}

/// An HTTP answer: status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

/// The in-memory API server's state.
#[derive(Debug, Default)]
pub(crate) struct FakeApi {
    /// Kinds by resource, to name what the plugin read.
    kinds: Vec<ResolvedKind>,
    objects: BTreeMap<ObjectKey, Value>,
    /// Events, in the order they were created.
    events: Vec<Value>,
    calls: Vec<Call>,
    /// Last uid and resourceVersion handed out: counters, so that output is reproducible.
    uids: u64,
    resource_version: u64,
}

impl FakeApi {
    /// Makes `kind` known, so that reads of it are named by kind.
    pub(crate) fn know(&mut self, kind: &ResolvedKind) {
        if !self.kinds.iter().any(|known| known.gvk == kind.gvk) {
            self.kinds.push(kind.clone());
        }
    }

    /// Stores `object` of `kind` as the API server would hold it: in `namespace` unless it
    /// names its own (namespaced kinds only), with a uid, a resourceVersion and, unless it
    /// has them, generation 1. Returns the stored object.
    pub(crate) fn seed(
        &mut self,
        kind: &ResolvedKind,
        mut object: Value,
        namespace: &str,
    ) -> Result<Value, Duplicate> {
        self.know(kind);
        let metadata = metadata_of(&mut object);
        if kind.namespaced {
            if !metadata.contains_key("namespace") {
                metadata.insert("namespace".into(), json!(namespace));
            }
        } else {
            metadata.remove("namespace");
        }
        let key = ObjectKey {
            group: kind.gvk.group.clone(),
            version: kind.gvk.version.clone(),
            plural: kind.resource.plural.clone(),
            namespace: metadata
                .get("namespace")
                .and_then(Value::as_str)
                .map(str::to_owned),
            name: metadata
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        };
        if self.objects.contains_key(&key) {
            return Err(Duplicate {
                resource: resource_name(&key),
                namespace: key.namespace,
                name: key.name,
            });
        }
        if !metadata.contains_key("uid") {
            let uid = self.next_uid();
            metadata.insert("uid".into(), json!(uid));
        }
        metadata.entry("generation").or_insert_with(|| json!(1));
        self.resource_version += 1;
        metadata.insert(
            "resourceVersion".into(),
            json!(self.resource_version.to_string()),
        );
        self.objects.insert(key, object.clone());
        Ok(object)
    }

    /// The calls made so far, in order.
    pub(crate) fn calls(&self) -> &[Call] {
        &self.calls
    }

    /// The Events written, as stored (patches applied), in the order they were created.
    pub(crate) fn events(&self) -> &[Value] {
        &self.events
    }

    /// Answers one request.
    pub(crate) fn handle(
        &mut self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Answer {
        let content_type = content_type.unwrap_or_default();
        let unsupported = || {
            status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                format!("the offline API server does not emulate {method} {path}"),
            )
        };
        let Some(target) = parse_path(path) else {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("the offline API server does not serve {path}"),
            );
        };
        let body = if body.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(body) => body,
                Err(error) => {
                    return status(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        format!("the body is not JSON: {error}"),
                    );
                }
            }
        };
        let is_events = |key: &ObjectKey| key.group == EVENTS_GROUP && key.plural == EVENTS;
        match (method, target) {
            (&Method::POST, Target::Collection(key)) if is_events(&key) => self.create_event(body),
            (&Method::PATCH, Target::Object(key, None))
                if is_events(&key) && content_type.starts_with("application/merge-patch") =>
            {
                self.patch_event(&key, &body)
            }
            (&Method::GET, Target::Object(key, None)) => self.get(key),
            (&Method::GET, Target::Collection(key)) if !is_events(&key) => {
                self.list(key, label_selector(query))
            }
            (&Method::DELETE, Target::Object(key, None)) => self.delete(key, &body),
            (&Method::PATCH, Target::Object(key, None))
                if content_type.starts_with("application/apply-patch") =>
            {
                self.apply(key, body)
            }
            (&Method::PATCH, Target::Object(key, Some(subresource)))
                if subresource == "status"
                    && content_type.starts_with("application/merge-patch") =>
            {
                self.patch_status(key, &body)
            }
            _ => unsupported(),
        }
    }

    fn get(&mut self, key: ObjectKey) -> Answer {
        let found = self.objects.get(&key).cloned();
        self.calls.push(Call::Get {
            kind: self.kind_of(&key),
            found: found.is_some(),
            key: key.clone(),
        });
        match found {
            Some(object) => ok(object),
            None => not_found(&key),
        }
    }

    /// The stored objects of `key`'s resource (in its namespace, if it names one) whose
    /// labels match `selector`, in order of namespace and name.
    fn list(&mut self, key: ObjectKey, selector: Result<String, String>) -> Answer {
        let selector_text = match selector {
            Ok(text) => text,
            Err(why) => return status(StatusCode::BAD_REQUEST, "BadRequest", why),
        };
        let selector: crate::selector::LabelSelector = match selector_text.parse() {
            Ok(selector) => selector,
            Err(why) => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("labelSelector {selector_text:?}: {why}"),
                );
            }
        };
        let items: Vec<Value> = self
            .objects
            .iter()
            .filter(|(stored, _)| {
                stored.group == key.group
                    && stored.version == key.version
                    && stored.plural == key.plural
                    && (key.namespace.is_none() || stored.namespace == key.namespace)
            })
            .filter(|(_, object)| {
                let labels: BTreeMap<String, String> = object
                    .pointer("/metadata/labels")
                    .and_then(|labels| serde_json::from_value(labels.clone()).ok())
                    .unwrap_or_default();
                selector.matches(&labels)
            })
            .map(|(_, object)| object.clone())
            .collect();
        self.calls.push(Call::List {
            kind: self.kind_of(&key),
            selector: selector_text,
            found: items.len(),
            key,
        });
        ok(json!({
            "apiVersion": "v1",
            "kind": "List",
            "metadata": {"resourceVersion": self.resource_version.to_string()},
            "items": items,
        }))
    }

    /// Deletes the stored object, if its uid is the one the body's preconditions name.
    fn delete(&mut self, key: ObjectKey, body: &Value) -> Answer {
        let found = self.objects.get(&key).cloned();
        self.calls.push(Call::Delete {
            kind: self.kind_of(&key),
            found: found.is_some(),
            key: key.clone(),
        });
        let Some(object) = found else {
            return not_found(&key);
        };
        if let Some(uid) = body.pointer("/preconditions/uid").and_then(Value::as_str)
            && object.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid)
        {
            return status(
                StatusCode::CONFLICT,
                "Conflict",
                format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    object["metadata"]["uid"]
                ),
            );
        }
        self.objects.remove(&key);
        ok(object)
    }

    /// A server-side apply: the applied object replaces the stored one, keeping its uid and
    /// status; the generation goes up when the spec changes.
    fn apply(&mut self, key: ObjectKey, body: Value) -> Answer {
        if !body.is_object() {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "an applied object must be a JSON object".to_owned(),
            );
        }
        if body["metadata"]["name"].as_str() != Some(key.name.as_str()) {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!(
                    "the name of the object does not match the name in the URL ({})",
                    key.name
                ),
            );
        }
        self.calls.push(Call::Apply {
            key: key.clone(),
            object: body.clone(),
        });
        let existing = self.objects.get(&key);
        let uid = existing.and_then(|object| object["metadata"]["uid"].as_str().map(str::to_owned));
        let generation = match existing {
            None => 1,
            Some(object) => {
                let generation = object["metadata"]["generation"].as_i64().unwrap_or(1);
                if object.get("spec") == body.get("spec") {
                    generation
                } else {
                    generation + 1
                }
            }
        };
        let existing_status = existing.and_then(|object| object.get("status")).cloned();
        let mut stored = body;
        if let Some(status) = existing_status
            && let Some(fields) = stored.as_object_mut()
        {
            fields.insert("status".into(), status);
        }
        let uid = uid.unwrap_or_else(|| self.next_uid());
        self.resource_version += 1;
        let metadata = metadata_of(&mut stored);
        metadata.insert("uid".into(), json!(uid));
        metadata.insert("generation".into(), json!(generation));
        metadata.insert(
            "resourceVersion".into(),
            json!(self.resource_version.to_string()),
        );
        self.objects.insert(key, stored.clone());
        ok(stored)
    }

    /// A JSON merge patch of the status subresource: only `status` changes.
    fn patch_status(&mut self, key: ObjectKey, body: &Value) -> Answer {
        let Some(patch) = body.get("status").filter(|status| status.is_object()) else {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "a status patch must hold a `status` object".to_owned(),
            );
        };
        if !self.objects.contains_key(&key) {
            return not_found(&key);
        }
        self.calls.push(Call::StatusPatch {
            key: key.clone(),
            status: patch.clone(),
        });
        self.resource_version += 1;
        let version = self.resource_version.to_string();
        let Some(stored) = self.objects.get_mut(&key) else {
            return not_found(&key);
        };
        if let Some(fields) = stored.as_object_mut() {
            merge_patch(fields.entry("status").or_insert(Value::Null), patch);
        }
        metadata_of(stored).insert("resourceVersion".into(), json!(version));
        ok(stored.clone())
    }

    fn create_event(&mut self, mut event: Value) -> Answer {
        let name = event["metadata"]["name"].as_str().map(str::to_owned);
        let Some(name) = name else {
            return status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                "an Event needs metadata.name".to_owned(),
            );
        };
        if self
            .events
            .iter()
            .any(|stored| stored["metadata"]["name"].as_str() == Some(name.as_str()))
        {
            return status(
                StatusCode::CONFLICT,
                "AlreadyExists",
                format!("events.events.k8s.io {name:?} already exists"),
            );
        }
        let uid = self.next_uid();
        self.resource_version += 1;
        let metadata = metadata_of(&mut event);
        metadata.insert("uid".into(), json!(uid));
        metadata.insert(
            "resourceVersion".into(),
            json!(self.resource_version.to_string()),
        );
        self.events.push(event.clone());
        Answer {
            status: StatusCode::CREATED,
            body: event,
        }
    }

    fn patch_event(&mut self, key: &ObjectKey, patch: &Value) -> Answer {
        let stored = self
            .events
            .iter_mut()
            .find(|event| event["metadata"]["name"].as_str() == Some(key.name.as_str()));
        match stored {
            Some(event) => {
                merge_patch(event, patch);
                ok(event.clone())
            }
            None => not_found(key),
        }
    }

    fn kind_of(&self, key: &ObjectKey) -> Option<GroupVersionKind> {
        self.kinds
            .iter()
            .find(|kind| {
                kind.gvk.group == key.group
                    && kind.gvk.version == key.version
                    && kind.resource.plural == key.plural
            })
            .map(|kind| kind.gvk.clone())
    }

    fn next_uid(&mut self) -> String {
        self.uids += 1;
        format!("00000000-0000-4000-8000-{:012}", self.uids)
    }
}

/// `object.metadata` as a map, made one if it was missing or not an object.
fn metadata_of(object: &mut Value) -> &mut Map<String, Value> {
    let fields = ensure_object(object);
    ensure_object(fields.entry("metadata").or_insert(Value::Null))
}

/// `value` as a map, replaced by an empty one if it is not an object.
fn ensure_object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => map,
        _ => unreachable!("made an object just above"),
    }
}

/// Applies a JSON merge patch (RFC 7386) to `target`: objects merge key by key, `null`
/// removes a key, anything else replaces.
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
                merge_patch(fields.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A collection (the key's name is empty).
    Collection(ObjectKey),
    /// One object, and maybe one of its subresources.
    Object(ObjectKey, Option<String>),
}

/// The `labelSelector` of a query string, percent-decoded; empty when there is none.
fn label_selector(query: Option<&str>) -> Result<String, String> {
    let Some(query) = query else {
        return Ok(String::new());
    };
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("labelSelector=") {
            return percent_decode(value);
        }
    }
    Ok(String::new())
}

/// `%XX` escapes and `+` (a space, in a query) decoded.
fn percent_decode(text: &str) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        match byte {
            b'%' => {
                let hex = tail
                    .get(..2)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .ok_or_else(|| format!("bad escape in {text:?}"))?;
                bytes.push(hex);
                rest = &tail[2..];
            }
            b'+' => {
                bytes.push(b' ');
                rest = tail;
            }
            _ => {
                bytes.push(byte);
                rest = tail;
            }
        }
    }
    String::from_utf8(bytes).map_err(|_| format!("{text:?} is not UTF-8"))
}

/// Reads `/api/v1/...` and `/apis/<group>/<version>/...` paths, with or without
/// `namespaces/<namespace>/`.
fn parse_path(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        // `namespaces/<name>` alone is the Namespace object itself.
        ["namespaces", namespace, rest @ ..] if !rest.is_empty() => (Some(*namespace), rest),
        _ => (None, rest),
    };
    let key = |plural: &str, name: &str| ObjectKey {
        group: group.to_owned(),
        version: version.to_owned(),
        plural: plural.to_owned(),
        namespace: namespace.map(str::to_owned),
        name: name.to_owned(),
    };
    if rest.iter().any(|segment| segment.is_empty()) {
        return None;
    }
    match rest {
        [plural] => Some(Target::Collection(key(plural, ""))),
        [plural, name] => Some(Target::Object(key(plural, name), None)),
        [plural, name, subresource] => Some(Target::Object(
            key(plural, name),
            Some((*subresource).to_owned()),
        )),
        _ => None,
    }
}

/// `deployments.apps`, or `configmaps` for the core group, as API server messages name it.
fn resource_name(key: &ObjectKey) -> String {
    if key.group.is_empty() {
        key.plural.clone()
    } else {
        format!("{}.{}", key.plural, key.group)
    }
}

fn ok(body: Value) -> Answer {
    Answer {
        status: StatusCode::OK,
        body,
    }
}

fn not_found(key: &ObjectKey) -> Answer {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("{} {:?} not found", resource_name(key), key.name),
    )
}

/// A `Status` answer, as the API server writes its errors.
fn status(code: StatusCode, reason: &str, message: String) -> Answer {
    Answer {
        status: code,
        body: json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code.as_u16(),
        }),
    }
}

/// A `kube::Client` whose every request `api` answers.
pub(crate) fn client(api: Arc<Mutex<FakeApi>>) -> kube::Client {
    use http_body_util::BodyExt as _;
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let api = api.clone();
        async move {
            let (parts, body) = request.into_parts();
            let answer = match body.collect().await {
                Ok(body) => {
                    let content_type = parts
                        .headers
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|value| value.to_str().ok());
                    api.lock().unwrap_or_else(PoisonError::into_inner).handle(
                        &parts.method,
                        parts.uri.path(),
                        parts.uri.query(),
                        content_type,
                        &body.to_bytes(),
                    )
                }
                Err(error) => status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("cannot read the request body: {error}"),
                ),
            };
            let mut response = http::Response::new(kube::client::Body::from(
                answer.body.to_string().into_bytes(),
            ));
            *response.status_mut() = answer.status;
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    kube::Client::new(service, "default")
}

#[cfg(test)]
mod tests {
    use kube::api::ApiResource;

    use super::*;

    fn kind(
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        namespaced: bool,
    ) -> ResolvedKind {
        let gvk = GroupVersionKind::gvk(group, version, kind);
        ResolvedKind {
            resource: ApiResource::from_gvk_with_plural(&gvk, plural),
            gvk,
            namespaced,
        }
    }

    fn deployments() -> ResolvedKind {
        kind("apps", "v1", "Deployment", "deployments", true)
    }

    fn my_resources() -> ResolvedKind {
        kind("example.com", "v1", "MyResource", "myresources", true)
    }

    fn json_body(value: &Value) -> Vec<u8> {
        value.to_string().into_bytes()
    }

    #[test]
    fn seeded_objects_get_a_namespace_uid_resource_version_and_generation() {
        let mut api = FakeApi::default();
        let stored = api
            .seed(
                &my_resources(),
                json!({"apiVersion": "example.com/v1", "kind": "MyResource", "metadata": {"name": "demo"}}),
                "team-a",
            )
            .expect("seeded");
        assert_eq!(
            stored["metadata"],
            json!({
                "name": "demo", "namespace": "team-a", "uid": "00000000-0000-4000-8000-000000000001",
                "generation": 1, "resourceVersion": "1",
            })
        );
        // What the file says is kept; a cluster-scoped object has no namespace.
        let namespace = kind("", "v1", "Namespace", "namespaces", false);
        let stored = api
            .seed(
                &namespace,
                json!({"metadata": {"name": "team-a", "namespace": "x", "uid": "u-1", "generation": 4}}),
                "default",
            )
            .expect("seeded");
        assert_eq!(
            stored["metadata"],
            json!({"name": "team-a", "uid": "u-1", "generation": 4, "resourceVersion": "2"})
        );
        let again = api.seed(
            &namespace,
            json!({"metadata": {"name": "team-a"}}),
            "default",
        );
        assert_eq!(
            again.expect_err("duplicate").to_string(),
            "namespaces \"team-a\" is given twice"
        );
    }

    #[test]
    fn gets_answer_seeded_objects_and_404_otherwise_and_are_recorded() {
        let mut api = FakeApi::default();
        api.know(&deployments());
        api.seed(
            &deployments(),
            json!({"metadata": {"name": "web"}}),
            "default",
        )
        .expect("seeded");
        let found = api.handle(
            &Method::GET,
            "/apis/apps/v1/namespaces/default/deployments/web",
            None,
            None,
            b"",
        );
        assert_eq!(found.status, StatusCode::OK);
        assert_eq!(found.body["metadata"]["name"], "web");
        let missing = api.handle(
            &Method::GET,
            "/apis/apps/v1/namespaces/other/deployments/web",
            None,
            None,
            b"",
        );
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(
            missing.body["message"],
            "deployments.apps \"web\" not found"
        );
        assert_eq!(missing.body["code"], 404);
        let found: Vec<bool> = api
            .calls()
            .iter()
            .map(|call| match call {
                Call::Get { kind, found, .. } => {
                    assert_eq!(kind.as_ref().map(|k| k.kind.as_str()), Some("Deployment"));
                    *found
                }
                other => panic!("not a get: {other:?}"),
            })
            .collect();
        assert_eq!(found, [true, false]);
    }

    #[test]
    fn an_apply_stores_the_object_keeping_uid_and_status_and_echoes_it() {
        let mut api = FakeApi::default();
        api.seed(
            &deployments(),
            json!({"metadata": {"name": "web", "labels": {"old": "x"}}, "spec": {"replicas": 1}, "status": {"readyReplicas": 1}}),
            "default",
        )
        .expect("seeded");
        let applied = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 2},
        });
        let answer = api.handle(
            &Method::PATCH,
            "/apis/apps/v1/namespaces/default/deployments/web",
            None,
            Some("application/apply-patch+yaml"),
            &json_body(&applied),
        );
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            answer.body,
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {
                    "name": "web", "namespace": "default", "uid": "00000000-0000-4000-8000-000000000001",
                    "generation": 2, "resourceVersion": "2",
                },
                "spec": {"replicas": 2},
                "status": {"readyReplicas": 1},
            })
        );
        assert_eq!(
            api.calls().last(),
            Some(&Call::Apply {
                key: ObjectKey {
                    group: "apps".into(),
                    version: "v1".into(),
                    plural: "deployments".into(),
                    namespace: Some("default".into()),
                    name: "web".into(),
                },
                object: applied,
            })
        );
        // A new object starts at generation 1 and is then served to GETs.
        let new = json!({"metadata": {"name": "api"}, "spec": {}});
        let answer = api.handle(
            &Method::PATCH,
            "/apis/apps/v1/namespaces/default/deployments/api",
            None,
            Some("application/apply-patch+yaml"),
            &json_body(&new),
        );
        assert_eq!(answer.body["metadata"]["generation"], 1);
        let got = api.handle(
            &Method::GET,
            "/apis/apps/v1/namespaces/default/deployments/api",
            None,
            None,
            b"",
        );
        assert_eq!(got.status, StatusCode::OK);
    }

    #[test]
    fn an_apply_whose_name_differs_from_the_url_is_refused() {
        let mut api = FakeApi::default();
        let answer = api.handle(
            &Method::PATCH,
            "/apis/apps/v1/namespaces/default/deployments/web",
            None,
            Some("application/apply-patch+yaml"),
            &json_body(&json!({"metadata": {"name": "other"}})),
        );
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert!(api.calls().is_empty());
    }

    #[test]
    fn a_status_patch_merges_into_the_status_only() {
        let mut api = FakeApi::default();
        api.seed(
            &my_resources(),
            json!({"metadata": {"name": "demo"}, "spec": {"a": 1}, "status": {"keep": 1, "drop": 2}}),
            "default",
        )
        .expect("seeded");
        let patch = json!({"status": {"drop": null, "new": {"x": 1}}, "spec": {"a": 2}});
        let answer = api.handle(
            &Method::PATCH,
            "/apis/example.com/v1/namespaces/default/myresources/demo/status",
            None,
            Some("application/merge-patch+json"),
            &json_body(&patch),
        );
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.body["status"], json!({"keep": 1, "new": {"x": 1}}));
        assert_eq!(answer.body["spec"], json!({"a": 1}));
        assert_eq!(answer.body["metadata"]["resourceVersion"], "2");
        assert!(matches!(
            api.calls().last(),
            Some(Call::StatusPatch { status, .. }) if status == &patch["status"]
        ));
        let missing = api.handle(
            &Method::PATCH,
            "/apis/example.com/v1/namespaces/default/myresources/other/status",
            None,
            Some("application/merge-patch+json"),
            &json_body(&patch),
        );
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn events_are_created_in_order_and_their_series_patched() {
        let mut api = FakeApi::default();
        for name in ["demo.1", "demo.2"] {
            let event =
                json!({"metadata": {"name": name, "namespace": "default"}, "reason": "Created"});
            let answer = api.handle(
                &Method::POST,
                "/apis/events.k8s.io/v1/namespaces/default/events",
                None,
                Some("application/json"),
                &json_body(&event),
            );
            assert_eq!(answer.status, StatusCode::CREATED);
        }
        let patch = json!({"series": {"count": 2, "lastObservedTime": "t"}});
        let answer = api.handle(
            &Method::PATCH,
            "/apis/events.k8s.io/v1/namespaces/default/events/demo.1",
            None,
            Some("application/merge-patch+json"),
            &json_body(&patch),
        );
        assert_eq!(answer.status, StatusCode::OK);
        let names: Vec<&str> = api
            .events()
            .iter()
            .filter_map(|event| event["metadata"]["name"].as_str())
            .collect();
        assert_eq!(names, ["demo.1", "demo.2"]);
        assert_eq!(api.events()[0]["series"]["count"], 2);
        assert!(api.calls().is_empty(), "Events are not the plugin's calls");
    }

    #[test]
    fn what_is_not_emulated_is_an_error() {
        let mut api = FakeApi::default();
        let watch = api.handle(
            &Method::POST,
            "/apis/apps/v1/namespaces/default/deployments",
            None,
            None,
            b"{}",
        );
        assert_eq!(watch.status, StatusCode::METHOD_NOT_ALLOWED);
        let discovery = api.handle(&Method::GET, "/apis", None, None, b"");
        assert_eq!(discovery.status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn lists_filter_by_namespace_and_label_selector_and_deletes_check_the_uid() {
        let mut api = FakeApi::default();
        let config_maps = kind("", "v1", "ConfigMap", "configmaps", true);
        for (name, labels) in [("a", json!({"app": "x"})), ("b", json!({"app": "y"}))] {
            api.seed(
                &config_maps,
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "labels": labels}}),
                "default",
            )
            .expect("seed");
        }
        let list = api.handle(
            &Method::GET,
            "/api/v1/namespaces/default/configmaps",
            Some("labelSelector=app%3Dx"),
            None,
            b"",
        );
        assert_eq!(list.status, StatusCode::OK);
        let names: Vec<&str> = list.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|item| item["metadata"]["name"].as_str())
            .collect();
        assert_eq!(names, ["a"]);
        let elsewhere = api.handle(
            &Method::GET,
            "/api/v1/namespaces/other/configmaps",
            None,
            None,
            b"",
        );
        assert_eq!(elsewhere.body["items"], json!([]));

        let wrong_uid = api.handle(
            &Method::DELETE,
            "/api/v1/namespaces/default/configmaps/a",
            None,
            None,
            br#"{"preconditions": {"uid": "not-its-uid"}}"#,
        );
        assert_eq!(wrong_uid.status, StatusCode::CONFLICT);
        let uid = list.body["items"][0]["metadata"]["uid"].clone();
        let deleted = api.handle(
            &Method::DELETE,
            "/api/v1/namespaces/default/configmaps/a",
            None,
            None,
            json!({"preconditions": {"uid": uid}})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(deleted.status, StatusCode::OK);
        let gone = api.handle(
            &Method::DELETE,
            "/api/v1/namespaces/default/configmaps/a",
            None,
            None,
            b"",
        );
        assert_eq!(gone.status, StatusCode::NOT_FOUND);
        assert!(matches!(
            &api.calls()[0],
            Call::List { selector, found: 1, .. } if selector == "app=x"
        ));
    }

    #[test]
    fn paths_name_core_and_grouped_namespaced_and_cluster_scoped_objects() {
        let object = |group: &str, plural: &str, namespace: Option<&str>, name: &str| ObjectKey {
            group: group.into(),
            version: "v1".into(),
            plural: plural.into(),
            namespace: namespace.map(Into::into),
            name: name.into(),
        };
        assert_eq!(
            parse_path("/api/v1/namespaces/default/configmaps/c"),
            Some(Target::Object(
                object("", "configmaps", Some("default"), "c"),
                None
            ))
        );
        assert_eq!(
            parse_path("/api/v1/namespaces/team-a"),
            Some(Target::Object(
                object("", "namespaces", None, "team-a"),
                None
            ))
        );
        assert_eq!(
            parse_path("/apis/x.io/v1/namespaces/d/things/t/status"),
            Some(Target::Object(
                object("x.io", "things", Some("d"), "t"),
                Some("status".into())
            ))
        );
        assert_eq!(
            parse_path("/apis/x.io/v1/clusterthings/t"),
            Some(Target::Object(
                object("x.io", "clusterthings", None, "t"),
                None
            ))
        );
        assert_eq!(parse_path("/version"), None);
        assert_eq!(parse_path("/api/v1/namespaces/d/configmaps//x"), None);
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge_patch(
            &mut target,
            &json!({"a": "z", "c": {"f": null}, "l": [3], "n": {"m": null}}),
        );
        assert_eq!(
            target,
            json!({"a": "z", "c": {"d": "e"}, "l": [3], "n": {}})
        );
        let mut scalar = json!("x");
        merge_patch(&mut scalar, &json!({"k": 1}));
        assert_eq!(scalar, json!({"k": 1}));
    }
}
