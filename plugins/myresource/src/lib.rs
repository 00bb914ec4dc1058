//! Example wasm-reconciler plugin: runs a Deployment for each `MyResource`.
//!
//! A `MyResource` (`mygroup.example.com/v1alpha1`, namespaced, with a status subresource)
//! asks for an image and a number of replicas:
//!
//! ```yaml
//! apiVersion: mygroup.example.com/v1alpha1
//! kind: MyResource
//! metadata: {name: demo, namespace: default}
//! spec: {image: "nginx:1.27", replicas: 2}
//! ```
//!
//! The plugin keeps a Deployment of the same name in line with it, records `Created` and
//! `Updated` events when it changes the Deployment, and reports in the status what it
//! runs. An invalid spec gets a `Warning InvalidSpec` event, `status.invalidSpec`, and a
//! terminal error: nothing to retry until someone fixes the spec.
//!
//! Build: `cargo build --target wasm32-wasip2 --release -p myresource`, then put
//! `myresource.wasm` in the host's plugins directory.

use serde::Deserialize;
use wasm_reconciler_sdk::prelude::*;
use wasm_reconciler_sdk::serde_json::{Value, json};

/// The kind this plugin reconciles.
pub const MY_RESOURCE: Gvk = Gvk::from_static("mygroup.example.com", "v1alpha1", "MyResource");

/// The kind this plugin owns: one per `MyResource`, of the same name.
pub const DEPLOYMENT: Gvk = Gvk::from_static("apps", "v1", "Deployment");

/// The plugin's name: its controller, field manager and event source.
pub const PLUGIN_NAME: &str = "myresource";

/// The name of the one container in each Deployment.
pub const CONTAINER: &str = "app";

/// Reconciles `MyResource` objects into Deployments.
pub struct MyResourceReconciler;

#[cfg(feature = "export")]
wasm_reconciler_sdk::export_reconciler!(MyResourceReconciler);

impl Reconciler for MyResourceReconciler {
    fn metadata() -> Metadata {
        Metadata::new(PLUGIN_NAME, MY_RESOURCE).owns(DEPLOYMENT)
    }

    fn reconcile(ctx: &Context, request: Request) -> Result<Response, Error> {
        let name = request.name();
        let generation = request.generation().unwrap_or_default();
        if request.is_being_deleted() {
            // The Deployment carries an owner reference: garbage collection removes it.
            ctx.log().debug("being deleted; nothing to do");
            return Ok(Response::await_change());
        }

        let spec = match Spec::from_object(request.object_value()) {
            Ok(spec) => spec,
            Err(problem) => {
                // A change to the Deployment requeues this object too: say it once per spec.
                if !already_reported(&request, generation, &problem) {
                    eventf!(ctx.recorder(), Warning, "InvalidSpec", "{problem}")?;
                    ctx.client()
                        .patch_status(
                            &json!({"observedGeneration": generation, "invalidSpec": problem}),
                        )
                        .context("patch status")?;
                }
                return Err(Error::terminal(format!("invalid spec: {problem}")));
            }
        };

        let existing: Option<DeploymentView> = ctx
            .client()
            .get(&DEPLOYMENT, name)
            .with_context(|| format!("get deployment {name}"))?;
        let deployment = match existing {
            None => {
                let stored = apply(ctx, name, &spec)?;
                eventf!(
                    ctx.recorder(),
                    Normal,
                    "Created",
                    "Created deployment {name}"
                )?;
                ctx.log().info(format_args!("created deployment {name}"));
                stored
            }
            Some(current) => {
                let changes = changes(&current, &spec);
                if changes.is_empty() {
                    ctx.log()
                        .debug(format_args!("deployment {name} is up to date"));
                    current
                } else {
                    let stored = apply(ctx, name, &spec)?;
                    let changes = changes.join(", ");
                    eventf!(
                        ctx.recorder(),
                        Normal,
                        "Updated",
                        "Updated deployment {name}: {changes}"
                    )?;
                    ctx.log()
                        .info(format_args!("updated deployment {name}: {changes}"));
                    stored
                }
            }
        };

        ctx.client()
            .patch_status(&json!({
                "observedGeneration": generation,
                "deployment": name,
                "image": spec.image,
                "replicas": spec.replicas,
                "readyReplicas": deployment.status.ready_replicas.unwrap_or(0),
                // `null` removes a message left by an earlier invalid spec (JSON merge patch).
                "invalidSpec": null,
            }))
            .context("patch status")?;
        Ok(Response::await_change())
    }
}

/// What a `MyResource` asks for, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The container image; not empty.
    pub image: String,
    /// How many replicas; not negative.
    pub replicas: i32,
}

impl Spec {
    /// Reads and checks the `spec` of a `MyResource`.
    ///
    /// # Errors
    ///
    /// A message naming every problem found, e.g. `"spec.image is empty; spec.replicas
    /// must not be negative, got -1"`.
    pub fn from_object(object: &Value) -> Result<Self, String> {
        let Some(spec) = object.get("spec").filter(|spec| !spec.is_null()) else {
            return Err("spec is missing".to_owned());
        };
        let mut problems = Vec::new();
        let image = match spec.get("image") {
            None | Some(Value::Null) => Err("spec.image is missing".to_owned()),
            Some(Value::String(image)) if image.trim().is_empty() => {
                Err("spec.image is empty".to_owned())
            }
            Some(Value::String(image)) => Ok(image.clone()),
            Some(other) => Err(format!("spec.image must be a string, got {other}")),
        };
        let replicas = match spec.get("replicas") {
            None | Some(Value::Null) => Err("spec.replicas is missing".to_owned()),
            Some(value) => match value.as_i64() {
                Some(n) if n < 0 => Err(format!("spec.replicas must not be negative, got {n}")),
                Some(n) => i32::try_from(n)
                    .map_err(|_| format!("spec.replicas must fit in an int32, got {n}")),
                None => Err(format!("spec.replicas must be an integer, got {value}")),
            },
        };
        let image = image.map_err(|problem| problems.push(problem)).ok();
        let replicas = replicas.map_err(|problem| problems.push(problem)).ok();
        match (image, replicas) {
            (Some(image), Some(replicas)) => Ok(Self { image, replicas }),
            _ => Err(problems.join("; ")),
        }
    }
}

/// Whether the status already reports `problem` for this generation of the spec.
fn already_reported(request: &Request, generation: i64, problem: &str) -> bool {
    let status = &request.object_value()["status"];
    status["observedGeneration"].as_i64() == Some(generation)
        && status["invalidSpec"].as_str() == Some(problem)
}

/// The labels of the Deployment and its pods.
fn labels(name: &str) -> Value {
    json!({
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/managed-by": PLUGIN_NAME,
    })
}

/// The Deployment a `MyResource` called `name` should have. The host adds the namespace and
/// the controller owner reference when it applies it.
pub fn desired_deployment(name: &str, spec: &Spec) -> Value {
    json!({
        "apiVersion": DEPLOYMENT.api_version(),
        "kind": DEPLOYMENT.kind(),
        "metadata": {"name": name, "labels": labels(name)},
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": labels(name)},
                "spec": {"containers": [{"name": CONTAINER, "image": spec.image}]},
            },
        },
    })
}

fn apply(ctx: &Context, name: &str, spec: &Spec) -> Result<DeploymentView, Error> {
    let stored = ctx
        .client()
        .apply(&desired_deployment(name, spec))
        .with_context(|| format!("apply deployment {name}"))?;
    Ok(DeploymentView::deserialize(&stored)?)
}

/// What differs between the Deployment and the spec, as `"image a -> b"` and
/// `"replicas 1 -> 2"`; empty when nothing does.
fn changes(current: &DeploymentView, spec: &Spec) -> Vec<String> {
    let mut changes = Vec::new();
    let image = current
        .spec
        .template
        .spec
        .containers
        .iter()
        .find(|container| container.name == CONTAINER)
        .and_then(|container| container.image.as_deref());
    if image != Some(spec.image.as_str()) {
        changes.push(format!(
            "image {} -> {}",
            image.unwrap_or("<none>"),
            spec.image
        ));
    }
    if current.spec.replicas != Some(spec.replicas) {
        let replicas = current
            .spec
            .replicas
            .map_or_else(|| "<unset>".to_owned(), |r| r.to_string());
        changes.push(format!("replicas {replicas} -> {}", spec.replicas));
    }
    changes
}

/// The fields of a Deployment this plugin reads; everything else is ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DeploymentView {
    spec: DeploymentSpecView,
    status: DeploymentStatusView,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DeploymentSpecView {
    replicas: Option<i32>,
    template: PodTemplateView,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PodTemplateView {
    spec: PodSpecView,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PodSpecView {
    containers: Vec<ContainerView>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ContainerView {
    name: String,
    image: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct DeploymentStatusView {
    ready_replicas: Option<i32>,
}

#[cfg(test)]
mod tests {
    use wasm_reconciler_sdk::testkit::{Operation, Outcome, RecordedEvent, TestKit};
    use wasm_reconciler_sdk::{ClientError, ErrorKind};

    use super::*;

    fn my_resource(spec: Value) -> Value {
        json!({
            "apiVersion": "mygroup.example.com/v1alpha1",
            "kind": "MyResource",
            "metadata": {"name": "demo", "namespace": "default", "uid": "uid-1", "generation": 3},
            "spec": spec,
        })
    }

    fn reconcile(kit: &mut TestKit, spec: Value) -> Outcome {
        kit.reconcile::<MyResourceReconciler>(my_resource(spec))
    }

    /// A kit where the Deployment already runs `nginx:1.25` with one replica.
    fn kit_with_deployment() -> TestKit {
        let mut kit = TestKit::new();
        let outcome = reconcile(&mut kit, json!({"image": "nginx:1.25", "replicas": 1}));
        assert!(outcome.result().is_ok(), "{:?}", outcome.result());
        kit
    }

    #[test]
    fn metadata_is_valid_and_owns_deployments() {
        let metadata = MyResourceReconciler::metadata();
        assert_eq!(metadata.validate(), Ok(()));
        assert_eq!(metadata.name(), "myresource");
        assert_eq!(metadata.reconciled_kind(), &MY_RESOURCE);
        assert_eq!(metadata.owned_kinds(), [DEPLOYMENT]);
    }

    #[test]
    fn creates_the_deployment_and_records_created() {
        let outcome = reconcile(
            &mut TestKit::new(),
            json!({"image": "nginx:1.27", "replicas": 2}),
        );

        assert_eq!(outcome.response(), Some(&Response::await_change()));
        assert_eq!(
            outcome.events(),
            [RecordedEvent::normal("Created", "Created deployment demo")]
        );
        assert_eq!(
            outcome.applied(),
            [json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": "demo",
                    "labels": {"app.kubernetes.io/name": "demo", "app.kubernetes.io/managed-by": "myresource"},
                },
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app.kubernetes.io/name": "demo"}},
                    "template": {
                        "metadata": {
                            "labels": {"app.kubernetes.io/name": "demo", "app.kubernetes.io/managed-by": "myresource"},
                        },
                        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
                    },
                },
            })]
        );
    }

    #[test]
    fn status_reports_what_runs() {
        let outcome = reconcile(
            &mut TestKit::new(),
            json!({"image": "nginx:1.27", "replicas": 2}),
        );

        assert_eq!(
            outcome.status_patches(),
            [json!({
                "observedGeneration": 3,
                "deployment": "demo",
                "image": "nginx:1.27",
                "replicas": 2,
                "readyReplicas": 0,
                "invalidSpec": null,
            })]
        );
    }

    #[test]
    fn ready_replicas_come_from_the_deployment_status() {
        let mut kit = kit_with_deployment();
        let mut deployment = kit.client().object(&DEPLOYMENT, "demo").unwrap();
        deployment["status"] = json!({"replicas": 1, "readyReplicas": 1});
        kit.client().insert(deployment);

        let outcome = reconcile(&mut kit, json!({"image": "nginx:1.25", "replicas": 1}));
        assert_eq!(outcome.status().unwrap()["readyReplicas"], 1);
    }

    #[test]
    fn unchanged_deployment_is_left_alone_without_an_event() {
        let mut kit = kit_with_deployment();
        let outcome = reconcile(&mut kit, json!({"image": "nginx:1.25", "replicas": 1}));

        assert!(outcome.result().is_ok());
        assert!(outcome.events().is_empty(), "{:?}", outcome.events());
        assert!(outcome.applied().is_empty());
        assert_eq!(outcome.status_patches().len(), 1);
    }

    #[test]
    fn changed_image_updates_the_deployment_and_says_what_changed() {
        let mut kit = kit_with_deployment();
        let outcome = reconcile(&mut kit, json!({"image": "nginx:1.27", "replicas": 1}));

        assert_eq!(
            outcome.events(),
            [RecordedEvent::normal(
                "Updated",
                "Updated deployment demo: image nginx:1.25 -> nginx:1.27"
            )]
        );
        assert_eq!(outcome.applied().len(), 1);
        let stored = kit.client().object(&DEPLOYMENT, "demo").unwrap();
        assert_eq!(
            stored["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.27"
        );
        assert_eq!(outcome.status().unwrap()["image"], "nginx:1.27");
    }

    #[test]
    fn changed_image_and_replicas_are_both_named() {
        let mut kit = kit_with_deployment();
        let outcome = reconcile(&mut kit, json!({"image": "nginx:1.27", "replicas": 2}));

        assert_eq!(
            outcome.events(),
            [RecordedEvent::normal(
                "Updated",
                "Updated deployment demo: image nginx:1.25 -> nginx:1.27, replicas 1 -> 2"
            )]
        );
    }

    #[test]
    fn invalid_specs_are_warned_about_recorded_in_status_and_terminal() {
        let cases = [
            (json!({"replicas": 1}), "spec.image is missing"),
            (json!({"image": " ", "replicas": 1}), "spec.image is empty"),
            (
                json!({"image": 7, "replicas": 1}),
                "spec.image must be a string, got 7",
            ),
            (json!({"image": "nginx"}), "spec.replicas is missing"),
            (
                json!({"image": "nginx", "replicas": -1}),
                "spec.replicas must not be negative, got -1",
            ),
            (
                json!({"image": "nginx", "replicas": 1.5}),
                "spec.replicas must be an integer, got 1.5",
            ),
            (
                json!({"image": "nginx", "replicas": 3_000_000_000_i64}),
                "spec.replicas must fit in an int32, got 3000000000",
            ),
            (
                json!({"image": "", "replicas": -2}),
                "spec.image is empty; spec.replicas must not be negative, got -2",
            ),
            (Value::Null, "spec is missing"),
        ];
        for (spec, problem) in cases {
            let outcome = reconcile(&mut TestKit::new(), spec.clone());

            let error = outcome
                .error()
                .unwrap_or_else(|| panic!("{spec} should be refused"));
            assert_eq!(error.kind(), ErrorKind::Terminal, "{spec}");
            assert_eq!(error.message(), format!("invalid spec: {problem}"));
            assert_eq!(
                outcome.events(),
                [RecordedEvent::warning("InvalidSpec", problem)],
                "{spec}"
            );
            assert_eq!(
                outcome.status_patches(),
                [json!({"observedGeneration": 3, "invalidSpec": problem})]
            );
            assert!(outcome.applied().is_empty(), "{spec}");
        }
    }

    #[test]
    fn an_invalid_spec_is_reported_once_per_generation() {
        let mut kit = TestKit::new();
        let first = reconcile(&mut kit, json!({"image": "nginx", "replicas": -1}));
        assert_eq!(first.events().len(), 1);

        // Requeued, e.g. by a change to the Deployment: the status already says it all.
        let again = kit.reconcile::<MyResourceReconciler>(first.object().clone());
        assert!(again.error().is_some_and(Error::is_terminal));
        assert!(again.events().is_empty(), "{:?}", again.events());
        assert!(again.status_patches().is_empty());

        // A new generation with the same problem is a new spec to complain about.
        let mut next = first.object().clone();
        next["metadata"]["generation"] = json!(4);
        assert_eq!(
            kit.reconcile::<MyResourceReconciler>(next).events().len(),
            1
        );
    }

    #[test]
    fn fixing_the_spec_clears_invalid_spec_from_the_status() {
        let mut kit = TestKit::new();
        let _ = reconcile(&mut kit, json!({"image": "nginx"}));
        let outcome = reconcile(&mut kit, json!({"image": "nginx", "replicas": 1}));

        let status = outcome.status().unwrap();
        assert!(status.get("invalidSpec").is_none(), "{status}");
        assert_eq!(status["replicas"], 1);
    }

    #[test]
    fn unavailable_api_server_is_transient() {
        let mut kit = TestKit::new();
        kit.client().fail_next(
            Operation::Get,
            ClientError::Unavailable("connection refused".into()),
        );
        let outcome = reconcile(&mut kit, json!({"image": "nginx", "replicas": 1}));

        let error = outcome.error().unwrap();
        assert_eq!(error.kind(), ErrorKind::Transient);
        assert_eq!(
            error.message(),
            "get deployment demo: API server unavailable: connection refused"
        );
        assert!(outcome.events().is_empty() && outcome.applied().is_empty());
    }

    #[test]
    fn api_errors_are_transient_and_refusals_terminal() {
        let cases = [
            (
                ClientError::Api {
                    code: 409,
                    message: "conflict".into(),
                },
                ErrorKind::Transient,
            ),
            (
                ClientError::Forbidden("not owned".into()),
                ErrorKind::Terminal,
            ),
            (
                ClientError::Invalid("bad object".into()),
                ErrorKind::Terminal,
            ),
        ];
        for (client_error, kind) in cases {
            let mut kit = TestKit::new();
            kit.client()
                .fail_next(Operation::Apply, client_error.clone());
            let outcome = reconcile(&mut kit, json!({"image": "nginx", "replicas": 1}));

            assert_eq!(
                outcome.error().map(Error::kind),
                Some(kind),
                "{client_error}"
            );
            assert!(
                outcome.events().is_empty(),
                "no Created event for a failed apply"
            );
        }
    }

    #[test]
    fn objects_being_deleted_are_left_to_garbage_collection() {
        let mut object = my_resource(json!({"image": "nginx", "replicas": 1}));
        object["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        let outcome = TestKit::new().reconcile::<MyResourceReconciler>(object);

        assert!(outcome.result().is_ok());
        assert!(outcome.applied().is_empty() && outcome.status_patches().is_empty());
    }
}
