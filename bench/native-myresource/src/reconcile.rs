//! The example plugin's reconcile (`plugins/myresource/src/lib.rs`) written against kube-rs:
//! the same API calls per object, in the same order, with the same objects and Events.
//!
//! Per `MyResource`: GET its Deployment; if it is missing or differs from the spec,
//! server-side apply it (field manager `myresource`, forced, with a controller owner
//! reference, as the host applies for a plugin) and record a `Created` or `Updated` Event; then
//! merge-patch the status. An invalid spec gets a `Warning InvalidSpec` Event and
//! `status.invalidSpec`, once per generation, and is not retried.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};
use myresource::{CONTAINER, Spec, desired_deployment};
use serde_json::{Value, json};

/// The field manager, controller and event source: the plugin's name.
pub(crate) const MANAGER: &str = myresource::PLUGIN_NAME;
/// The `action` of every Event, as the host writes it.
const EVENT_ACTION: &str = "Reconcile";
/// The retry delay after an error. The host backs off per object (5 ms doubling); in the
/// benchmark neither controller sees errors, so a fixed delay keeps this small.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What every reconcile shares.
pub(crate) struct Context {
    pub(crate) client: kube::Client,
    /// `MyResource`, found without discovery: the CRD is fixed.
    pub(crate) resource: ApiResource,
    pub(crate) recorder: Recorder,
}

/// Why a reconcile will be retried.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// An API call failed.
    #[error("{action} failed: {source}")]
    Api {
        action: &'static str,
        #[source]
        source: kube::Error,
    },
    /// The object came without a name or uid, so nothing can name it as its owner.
    #[error("the object has no name or uid to own a Deployment with")]
    NoOwnerReference,
}

/// Maps a failed API call to an [`Error`] naming what was being done.
fn during(action: &'static str) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Api { action, source }
}

/// Reconciles one `MyResource`; see the [module docs](self).
#[tracing::instrument(skip_all, fields(namespace = object.namespace().as_deref(), name = %object.name_any()))]
pub(crate) async fn reconcile(
    object: Arc<DynamicObject>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let name = object.name_any();
    let Some(namespace) = object.namespace() else {
        // The CRD is namespaced; the host skips such objects too.
        return Ok(Action::await_change());
    };
    if object.meta().deletion_timestamp.is_some() {
        // The Deployment carries an owner reference: garbage collection removes it.
        return Ok(Action::await_change());
    }
    let generation = object.meta().generation.unwrap_or_default();
    let my_resources: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &namespace, &ctx.resource);

    let spec = match Spec::from_object(&object.data) {
        Ok(spec) => spec,
        Err(problem) => {
            // A change to the Deployment requeues this object too: say it once per spec.
            if !already_reported(&object.data, generation, &problem) {
                record(
                    &ctx,
                    &object,
                    EventType::Warning,
                    "InvalidSpec",
                    problem.clone(),
                )
                .await?;
                let status = json!({"observedGeneration": generation, "invalidSpec": problem});
                patch_status(&my_resources, &name, status).await?;
            }
            tracing::warn!(%problem, "invalid spec; waiting for a change");
            return Ok(Action::await_change());
        }
    };

    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &namespace);
    let existing = deployments
        .get_opt(&name)
        .await
        .map_err(during("get deployment"))?;
    let deployment = match existing {
        None => {
            let stored = apply(&ctx, &deployments, &object, &namespace, &name, &spec).await?;
            let note = format!("Created deployment {name}");
            record(&ctx, &object, EventType::Normal, "Created", note).await?;
            stored
        }
        Some(current) => {
            let changes = changes(&current, &spec);
            if changes.is_empty() {
                current
            } else {
                let stored = apply(&ctx, &deployments, &object, &namespace, &name, &spec).await?;
                let note = format!("Updated deployment {name}: {}", changes.join(", "));
                record(&ctx, &object, EventType::Normal, "Updated", note).await?;
                stored
            }
        }
    };

    let ready_replicas = deployment
        .status
        .as_ref()
        .and_then(|status| status.ready_replicas)
        .unwrap_or(0);
    let status = json!({
        "observedGeneration": generation,
        "deployment": name,
        "image": spec.image,
        "replicas": spec.replicas,
        "readyReplicas": ready_replicas,
        // `null` removes a message left by an earlier invalid spec (JSON merge patch).
        "invalidSpec": null,
    });
    patch_status(&my_resources, &name, status).await?;
    tracing::debug!("reconciled");
    Ok(Action::await_change())
}

/// What the controller does after a failed reconcile: try again soon.
pub(crate) fn error_policy(
    _object: Arc<DynamicObject>,
    error: &Error,
    _ctx: Arc<Context>,
) -> Action {
    tracing::warn!(%error, "reconcile failed; will retry");
    Action::requeue(RETRY_AFTER)
}

/// Server-side applies the Deployment `spec` asks for, owned by `owner`; returns it as stored.
async fn apply(
    ctx: &Context,
    deployments: &Api<Deployment>,
    owner: &DynamicObject,
    namespace: &str,
    name: &str,
    spec: &Spec,
) -> Result<Deployment, Error> {
    let mut owner_reference = owner
        .controller_owner_ref(&ctx.resource)
        .ok_or(Error::NoOwnerReference)?;
    owner_reference.block_owner_deletion = Some(true);
    // The plugin's Deployment, with what the host adds when it applies one for a plugin.
    let mut desired = desired_deployment(name, spec);
    desired["metadata"]["namespace"] = json!(namespace);
    desired["metadata"]["ownerReferences"] = json!([owner_reference]);
    deployments
        .patch(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&desired),
        )
        .await
        .map_err(during("apply deployment"))
}

/// Merges `status` into the object's status subresource.
async fn patch_status(api: &Api<DynamicObject>, name: &str, status: Value) -> Result<(), Error> {
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .map_err(during("patch status"))?;
    Ok(())
}

/// Records an Event about `object` (events.k8s.io/v1).
async fn record(
    ctx: &Context,
    object: &DynamicObject,
    type_: EventType,
    reason: &str,
    note: String,
) -> Result<(), Error> {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: EVENT_ACTION.to_owned(),
        secondary: None,
    };
    ctx.recorder
        .publish(&event, &object.object_ref(&ctx.resource))
        .await
        .map_err(during("record event"))
}

/// Whether the status already reports `problem` for this generation of the spec.
fn already_reported(object: &Value, generation: i64, problem: &str) -> bool {
    let status = &object["status"];
    status["observedGeneration"].as_i64() == Some(generation)
        && status["invalidSpec"].as_str() == Some(problem)
}

/// What differs between the Deployment and the spec, as `"image a -> b"` and
/// `"replicas 1 -> 2"`; empty when nothing does.
fn changes(current: &Deployment, spec: &Spec) -> Vec<String> {
    let mut changes = Vec::new();
    let deployment_spec = current.spec.as_ref();
    let image = deployment_spec
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|pod| pod.containers.iter().find(|c| c.name == CONTAINER))
        .and_then(|container| container.image.as_deref());
    if image != Some(spec.image.as_str()) {
        let image = image.unwrap_or("<none>");
        changes.push(format!("image {image} -> {}", spec.image));
    }
    let replicas = deployment_spec.and_then(|s| s.replicas);
    if replicas != Some(spec.replicas) {
        let replicas = replicas.map_or_else(|| "<unset>".to_owned(), |r| r.to_string());
        changes.push(format!("replicas {replicas} -> {}", spec.replicas));
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(image: &str, replicas: i32) -> Spec {
        Spec {
            image: image.to_owned(),
            replicas,
        }
    }

    #[test]
    fn specs_are_checked_with_the_plugins_messages() {
        let parsed = Spec::from_object(&json!({"spec": {"image": "nginx", "replicas": 2}}));
        assert_eq!(parsed, Ok(spec("nginx", 2)));
        assert_eq!(
            Spec::from_object(&json!({"spec": {"image": "", "replicas": -2}})),
            Err("spec.image is empty; spec.replicas must not be negative, got -2".to_owned())
        );
        assert_eq!(
            Spec::from_object(&json!({})),
            Err("spec is missing".to_owned())
        );
    }

    #[test]
    fn changes_name_image_and_replicas() {
        let deployment: Deployment = serde_json::from_value(json!({
            "spec": {
                "replicas": 1,
                "selector": {},
                "template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]}},
            },
        }))
        .expect("a valid Deployment");
        assert!(changes(&deployment, &spec("nginx:1.25", 1)).is_empty());
        assert_eq!(
            changes(&deployment, &spec("nginx:1.27", 2)),
            ["image nginx:1.25 -> nginx:1.27", "replicas 1 -> 2"]
        );
    }
}
