//! The Kubernetes client a plugin gets: every call checked against its declared kinds and
//! confined to the reconciled object's namespace.

use std::sync::Arc;

use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Map, Value, json};

use crate::kinds::{DeclaredKinds, ResolvedKind, gvk_of};
use crate::object::ReconciledObject;

/// Why a plugin's client call failed. Mirrors the WIT `client-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ClientError {
    /// The plugin did not declare this kind or verb, or reached outside its namespace.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The plugin sent JSON that is not a valid object for the call.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The API server answered with an error status.
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

/// A client scoped to one plugin and one reconcile.
#[derive(Clone)]
pub(crate) struct ScopedClient {
    client: kube::Client,
    field_manager: Arc<str>,
    kinds: Arc<DeclaredKinds>,
    object: Arc<ReconciledObject>,
}

impl ScopedClient {
    pub(crate) fn new(
        client: kube::Client,
        field_manager: Arc<str>,
        kinds: Arc<DeclaredKinds>,
        object: Arc<ReconciledObject>,
    ) -> Self {
        Self {
            client,
            field_manager,
            kinds,
            object,
        }
    }

    /// Reads one object of a readable kind in the reconciled object's namespace.
    pub(crate) async fn get(
        &self,
        gvk: &GroupVersionKind,
        name: &str,
    ) -> Result<Option<Value>, ClientError> {
        let resolved = self.kinds.readable(gvk).ok_or_else(|| {
            ClientError::Forbidden(format!(
                "kind {}/{}/{} is not declared in the plugin's metadata",
                gvk.group, gvk.version, gvk.kind
            ))
        })?;
        let api = self.api_in_scope(resolved, None)?;
        let object = api.get_opt(name).await?;
        object
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| ClientError::Invalid(e.to_string()))
    }

    /// Server-side applies an object of an owned kind, as a controller of the reconciled
    /// object. Returns the object as stored.
    pub(crate) async fn apply(&self, object_json: &str) -> Result<Value, ClientError> {
        let mut object: Map<String, Value> = serde_json::from_str(object_json)
            .map_err(|e| ClientError::Invalid(format!("not a JSON object: {e}")))?;
        let api_version = string_field(&object, "apiVersion")?;
        let kind = string_field(&object, "kind")?;
        let gvk = gvk_of(&api_version, &kind);
        let resolved = self.kinds.owned(&gvk).ok_or_else(|| {
            ClientError::Forbidden(format!(
                "kind {api_version}/{kind} is not declared as owned in the plugin's metadata"
            ))
        })?;
        let metadata = object
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or_else(|| ClientError::Invalid("metadata is not an object".into()))?;
        let name = metadata
            .get("name")
            .and_then(Value::as_str)
            .filter(|name| !name.is_empty())
            .ok_or_else(|| ClientError::Invalid("metadata.name is missing".into()))?
            .to_owned();
        let requested_namespace = metadata
            .get("namespace")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let api = self.api_in_scope(resolved, requested_namespace.as_deref())?;
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
        metadata.insert(
            "ownerReferences".into(),
            json!([self.object.controller_owner_reference()]),
        );
        let params = PatchParams::apply(&self.field_manager).force();
        let stored = api
            .patch(&name, &params, &Patch::Apply(Value::Object(object)))
            .await?;
        serde_json::to_value(stored).map_err(|e| ClientError::Invalid(e.to_string()))
    }

    /// Merges `status` into the reconciled object's status subresource.
    pub(crate) async fn patch_status(&self, status_json: &str) -> Result<Value, ClientError> {
        let status: Value = serde_json::from_str(status_json)
            .map_err(|e| ClientError::Invalid(format!("status is not JSON: {e}")))?;
        if !status.is_object() {
            return Err(ClientError::Invalid("status must be a JSON object".into()));
        }
        let api = self.api_in_scope(&self.kinds.reconciles, None)?;
        let patch = Patch::Merge(json!({ "status": status }));
        let stored = api
            .patch_status(&self.object.name, &PatchParams::default(), &patch)
            .await?;
        serde_json::to_value(stored).map_err(|e| ClientError::Invalid(e.to_string()))
    }

    /// An API handle for `kind` inside this reconcile's scope.
    fn api_in_scope(
        &self,
        kind: &ResolvedKind,
        requested_namespace: Option<&str>,
    ) -> Result<Api<DynamicObject>, ClientError> {
        if !kind.namespaced {
            return Ok(Api::all_with(self.client.clone(), &kind.resource));
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
                "namespace {requested} is outside the reconciled object's namespace {namespace}"
            )));
        }
        Ok(Api::namespaced_with(
            self.client.clone(),
            namespace,
            &kind.resource,
        ))
    }
}

fn string_field(object: &Map<String, Value>, field: &str) -> Result<String, ClientError> {
    object
        .get(field)
        .and_then(Value::as_str)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ClientError::Invalid(format!("{field} is missing")))
}
