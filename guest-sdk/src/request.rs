//! One call to `reconcile` or `cleanup`: the object as it is now.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Error, Gvk};

/// One call to [`Reconciler::reconcile`](crate::Reconciler::reconcile) or
/// [`Reconciler::cleanup`](crate::Reconciler::cleanup): the reconciled object as the API
/// server returned it.
///
/// Reconciliation is level-triggered: a request says what the object is now, never whether
/// it was added, modified or deleted.
///
/// ```
/// use serde::Deserialize;
/// use wasm_reconciler_sdk::Request;
///
/// #[derive(Deserialize)]
/// struct MyResource {
///     spec: Spec,
/// }
/// #[derive(Deserialize)]
/// struct Spec {
///     image: String,
/// }
///
/// let request = Request::from_json(r#"{
///     "apiVersion": "mygroup.example.com/v1alpha1", "kind": "MyResource",
///     "metadata": {"name": "demo", "namespace": "default", "generation": 3},
///     "spec": {"image": "nginx:1.27"}
/// }"#)?;
/// assert_eq!(request.name(), "demo");
/// assert_eq!(request.namespace(), Some("default"));
/// assert_eq!(request.generation(), Some(3));
/// assert_eq!(request.object::<MyResource>()?.spec.image, "nginx:1.27");
/// # Ok::<(), wasm_reconciler_sdk::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Request {
    json: String,
    object: Value,
    name: String,
}

impl Request {
    /// Parses a request from the object's JSON, as the host sends it.
    ///
    /// Plugins get their requests ready-made; this is for tests and other harnesses.
    ///
    /// # Errors
    ///
    /// A terminal [`Error`] if `json` is not a JSON object with a string `metadata.name`.
    pub fn from_json(json: impl Into<String>) -> Result<Self, Error> {
        let json = json.into();
        let object: Value = serde_json::from_str(&json)
            .map_err(|e| Error::terminal(format!("the request object is not JSON: {e}")))?;
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::terminal("the request object has no metadata.name"))?
            .to_owned();
        Ok(Self { json, object, name })
    }

    /// The object's JSON, exactly as the host sent it.
    pub fn object_json(&self) -> &str {
        &self.json
    }

    /// The object as a parsed JSON value, for reading a field or two.
    pub fn object_value(&self) -> &Value {
        &self.object
    }

    /// The object as a typed value, e.g. a struct with `#[derive(Deserialize)]` or a
    /// `k8s-openapi` type.
    ///
    /// # Errors
    ///
    /// When the object does not fit `T`. A `serde_json::Error` converts into a terminal
    /// [`Error`] with `?`, since the same object will fail the same way again.
    pub fn object<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.object)
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `metadata.namespace`; `None` for a cluster-scoped object.
    pub fn namespace(&self) -> Option<&str> {
        self.str_at("/metadata/namespace")
    }

    /// `metadata.generation`: bumped by the API server on every change to the spec. Write it
    /// back as `status.observedGeneration` to say which spec the status describes.
    pub fn generation(&self) -> Option<i64> {
        self.object
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
    }

    /// `metadata.uid`.
    pub fn uid(&self) -> Option<&str> {
        self.str_at("/metadata/uid")
    }

    /// `metadata.resourceVersion`.
    pub fn resource_version(&self) -> Option<&str> {
        self.str_at("/metadata/resourceVersion")
    }

    /// The object's kind, from its `apiVersion` and `kind`.
    pub fn gvk(&self) -> Option<Gvk> {
        let api_version = self.str_at("/apiVersion")?;
        let kind = self.str_at("/kind")?;
        Some(Gvk::from_api_version(api_version, kind))
    }

    /// `metadata.labels` (values that are not strings left out); empty when it has none.
    pub fn labels(&self) -> BTreeMap<String, String> {
        crate::selector::labels_of(&self.object)
    }

    /// `metadata.finalizers`; empty when it has none.
    pub fn finalizers(&self) -> Vec<&str> {
        self.object
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// Whether `metadata.deletionTimestamp` is set: the object is being deleted.
    pub fn is_being_deleted(&self) -> bool {
        self.object
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|v| !v.is_null())
    }

    fn str_at(&self, pointer: &str) -> Option<&str> {
        self.object.pointer(pointer).and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_read_the_metadata() {
        let request = Request::from_json(
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a","uid":"u-1",
                "resourceVersion":"7","deletionTimestamp":"2024-01-01T00:00:00Z",
                "labels":{"app":"web"},"finalizers":["example.com/f"]}}"#,
        )
        .unwrap();
        assert_eq!(request.name(), "a");
        assert_eq!(request.namespace(), None);
        assert_eq!(request.generation(), None);
        assert_eq!(request.uid(), Some("u-1"));
        assert_eq!(request.resource_version(), Some("7"));
        assert_eq!(request.gvk(), Some(Gvk::new("apps", "v1", "Deployment")));
        assert!(request.is_being_deleted());
        assert_eq!(request.labels().get("app").map(String::as_str), Some("web"));
        assert_eq!(request.finalizers(), ["example.com/f"]);
    }

    #[test]
    fn objects_without_a_name_are_terminal_errors() {
        for json in [
            "not json",
            "[]",
            r#"{"metadata":{}}"#,
            r#"{"metadata":{"name":1}}"#,
        ] {
            let error = Request::from_json(json).unwrap_err();
            assert!(error.is_terminal(), "{json}: {error}");
        }
    }
}
