//! A plugin's finalizer on the objects it reconciles: added before an object's first
//! reconcile, removed once its cleanup succeeds. Each write is a JSON patch that touches only
//! this finalizer and holds only if the object is still the one seen (same uid, and the
//! finalizer still at the index it was read at), like kube-rs's `finalizer` helper.

use kube::api::ApiResource;
use serde_json::{Value, json};

use crate::cache::CachedObject;
use crate::client::Impersonation;

/// Whether `object` carries `finalizer`.
pub(crate) fn has_finalizer(object: &CachedObject, finalizer: &str) -> bool {
    object
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|finalizers| finalizers.iter().any(|f| f == finalizer))
}

/// The JSON patch that adds `finalizer` to `object`.
fn add_patch(object: &CachedObject, finalizer: &str) -> Value {
    let uid = object.metadata.uid.as_deref().unwrap_or_default();
    match &object.metadata.finalizers {
        // `test` on an absent path with `null` holds: nobody added a list meanwhile.
        None => json!([
            {"op": "test", "path": "/metadata/uid", "value": uid},
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [finalizer]},
        ]),
        Some(_) => json!([
            {"op": "test", "path": "/metadata/uid", "value": uid},
            {"op": "add", "path": "/metadata/finalizers/-", "value": finalizer},
        ]),
    }
}

/// The JSON patch that removes `finalizer` from `object`, or `None` if it does not carry it.
fn remove_patch(object: &CachedObject, finalizer: &str) -> Option<Value> {
    let uid = object.metadata.uid.as_deref().unwrap_or_default();
    let index = object
        .metadata
        .finalizers
        .as_ref()?
        .iter()
        .position(|f| f == finalizer)?;
    let path = format!("/metadata/finalizers/{index}");
    Some(json!([
        {"op": "test", "path": "/metadata/uid", "value": uid},
        {"op": "test", "path": path, "value": finalizer},
        {"op": "remove", "path": path},
    ]))
}

/// Writes a plugin's finalizer on objects of one kind, as the plugin (when the host
/// impersonates plugins) or as the host.
#[derive(Clone)]
pub(crate) struct FinalizerWriter {
    client: kube::Client,
    resource: ApiResource,
    impersonate: Option<Impersonation>,
}

impl FinalizerWriter {
    pub(crate) fn new(
        client: kube::Client,
        resource: ApiResource,
        impersonate: Option<Impersonation>,
    ) -> Self {
        Self {
            client,
            resource,
            impersonate,
        }
    }

    /// Adds `finalizer` to `object`; returns the object as stored, without `managedFields`.
    pub(crate) async fn add(
        &self,
        object: &CachedObject,
        finalizer: &str,
    ) -> Result<CachedObject, kube::Error> {
        self.patch(object, &add_patch(object, finalizer)).await
    }

    /// Removes `finalizer` from `object`, if it carries it.
    pub(crate) async fn remove(
        &self,
        object: &CachedObject,
        finalizer: &str,
    ) -> Result<(), kube::Error> {
        match remove_patch(object, finalizer) {
            Some(patch) => match self.patch(object, &patch).await {
                Ok(_) => Ok(()),
                // Gone meanwhile: nothing left to hold.
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
                Err(error) => Err(error),
            },
            None => Ok(()),
        }
    }

    /// Reads `object` again from the API server: `None` when it is gone.
    pub(crate) async fn get_live(
        &self,
        object: &CachedObject,
    ) -> Result<Option<CachedObject>, kube::Error> {
        let name = object.metadata.name.as_deref().unwrap_or_default();
        let mut request = http::Request::get(self.url(object, name))
            .body(Vec::new())
            .map_err(kube::Error::HttpError)?;
        if let Some(identity) = &self.impersonate {
            identity.apply(&mut request);
        }
        match self.client.request::<CachedObject>(request).await {
            Ok(object) => Ok(Some(object)),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn patch(
        &self,
        object: &CachedObject,
        patch: &Value,
    ) -> Result<CachedObject, kube::Error> {
        let name = object.metadata.name.as_deref().unwrap_or_default();
        let mut request = http::Request::patch(self.url(object, name))
            .header(http::header::CONTENT_TYPE, "application/json-patch+json")
            .body(patch.to_string().into_bytes())
            .map_err(kube::Error::HttpError)?;
        if let Some(identity) = &self.impersonate {
            identity.apply(&mut request);
        }
        // Parsed into a cached object, without managedFields.
        self.client.request(request).await
    }

    fn url(&self, object: &CachedObject, name: &str) -> String {
        use kube::Resource as _;
        format!(
            "{}/{name}",
            CachedObject::url_path(&self.resource, object.metadata.namespace.as_deref())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(finalizers: Option<Vec<&str>>) -> CachedObject {
        let mut metadata = json!({"name": "c", "uid": "u"});
        if let Some(finalizers) = finalizers {
            metadata["finalizers"] = json!(finalizers);
        }
        CachedObject::from_value(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}),
        )
        .expect("object")
    }

    #[test]
    fn adding_tests_the_uid_and_does_not_replace_a_list_added_meanwhile() {
        let patch = add_patch(&object(None), "example.com/x");
        assert_eq!(
            patch[0],
            json!({"op": "test", "path": "/metadata/uid", "value": "u"})
        );
        assert_eq!(patch[1]["value"], Value::Null);
        assert_eq!(patch[2]["value"], json!(["example.com/x"]));
        let patch = add_patch(&object(Some(vec!["other/y"])), "example.com/x");
        assert_eq!(patch[1]["path"], "/metadata/finalizers/-");
    }

    #[test]
    fn removing_touches_only_the_plugins_finalizer_where_it_was_seen() {
        let seen = object(Some(vec!["other/y", "example.com/x"]));
        let patch = remove_patch(&seen, "example.com/x").expect("carries it");
        assert_eq!(
            patch[1],
            json!({"op": "test", "path": "/metadata/finalizers/1", "value": "example.com/x"})
        );
        assert_eq!(
            patch[2],
            json!({"op": "remove", "path": "/metadata/finalizers/1"})
        );
        assert!(remove_patch(&object(Some(vec!["other/y"])), "example.com/x").is_none());
        assert!(remove_patch(&object(None), "example.com/x").is_none());
        assert!(has_finalizer(&seen, "example.com/x"));
        assert!(!has_finalizer(&object(None), "example.com/x"));
    }
}
