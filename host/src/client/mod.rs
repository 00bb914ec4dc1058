//! The Kubernetes client a plugin gets: every call checked against its declared kinds and
//! verbs, confined to the reconciled object's namespace, its names checked before they reach a
//! URL, its payloads capped, and its number of calls per reconcile bounded.
//!
//! Objects cross the boundary as JSON text and are passed through without being parsed into a
//! tree where the host does not need to look inside (responses, `spec`, `status`): the host
//! never holds more than a few copies of what the guest sent.

mod names;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use kube::api::{
    DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, Preconditions,
    PropagationPolicy,
};
use kube::core::{Request, params::GetParams};
use prometheus_client::metrics::counter::Counter;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::cache::PluginCaches;
use crate::kinds::{DeclaredKinds, ResolvedKind, gvk_of};
use crate::object::ReconciledObject;
use crate::plugin::{Quota, QuotaPermit};
use crate::selector::LabelSelector;
pub(crate) use names::check_object_name;

/// Largest JSON text a plugin may pass to one client call: the API server's own request limit
/// (3 MiB), so nothing the server would accept is refused.
pub(crate) const MAX_PAYLOAD_BYTES: usize = 3 << 20;
/// Largest `metadata` of an applied object: the API server caps annotations at 256 KiB, and
/// the host parses `metadata` (only) into a tree to set the namespace and owner reference.
pub(crate) const MAX_METADATA_BYTES: usize = 512 << 10;
/// Copies of a write's payload the host holds at most while sending it.
pub(crate) const PAYLOAD_COPIES: usize = 3;
/// Largest answer to one `list`, in bytes of JSON (less when the plugin's payload share is
/// smaller): a larger one is refused, with a hint to narrow it with a selector.
pub(crate) const MAX_LIST_BYTES: usize = 16 << 20;

/// Why a plugin's client call failed. Mirrors the WIT `client-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ClientError {
    /// The plugin did not declare this kind or verb, or reached outside its namespace.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The plugin sent JSON that is not a valid object for the call.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The API server answered with an error status, or the host refused the call with one
    /// (429 when the reconcile made too many calls).
    #[error("API server answered {code}: {message}")]
    Api {
        /// HTTP status code.
        code: u16,
        /// The server's message.
        message: String,
    },
    /// The API server could not be reached.
    #[error("API server unavailable: {0}")]
    Unavailable(String),
}

impl From<kube::Error> for ClientError {
    fn from(error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => ClientError::Api {
                code: status.code,
                message: status.message,
            },
            kube::Error::SerdeError(e) => ClientError::Invalid(e.to_string()),
            other => ClientError::Unavailable(other.to_string()),
        }
    }
}

/// How many API calls one reconcile may still make. Shared by the clones of one reconcile's
/// client; a new reconcile starts with a full allowance.
///
/// A guest calls imports one at a time, so a plugin never has more API requests in flight
/// than it has instance slots: with this allowance, that bounds its use of the API server.
#[derive(Debug)]
pub(crate) struct CallAllowance {
    left: AtomicU32,
    limit: u32,
    refused: Counter,
}

impl CallAllowance {
    /// `limit` calls; refusals count on `refused`.
    pub(crate) fn new(limit: u32, refused: Counter) -> Arc<Self> {
        Arc::new(Self {
            left: AtomicU32::new(limit),
            limit,
            refused,
        })
    }

    /// Takes one call, or says why not.
    fn take(&self) -> Result<(), ClientError> {
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            })
            .map(drop)
            .map_err(|_| {
                self.refused.inc();
                ClientError::Api {
                    code: 429,
                    message: format!(
                        "this reconcile made its {} API calls: the host allows no more in one \
                         reconcile (return and requeue instead of looping)",
                        self.limit
                    ),
                }
            })
    }
}

/// Who a plugin's API calls are made as, when the host impersonates a ServiceAccount per
/// plugin (`--impersonate-plugins`): the API server then applies that account's RBAC on top
/// of the host's own checks.
#[derive(Debug, Clone)]
pub(crate) struct Impersonation {
    user: http::HeaderValue,
    groups: Vec<http::HeaderValue>,
}

impl Impersonation {
    /// The ServiceAccount `name` in `namespace`, with the groups the API server gives every
    /// ServiceAccount.
    pub(crate) fn service_account(namespace: &str, name: &str) -> Option<Self> {
        let header = |value: String| http::HeaderValue::try_from(value).ok();
        Some(Self {
            user: header(format!("system:serviceaccount:{namespace}:{name}"))?,
            groups: vec![
                header("system:serviceaccounts".to_owned())?,
                header(format!("system:serviceaccounts:{namespace}"))?,
                header("system:authenticated".to_owned())?,
            ],
        })
    }

    /// The user name impersonated.
    pub(crate) fn user(&self) -> &str {
        self.user.to_str().unwrap_or_default()
    }

    /// Makes `request` as the impersonated account.
    pub(crate) fn apply(&self, request: &mut http::Request<Vec<u8>>) {
        let headers = request.headers_mut();
        headers.insert("Impersonate-User", self.user.clone());
        for group in &self.groups {
            headers.append("Impersonate-Group", group.clone());
        }
    }
}

/// A client scoped to one plugin and one reconcile.
#[derive(Clone)]
pub(crate) struct ScopedClient {
    client: kube::Client,
    field_manager: Arc<str>,
    kinds: Arc<DeclaredKinds>,
    object: Arc<ReconciledObject>,
    allowance: Arc<CallAllowance>,
    /// The plugin's share of the host's memory for payloads in flight, in bytes.
    payload_bytes: Arc<Quota>,
    impersonate: Option<Impersonation>,
    /// The caches reads are served from; a kind without one is read from the API server.
    caches: Arc<PluginCaches>,
}

/// How a plugin's `delete` treats the dependents of the deleted object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Propagation {
    Background,
    Foreground,
    Orphan,
}

impl ScopedClient {
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site, each argument named there"
    )]
    pub(crate) fn new(
        client: kube::Client,
        field_manager: Arc<str>,
        kinds: Arc<DeclaredKinds>,
        object: Arc<ReconciledObject>,
        allowance: Arc<CallAllowance>,
        payload_bytes: Arc<Quota>,
        impersonate: Option<Impersonation>,
        caches: Arc<PluginCaches>,
    ) -> Self {
        Self {
            client,
            field_manager,
            kinds,
            object,
            allowance,
            payload_bytes,
            impersonate,
            caches,
        }
    }

    /// Sends `request` as the plugin, if this call allowance has a call left.
    async fn send(&self, mut request: http::Request<Vec<u8>>) -> Result<String, kube::Error> {
        if let Some(identity) = &self.impersonate {
            identity.apply(&mut request);
        }
        self.client.request_text(request).await
    }

    /// The kind if the plugin may read it, else why not.
    fn readable(&self, gvk: &GroupVersionKind) -> Result<&ResolvedKind, ClientError> {
        self.kinds.readable(gvk).ok_or_else(|| {
            ClientError::Forbidden(format!(
                "kind {}/{}/{} is not declared in the plugin's metadata",
                gvk.group, gvk.version, gvk.kind
            ))
        })
    }

    /// The namespace reads of `kind` are confined to: the reconciled object's for a
    /// namespaced kind (refused when the reconciled object is cluster-scoped), none for a
    /// cluster-scoped kind.
    fn read_namespace(&self, kind: &ResolvedKind) -> Result<Option<&str>, ClientError> {
        self.request_in_scope(kind, None)?;
        Ok(if kind.namespaced {
            self.object.namespace.as_deref()
        } else {
            None
        })
    }

    /// Reads one object of a readable kind in the reconciled object's namespace from the
    /// host's cache of the kind, or from the API server when there is none; without
    /// `managedFields` either way.
    pub(crate) async fn get_cached(
        &self,
        gvk: &GroupVersionKind,
        name: &str,
    ) -> Result<Option<String>, ClientError> {
        let resolved = self.readable(gvk)?;
        check_name(name)?;
        let Some(cache) = self.caches.of(gvk) else {
            // Without managedFields, like what a cache holds.
            return self
                .get(gvk, name)
                .await?
                .map(|json| strip_managed_fields(&json))
                .transpose();
        };
        let namespace = self.read_namespace(resolved)?;
        // A cached read costs the API server nothing, but the host's time all the same: it
        // counts like any other call, so that a reconcile cannot loop on it.
        self.allowance.take()?;
        Ok(cache
            .get(namespace, name)
            .map(|object| object.json().to_owned()))
    }

    /// Lists the objects of a readable kind in the reconciled object's namespace that match
    /// `selector`, from the host's cache of the kind, or from the API server when there is
    /// none; sorted by namespace and name.
    pub(crate) async fn list(
        &self,
        gvk: &GroupVersionKind,
        selector: Option<&LabelSelector>,
    ) -> Result<Vec<String>, ClientError> {
        let resolved = self.readable(gvk)?;
        let namespace = self.read_namespace(resolved)?;
        let limit = MAX_LIST_BYTES.min(self.payload_bytes.size());
        let (objects, bytes) = if let Some(cache) = self.caches.of(gvk) {
            self.allowance.take()?;
            list_json(
                cache
                    .list(namespace, selector)
                    .iter()
                    .map(|object| Ok(object.json().to_owned())),
                limit,
            )?
        } else {
            let mut params = ListParams::default();
            if let Some(selector) = selector.filter(|selector| !selector.is_empty()) {
                params = params.labels(&selector.to_string());
            }
            let request = self
                .request_in_scope(resolved, None)?
                .list(&params)
                .map_err(|e| ClientError::Invalid(e.to_string()))?;
            self.allowance.take()?;
            let text = self.send(request).await?;
            let list: kube::core::ObjectList<DynamicObject> = serde_json::from_str(&text)
                .map_err(|e| ClientError::Invalid(format!("the API server's list: {e}")))?;
            let mut items = list.items;
            items.sort_by(|a, b| {
                (&a.metadata.namespace, &a.metadata.name)
                    .cmp(&(&b.metadata.namespace, &b.metadata.name))
            });
            let texts = items.into_iter().map(|mut object| {
                object.metadata.managed_fields = None;
                serde_json::to_string(&object).map_err(|e| ClientError::Invalid(e.to_string()))
            });
            list_json(texts, limit)?
        };
        // Held while the answer is handed over, so that lists in flight stay within the
        // plugin's share.
        let _payload = self
            .payload_bytes
            .acquire_many(u32::try_from(bytes.max(1)).unwrap_or(u32::MAX))
            .await
            .map_err(|_| ClientError::Unavailable("the host is shutting down".into()))?;
        Ok(objects)
    }

    /// Deletes an object of an owned kind in the reconciled object's namespace, if the
    /// reconciled object controls it, with a precondition on its uid. `false` when it does
    /// not exist.
    pub(crate) async fn delete(
        &self,
        gvk: &GroupVersionKind,
        name: &str,
        propagation: Propagation,
    ) -> Result<bool, ClientError> {
        let resolved = self.kinds.owned(gvk).ok_or_else(|| {
            ClientError::Forbidden(format!(
                "kind {}/{}/{} is not declared as owned in the plugin's metadata",
                gvk.group, gvk.version, gvk.kind
            ))
        })?;
        check_name(name)?;
        let scoped = self.request_in_scope(resolved, None)?;
        let get = scoped
            .get(name, &GetParams::default())
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        self.allowance.take()?;
        let current: DynamicObject = match self.send(get).await {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| ClientError::Invalid(format!("the API server's object: {e}")))?,
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(false),
            Err(error) => return Err(error.into()),
        };
        let controlled = current
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|owner| owner.controller == Some(true) && owner.uid == self.object.uid);
        if !controlled {
            return Err(ClientError::Forbidden(format!(
                "{} {name} is not controlled by the reconciled {} {}: a plugin deletes only \
                 objects whose controller owner reference is the reconciled object",
                gvk.kind, self.object.kind, self.object.name
            )));
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: current.metadata.uid.clone(),
                resource_version: None,
            }),
            propagation_policy: Some(match propagation {
                Propagation::Background => PropagationPolicy::Background,
                Propagation::Foreground => PropagationPolicy::Foreground,
                Propagation::Orphan => PropagationPolicy::Orphan,
            }),
            ..DeleteParams::default()
        };
        let delete = scoped
            .delete(name, &params)
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        self.allowance.take()?;
        match self.send(delete).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Reads one object of a readable kind in the reconciled object's namespace, from the
    /// API server, as its JSON.
    pub(crate) async fn get(
        &self,
        gvk: &GroupVersionKind,
        name: &str,
    ) -> Result<Option<String>, ClientError> {
        let resolved = self.readable(gvk)?;
        check_name(name)?;
        let request = self
            .request_in_scope(resolved, None)?
            .get(name, &GetParams::default())
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        self.allowance.take()?;
        match self.send(request).await {
            Ok(text) => Ok(Some(text)),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Server-side applies an object of an owned kind, as a controller of the reconciled
    /// object. Returns the object as stored.
    pub(crate) async fn apply(&self, object_json: &str) -> Result<String, ClientError> {
        check_payload(object_json)?;
        let _payload = self.reserve_payload(object_json.len()).await?;
        // Only the top level and `metadata` are parsed: `spec` and the rest pass through as
        // the guest wrote them.
        let mut object: BTreeMap<String, Box<RawValue>> = serde_json::from_str(object_json)
            .map_err(|e| ClientError::Invalid(format!("not a JSON object: {e}")))?;
        let api_version = string_field(&object, "apiVersion")?;
        let kind = string_field(&object, "kind")?;
        let gvk = gvk_of(&api_version, &kind);
        let resolved = self.kinds.owned(&gvk).ok_or_else(|| {
            ClientError::Forbidden(format!(
                "kind {api_version}/{kind} is not declared as owned in the plugin's metadata"
            ))
        })?;
        let mut metadata: Map<String, Value> = match object.get("metadata") {
            None => Map::new(),
            Some(raw) if raw.get().len() > MAX_METADATA_BYTES => {
                return Err(ClientError::Invalid(format!(
                    "metadata is larger than {MAX_METADATA_BYTES} bytes"
                )));
            }
            Some(raw) => serde_json::from_str(raw.get())
                .map_err(|_| ClientError::Invalid("metadata is not an object".into()))?,
        };
        let name = metadata
            .get("name")
            .and_then(Value::as_str)
            .filter(|name| !name.is_empty())
            .ok_or_else(|| ClientError::Invalid("metadata.name is missing".into()))?
            .to_owned();
        check_name(&name)?;
        let requested_namespace = metadata
            .get("namespace")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let request = self.request_in_scope(resolved, requested_namespace.as_deref())?;
        if resolved.namespaced {
            if let Some(namespace) = &self.object.namespace {
                metadata.insert("namespace".into(), json!(namespace));
            }
        } else if self.object.namespace.is_some() {
            return Err(ClientError::Invalid(format!(
                "a namespaced {} cannot own the cluster-scoped {kind} {name}",
                self.object.kind
            )));
        }
        if resolved.gvk == self.kinds.reconciles.gvk && self.object.is_named(&name) {
            return Err(ClientError::Invalid(format!(
                "{kind} {name} is the reconciled object: an object cannot own itself"
            )));
        }
        metadata.insert(
            "ownerReferences".into(),
            json!([self.object.controller_owner_reference()]),
        );
        let metadata = RawValue::from_string(Value::Object(metadata).to_string())
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        object.insert("metadata".into(), metadata);
        let params = PatchParams::apply(&self.field_manager).force();
        let request = request
            .patch(&name, &params, &Patch::Apply(&object))
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        drop(object);
        self.allowance.take()?;
        Ok(self.send(request).await?)
    }

    /// Merges `status` into the reconciled object's status subresource.
    pub(crate) async fn patch_status(&self, status_json: &str) -> Result<String, ClientError> {
        check_payload(status_json)?;
        let _payload = self.reserve_payload(status_json.len()).await?;
        let status: Box<RawValue> = serde_json::from_str(status_json)
            .map_err(|e| ClientError::Invalid(format!("status is not JSON: {e}")))?;
        if !status.get().trim_start().starts_with('{') {
            return Err(ClientError::Invalid("status must be a JSON object".into()));
        }
        let request = self
            .request_in_scope(&self.kinds.reconciles, None)?
            .patch_subresource(
                "status",
                &self.object.name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        drop(status);
        self.allowance.take()?;
        Ok(self.send(request).await?)
    }

    /// Waits for the plugin's payload budget to hold `len` bytes, times the copies a write
    /// makes. The wait is bounded by the call's own timeout.
    async fn reserve_payload(&self, len: usize) -> Result<QuotaPermit<'_>, ClientError> {
        let bytes = len.saturating_mul(PAYLOAD_COPIES).max(1);
        let permits = u32::try_from(bytes).unwrap_or(u32::MAX);
        self.payload_bytes
            .acquire_many(permits)
            .await
            .map_err(|_| ClientError::Unavailable("the host is shutting down".into()))
    }

    /// A request builder for `kind` inside this reconcile's scope.
    fn request_in_scope(
        &self,
        kind: &ResolvedKind,
        requested_namespace: Option<&str>,
    ) -> Result<Request, ClientError> {
        use kube::Resource as _;
        if !kind.namespaced {
            return Ok(Request::new(DynamicObject::url_path(&kind.resource, None)));
        }
        let Some(namespace) = self.object.namespace.as_deref() else {
            return Err(ClientError::Forbidden(format!(
                "the reconciled {} is cluster-scoped; namespaced {} objects are out of scope",
                self.object.kind, kind.gvk.kind
            )));
        };
        if let Some(requested) = requested_namespace
            && requested != namespace
        {
            return Err(ClientError::Forbidden(format!(
                "namespace {requested:?} is outside the reconciled object's namespace {namespace}"
            )));
        }
        Ok(Request::new(DynamicObject::url_path(
            &kind.resource,
            Some(namespace),
        )))
    }
}

fn check_name(name: &str) -> Result<(), ClientError> {
    check_object_name(name).map_err(|why| {
        let shown: String = name.chars().take(64).collect();
        ClientError::Invalid(format!("object name {shown:?} is not valid: {why}"))
    })
}

/// The JSON texts of a list, and their total size, unless that is over `limit` bytes; the
/// first that could not be made stops it.
fn list_json(
    texts: impl IntoIterator<Item = Result<String, ClientError>>,
    limit: usize,
) -> Result<(Vec<String>, usize), ClientError> {
    let mut kept = Vec::new();
    let mut bytes = 0_usize;
    for json in texts {
        let json = json?;
        bytes += json.len();
        if bytes > limit {
            return Err(ClientError::Invalid(format!(
                "the list holds more than {limit} bytes of JSON ({} objects, {bytes} bytes so \
                 far): narrow it with a label selector",
                kept.len() + 1
            )));
        }
        kept.push(json);
    }
    Ok((kept, bytes))
}

/// The API server's JSON for one object, without `metadata.managedFields`: only the top
/// level and `metadata` are parsed, `spec`, `status` and the rest pass through as they are.
pub(crate) fn strip_managed_fields(json: &str) -> Result<String, ClientError> {
    if !json.contains("\"managedFields\"") {
        return Ok(json.to_owned());
    }
    let invalid =
        |e: serde_json::Error| ClientError::Invalid(format!("the API server's object: {e}"));
    let mut object: BTreeMap<String, Box<RawValue>> =
        serde_json::from_str(json).map_err(invalid)?;
    if let Some(raw) = object.get("metadata") {
        let mut metadata: Map<String, Value> = serde_json::from_str(raw.get()).map_err(invalid)?;
        if metadata.remove("managedFields").is_some() {
            let raw =
                RawValue::from_string(Value::Object(metadata).to_string()).map_err(invalid)?;
            object.insert("metadata".to_owned(), raw);
        }
    }
    serde_json::to_string(&object).map_err(invalid)
}

fn check_payload(json: &str) -> Result<(), ClientError> {
    if json.len() > MAX_PAYLOAD_BYTES {
        return Err(ClientError::Invalid(format!(
            "{} bytes of JSON: the limit for one call is {MAX_PAYLOAD_BYTES} bytes (the API \
             server's own request limit)",
            json.len()
        )));
    }
    Ok(())
}

fn string_field(
    object: &BTreeMap<String, Box<RawValue>>,
    field: &str,
) -> Result<String, ClientError> {
    object
        .get(field)
        .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
        .filter(|value| !value.is_empty())
        .ok_or_else(|| ClientError::Invalid(format!("{field} is missing")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconcile_runs_out_of_calls_with_a_429() {
        let refused_calls = Counter::default();
        let allowance = CallAllowance::new(2, refused_calls.clone());
        assert!(allowance.take().is_ok());
        assert!(allowance.take().is_ok());
        let refused = allowance.take();
        assert!(
            matches!(&refused, Err(ClientError::Api { code: 429, message }) if message.contains("2 API calls")),
            "{refused:?}"
        );
        assert_eq!(refused_calls.get(), 1);
    }

    #[test]
    fn payloads_over_the_api_servers_limit_are_refused_before_parsing() {
        assert!(check_payload(&" ".repeat(MAX_PAYLOAD_BYTES)).is_ok());
        let refused = check_payload(&" ".repeat(MAX_PAYLOAD_BYTES + 1));
        assert!(
            matches!(refused, Err(ClientError::Invalid(_))),
            "{refused:?}"
        );
    }

    #[test]
    fn a_list_over_its_byte_limit_is_refused_with_a_hint() {
        let object = |name: &str| -> DynamicObject {
            serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name}}))
            .expect("object")
        };
        let text = |name: &str| Ok(serde_json::to_string(&object(name)).expect("json"));
        let one = serde_json::to_string(&object("a")).expect("json").len();
        let (texts, bytes) = list_json([text("a"), text("b")], 2 * one).expect("fits");
        assert_eq!((texts.len(), bytes), (2, 2 * one));
        let refused = list_json([text("a"), text("b")], 2 * one - 1);
        assert!(
            matches!(&refused, Err(ClientError::Invalid(m)) if m.contains("label selector")),
            "{refused:?}"
        );
    }

    #[test]
    fn managed_fields_go_and_the_rest_stays_as_it_was() {
        let json = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","managedFields":[{"manager":"x"}]},"data":{"k":"v  "}}"#;
        let stripped = strip_managed_fields(json).expect("valid");
        let value: serde_json::Value = serde_json::from_str(&stripped).expect("json");
        assert_eq!(value["metadata"], serde_json::json!({"name": "a"}));
        assert_eq!(value["data"]["k"], "v  ");
        let plain = r#"{"metadata":{"name":"a"}}"#;
        assert_eq!(strip_managed_fields(plain).expect("valid"), plain);
    }

    #[test]
    fn string_fields_must_be_non_empty_strings() {
        let object: BTreeMap<String, Box<RawValue>> =
            serde_json::from_str(r#"{"apiVersion":"v1","kind":"","x":1}"#).expect("json");
        assert_eq!(string_field(&object, "apiVersion"), Ok("v1".to_owned()));
        assert!(string_field(&object, "kind").is_err());
        assert!(string_field(&object, "x").is_err());
        assert!(string_field(&object, "missing").is_err());
    }
}
