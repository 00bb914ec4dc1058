//! A plugin's finalizer on the objects it reconciles: added before an object's first
//! reconcile, removed once its cleanup succeeds. Each write is a JSON patch that touches only
//! this finalizer and holds only if the object is still the one seen (same uid, and the
//! finalizer still at the index it was read at), like kube-rs's `finalizer` helper.

use kube::api::{ApiResource, DynamicObject};
use serde_json::{Value, json};

use crate::client::Impersonation;

/// Whether `object` carries `finalizer`.
pub(crate) fn has_finalizer(object: &DynamicObject, finalizer: &str) -> bool {
    object
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|finalizers| finalizers.iter().any(|f| f == finalizer))
}

/// The JSON patch that adds `finalizer` to `object`.
fn add_patch(object: &DynamicObject, finalizer: &str) -> Value {
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
fn remove_patch(object: &DynamicObject, finalizer: &str) -> Option<Value> {
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
        object: &DynamicObject,
        finalizer: &str,
    ) -> Result<DynamicObject, kube::Error> {
        self.patch(object, &add_patch(object, finalizer)).await
    }

    /// Removes `finalizer` from `object`, if it carries it.
    pub(crate) async fn remove(
        &self,
        object: &DynamicObject,
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
        object: &DynamicObject,
    ) -> Result<Option<DynamicObject>, kube::Error> {
        let name = object.metadata.name.as_deref().unwrap_or_default();
        let mut request = http::Request::get(self.url(object, name))
            .body(Vec::new())
            .map_err(kube::Error::HttpError)?;
        if let Some(identity) = &self.impersonate {
            identity.apply(&mut request);
        }
        match self.client.request::<DynamicObject>(request).await {
            Ok(mut object) => {
                object.metadata.managed_fields = None;
                Ok(Some(object))
            }
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn patch(
        &self,
        object: &DynamicObject,
        patch: &Value,
    ) -> Result<DynamicObject, kube::Error> {
        let name = object.metadata.name.as_deref().unwrap_or_default();
        let mut request = http::Request::patch(self.url(object, name))
            .header(http::header::CONTENT_TYPE, "application/json-patch+json")
            .body(patch.to_string().into_bytes())
            .map_err(kube::Error::HttpError)?;
        if let Some(identity) = &self.impersonate {
            identity.apply(&mut request);
        }
        let mut stored: DynamicObject = self.client.request(request).await?;
        stored.metadata.managed_fields = None;
        Ok(stored)
    }

    fn url(&self, object: &DynamicObject, name: &str) -> String {
        use kube::Resource as _;
        format!(
            "{}/{name}",
            DynamicObject::url_path(&self.resource, object.metadata.namespace.as_deref())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(finalizers: Option<Vec<&str>>) -> DynamicObject {
        let mut object = DynamicObject::new(
            "c",
            &ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
        );
        object.metadata.uid = Some("u".into());
        object.metadata.finalizers =
            finalizers.map(|list| list.into_iter().map(str::to_owned).collect());
        object
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
