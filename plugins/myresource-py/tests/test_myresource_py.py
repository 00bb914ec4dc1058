"""The example's behaviour, through the SDK's test kit: the same cases as the Rust example's
unit tests (``plugins/myresource/src/lib.rs``)."""

import copy

import pytest
from myresource_py import DEPLOYMENT, PY_RESOURCE, MyResourceReconciler, WitWorld
from wasm_reconciler_sdk import ApiError, ForbiddenError, InvalidError, Response, UnavailableError
from wasm_reconciler_sdk.testkit import Operation, RecordedEvent, TestKit


def py_resource(spec):
    return {
        "apiVersion": "mygroup.example.com/v1alpha1",
        "kind": "PyResource",
        "metadata": {"name": "demo", "namespace": "default", "uid": "uid-1", "generation": 3},
        "spec": spec,
    }


def kit_with_deployment():
    """A kit where the Deployment already runs ``nginx:1.25`` with one replica."""
    kit = TestKit(MyResourceReconciler)
    outcome = kit.reconcile(py_resource({"image": "nginx:1.25", "replicas": 1}))
    assert outcome.error is None, outcome.error
    return kit


def test_metadata_is_valid_and_owns_deployments():
    metadata = MyResourceReconciler().metadata()
    metadata.validate()
    assert metadata.name == "myresource-py"
    assert metadata.reconciles == PY_RESOURCE
    assert metadata.owns == (DEPLOYMENT,)


def test_the_module_exports_a_world_that_only_runs_inside_a_component():
    with pytest.raises(RuntimeError, match="componentize-py"):
        WitWorld().metadata()


def test_creates_the_deployment_and_records_created():
    outcome = TestKit(MyResourceReconciler).reconcile(
        py_resource({"image": "nginx:1.27", "replicas": 2})
    )

    assert outcome.response == Response.await_change()
    assert outcome.events == [RecordedEvent.normal("Created", "Created deployment demo")]
    labels = {"app.kubernetes.io/name": "demo", "app.kubernetes.io/managed-by": "myresource-py"}
    assert outcome.applied == [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "demo", "labels": labels},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app.kubernetes.io/name": "demo"}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
                },
            },
        }
    ]


def test_status_reports_what_runs():
    outcome = TestKit(MyResourceReconciler).reconcile(
        py_resource({"image": "nginx:1.27", "replicas": 2})
    )
    assert outcome.status_patches == [
        {
            "observedGeneration": 3,
            "deployment": "demo",
            "image": "nginx:1.27",
            "replicas": 2,
            "readyReplicas": 0,
            "invalidSpec": None,
        }
    ]


def test_ready_replicas_come_from_the_deployment_status():
    kit = kit_with_deployment()
    deployment = kit.client.object(DEPLOYMENT, "demo")
    deployment["status"] = {"replicas": 1, "readyReplicas": 1}
    kit.client.insert(deployment)

    outcome = kit.reconcile(py_resource({"image": "nginx:1.25", "replicas": 1}))
    assert outcome.status["readyReplicas"] == 1


def test_unchanged_deployment_is_left_alone_without_an_event():
    outcome = kit_with_deployment().reconcile(py_resource({"image": "nginx:1.25", "replicas": 1}))

    assert outcome.error is None
    assert outcome.events == []
    assert outcome.applied == []
    assert len(outcome.status_patches) == 1


def test_changed_image_updates_the_deployment_and_says_what_changed():
    kit = kit_with_deployment()
    outcome = kit.reconcile(py_resource({"image": "nginx:1.27", "replicas": 1}))

    assert outcome.events == [
        RecordedEvent.normal("Updated", "Updated deployment demo: image nginx:1.25 -> nginx:1.27")
    ]
    assert len(outcome.applied) == 1
    stored = kit.client.object(DEPLOYMENT, "demo")
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert outcome.status["image"] == "nginx:1.27"


def test_changed_image_and_replicas_are_both_named():
    outcome = kit_with_deployment().reconcile(py_resource({"image": "nginx:1.27", "replicas": 2}))
    assert outcome.events == [
        RecordedEvent.normal(
            "Updated", "Updated deployment demo: image nginx:1.25 -> nginx:1.27, replicas 1 -> 2"
        )
    ]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"replicas": 1}, "spec.image is missing"),
        ({"image": " ", "replicas": 1}, "spec.image is empty"),
        ({"image": 7, "replicas": 1}, "spec.image must be a string, got 7"),
        ({"image": "nginx"}, "spec.replicas is missing"),
        ({"image": "nginx", "replicas": -1}, "spec.replicas must not be negative, got -1"),
        ({"image": "nginx", "replicas": 1.5}, "spec.replicas must be an integer, got 1.5"),
        ({"image": "nginx", "replicas": True}, "spec.replicas must be an integer, got true"),
        (
            {"image": "nginx", "replicas": 3_000_000_000},
            "spec.replicas must fit in an int32, got 3000000000",
        ),
        (
            {"image": "", "replicas": -2},
            "spec.image is empty; spec.replicas must not be negative, got -2",
        ),
        (None, "spec is missing"),
    ],
)
def test_invalid_specs_are_warned_about_recorded_in_status_and_terminal(spec, problem):
    outcome = TestKit(MyResourceReconciler).reconcile(py_resource(spec))

    assert outcome.error is not None and outcome.error.terminal
    assert str(outcome.error) == f"invalid spec: {problem}"
    assert outcome.events == [RecordedEvent.warning("InvalidSpec", problem)]
    assert outcome.status_patches == [{"observedGeneration": 3, "invalidSpec": problem}]
    assert outcome.applied == []


def test_an_invalid_spec_is_reported_once_per_generation():
    kit = TestKit(MyResourceReconciler)
    first = kit.reconcile(py_resource({"image": "nginx", "replicas": -1}))
    assert len(first.events) == 1

    # Requeued, e.g. by a change to the Deployment: the status already says it all.
    again = kit.reconcile(first.object)
    assert again.error is not None and again.error.terminal
    assert again.events == []
    assert again.status_patches == []

    # A new generation with the same problem is a new spec to complain about.
    following = copy.deepcopy(first.object)
    following["metadata"]["generation"] = 4
    assert len(kit.reconcile(following).events) == 1


def test_fixing_the_spec_clears_invalid_spec_from_the_status():
    kit = TestKit(MyResourceReconciler)
    kit.reconcile(py_resource({"image": "nginx"}))
    outcome = kit.reconcile(py_resource({"image": "nginx", "replicas": 1}))

    assert "invalidSpec" not in outcome.status
    assert outcome.status["replicas"] == 1


def test_unavailable_api_server_is_transient():
    kit = TestKit(MyResourceReconciler)
    kit.client.fail_next(Operation.GET, UnavailableError("connection refused"))
    outcome = kit.reconcile(py_resource({"image": "nginx", "replicas": 1}))

    assert outcome.error is not None and outcome.error.transient
    assert str(outcome.error) == "get deployment demo: API server unavailable: connection refused"
    assert outcome.events == [] and outcome.applied == []


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ApiError(409, "conflict"), True),
        (ForbiddenError("not owned"), False),
        (InvalidError("bad object"), False),
    ],
)
def test_api_errors_are_transient_and_refusals_terminal(error, transient):
    kit = TestKit(MyResourceReconciler)
    kit.client.fail_next(Operation.APPLY, error)
    outcome = kit.reconcile(py_resource({"image": "nginx", "replicas": 1}))

    assert outcome.error is not None and outcome.error.transient == transient
    assert outcome.events == [], "no Created event for a failed apply"


def test_objects_being_deleted_are_left_to_garbage_collection():
    obj = py_resource({"image": "nginx", "replicas": 1})
    obj["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    outcome = TestKit(MyResourceReconciler).reconcile(obj)

    assert outcome.error is None
    assert outcome.applied == [] and outcome.status_patches == []
