//! The object a reconcile is about: the one reference that events and scoped writes attach to.

use kube::api::{ApiResource, ObjectMeta};
use serde_json::{Value, json};

/// Identity of the object being reconciled, taken from the cache at the start of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReconciledObject {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    /// `None` for a cluster-scoped object.
    pub(crate) namespace: Option<String>,
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) resource_version: Option<String>,
}

impl ReconciledObject {
    /// Takes the identity of a cached object from its metadata; `None` if the object has no
    /// name or uid, which the API server never serves (so such an object is not reconciled).
    pub(crate) fn from_meta(metadata: &ObjectMeta, resource: &ApiResource) -> Option<Self> {
        Some(Self {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
            namespace: metadata.namespace.clone(),
            name: metadata.name.clone()?,
            uid: metadata.uid.clone()?,
            resource_version: metadata.resource_version.clone(),
        })
    }

    /// Whether `name` (in the reconciled object's namespace) names this object.
    pub(crate) fn is_named(&self, name: &str) -> bool {
        self.name == name
    }

    /// The owner reference that makes this object the controller of another, as
    /// controller-runtime's `SetControllerReference` writes it.
    pub(crate) fn controller_owner_reference(&self) -> Value {
        json!({
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": true,
            "blockOwnerDeletion": true,
        })
    }
}

#[cfg(test)]
impl ReconciledObject {
    /// The ConfigMap `default/c` with uid `u`: an object for tests to record Events about.
    pub(crate) fn test_config_map() -> Self {
        Self {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("default".into()),
            name: "c".into(),
            uid: "u".into(),
            resource_version: None,
        }
    }
}
