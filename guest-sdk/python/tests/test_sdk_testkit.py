"""The test kit: outcomes, the persistent store, and the host's checks in the fakes."""

import json

import pytest
from wasm_reconciler_sdk import (
    ApiError,
    Context,
    EventType,
    ForbiddenError,
    Gvk,
    InvalidError,
    Level,
    Metadata,
    MetadataError,
    Reconciler,
    Request,
    Response,
    UnavailableError,
)
from wasm_reconciler_sdk.testkit import (
    MAX_API_CALLS,
    FakeClient,
    LogLine,
    Operation,
    RecordedEvent,
    TestKit,
    merge_patch,
)

WIDGET = Gvk("example.com", "v1", "Widget")
CONFIG_MAP = Gvk("", "v1", "ConfigMap")
SECRET = Gvk("", "v1", "Secret")


class Widgets(Reconciler):
    """Exercises every capability; what it does is steered by the widget's spec."""

    def metadata(self):
        return Metadata("widgets", WIDGET, owns=[CONFIG_MAP])

    def reconcile(self, ctx: Context, request: Request):
        spec = request.object.get("spec", {})
        if spec.get("readSecret"):
            ctx.client.get(SECRET, "s")
        for _ in range(spec.get("extraGets", 0)):
            ctx.client.get(CONFIG_MAP, "other")
        if spec.get("crash"):
            raise KeyError("a bug")
        existing = ctx.client.get(CONFIG_MAP, request.name)
        ctx.client.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": request.name},
                "data": {"existed": str(existing is not None).lower()},
            }
        )
        ctx.log.info("synced %s", request.name)
        ctx.recorder.eventf(
            EventType.Normal, spec.get("reason", "Synced"), "Synced %s", request.name
        )
        ctx.recorder.annotated_event(
            {"example.com/id": "1"}, EventType.Warning, "Annotated", "with annotations"
        )
        ctx.client.patch_status({"observedGeneration": request.generation, "phase": "Ready"})
        if spec.get("done"):
            return None
        return Response.requeue_after(60)


def widget(**spec):
    return {"metadata": {"name": "w", "namespace": "ns", "generation": 2, "uid": "u"}, "spec": spec}


def test_outcome_reports_everything_one_reconcile_did():
    outcome = TestKit(Widgets).reconcile(widget())

    assert outcome.error is None
    assert outcome.response == Response.requeue_after(60)
    assert outcome.events == [
        RecordedEvent.normal("Synced", "Synced w"),
        RecordedEvent.warning("Annotated", "with annotations").with_annotation(
            "example.com/id", "1"
        ),
    ]
    assert len(outcome.applied) == 1 and outcome.applied[0]["data"]["existed"] == "false"
    assert outcome.status_patches == [{"observedGeneration": 2, "phase": "Ready"}]
    assert outcome.status == {"observedGeneration": 2, "phase": "Ready"}
    assert outcome.object["kind"] == "Widget"
    assert outcome.logs == [LogLine(Level.INFO, "synced w")]


def test_returning_none_awaits_change():
    assert TestKit(Widgets).reconcile(widget(done=True)).response == Response.await_change()


def test_store_persists_across_reconciles_but_outcomes_do_not_accumulate():
    kit = TestKit(Widgets)
    kit.reconcile(widget())
    second = kit.reconcile(widget())

    assert len(second.applied) == 1 and second.applied[0]["data"]["existed"] == "true"
    assert len(second.status_patches) == 1
    assert len(kit.client.applied) == 2
    stored = kit.client.object(CONFIG_MAP, "w")
    assert stored["metadata"]["namespace"] == "ns"
    assert stored["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "name": "w",
            "uid": "u",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_bad_reason_is_refused_like_the_host_refuses_it():
    outcome = TestKit(Widgets).reconcile(widget(reason="not synced"))

    assert outcome.error is not None and outcome.error.terminal
    assert str(outcome.error).startswith("invalid event reason")
    assert outcome.events == []
    assert [r.event.reason for r in outcome.rejected_events] == ["not synced"]


def test_undeclared_kind_is_forbidden():
    outcome = TestKit(Widgets).reconcile(widget(readSecret=True))
    assert isinstance(outcome.error, ForbiddenError) and outcome.error.terminal
    assert outcome.applied == []


def test_injected_unavailability_is_a_transient_error():
    kit = TestKit(Widgets)
    kit.client.fail_next(Operation.APPLY, UnavailableError("connection refused"))
    outcome = kit.reconcile(widget())
    assert outcome.error is not None and outcome.error.transient
    assert outcome.applied == []


def test_objects_given_up_front_are_visible():
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "w", "namespace": "ns"},
    }
    outcome = TestKit(Widgets).with_object(config_map).reconcile(widget())
    assert outcome.applied[0]["data"]["existed"] == "true"


def test_a_reconcile_runs_out_of_api_calls_with_a_429_and_the_next_starts_afresh():
    kit = TestKit(Widgets)
    outcome = kit.reconcile(widget(extraGets=MAX_API_CALLS))
    assert isinstance(outcome.error, ApiError) and outcome.error.code == 429
    assert outcome.error.transient
    assert kit.reconcile(widget()).error is None


def test_other_exceptions_propagate_as_they_trap_in_the_host():
    with pytest.raises(KeyError):
        TestKit(Widgets).reconcile(widget(crash=True))


def test_invalid_metadata_and_wrong_kinds_are_refused_up_front():
    class Bad(Widgets):
        def metadata(self):
            return Metadata("Bad_Name", WIDGET)

    with pytest.raises(MetadataError):
        TestKit(Bad)
    with pytest.raises(ValueError, match="not example.com/v1, Kind=Widget"):
        TestKit(Widgets).reconcile({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})


def scoped_client(**declared):
    client = FakeClient().scope_to(Metadata("p", Gvk("example.com", "v1", "Owner"), **declared))
    client.set_reconciled(
        {
            "apiVersion": "example.com/v1",
            "kind": "Owner",
            "metadata": {"name": "o", "namespace": "ns", "uid": "u-1"},
        }
    )
    return client


def config_map(name="c", **metadata):
    return json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **metadata}}
    )


def test_scoped_client_enforces_declared_kinds():
    deployment = Gvk("apps", "v1", "Deployment")
    client = scoped_client(reads=[deployment])

    assert client.get(deployment, "d") is None
    assert client.get(Gvk("example.com", "v1", "Owner"), "o") is not None
    with pytest.raises(ForbiddenError):
        client.get(SECRET, "s")
    with pytest.raises(ForbiddenError):
        client.apply(
            json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}})
        )
    assert client.applied == []


def test_apply_sets_namespace_and_owner_and_keeps_status():
    client = scoped_client(owns=[CONFIG_MAP])
    client.insert(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "status": {"x": 1}}
    )
    stored = json.loads(client.apply(config_map()))
    assert stored["metadata"]["namespace"] == "ns"
    assert stored["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert stored["status"] == {"x": 1}
    assert client.object(CONFIG_MAP, "c") == stored


@pytest.mark.parametrize(
    ("sent", "error", "match"),
    [
        (
            config_map(namespace="other"),
            ForbiddenError,
            "outside the reconciled object's namespace",
        ),
        ("{}", InvalidError, "apiVersion is missing"),
        ("[1]", InvalidError, "not a JSON object"),
        (json.dumps({"apiVersion": "v1", "kind": "ConfigMap"}), InvalidError, "metadata.name"),
        (config_map("a/b"), InvalidError, "may not contain '/'"),
        (config_map(".."), InvalidError, "may not be"),
        (config_map("x" * 254), InvalidError, "longer than 253"),
        (config_map(annotations={"a": "v" * (512 << 10)}), InvalidError, "metadata is larger"),
        (config_map(data="x" * (3 << 20)), InvalidError, "limit for one call"),
    ],
)
def test_apply_refuses_what_the_host_refuses(sent, error, match):
    client = scoped_client(owns=[CONFIG_MAP])
    with pytest.raises(error, match=match):
        client.apply(sent)
    assert client.applied == []


def test_the_reconciled_object_cannot_own_itself():
    client = scoped_client(owns=[Gvk("example.com", "v1", "Owner")])
    owner = json.dumps({"apiVersion": "example.com/v1", "kind": "Owner", "metadata": {"name": "o"}})
    with pytest.raises(InvalidError, match="cannot own itself"):
        client.apply(owner)


def test_get_checks_names():
    with pytest.raises(InvalidError, match="may not contain"):
        scoped_client(owns=[CONFIG_MAP]).get(CONFIG_MAP, "victim/secrets/x")


def test_patch_status_merges_into_the_reconciled_object():
    client = FakeClient()
    client.set_reconciled(
        {"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"}, "status": {"a": 1, "b": 2}}
    )
    client.patch_status('{"b": null, "c": 3}')
    assert client.reconciled["status"] == {"a": 1, "c": 3}
    with pytest.raises(InvalidError):
        client.patch_status("[1]")
    assert client.status_patches == [{"b": None, "c": 3}]


def test_injected_failures_hit_the_next_matching_call_once():
    client = FakeClient()
    client.fail_next(Operation.GET, UnavailableError("down"))
    with pytest.raises(InvalidError):
        client.patch_status("{}")  # no reconciled object; the GET failure stays queued
    with pytest.raises(UnavailableError):
        client.get(CONFIG_MAP, "c")
    assert client.get(CONFIG_MAP, "c") is None


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], {"a": "c"}, {"a": "c"}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_follows_rfc_7386(target, patch, expected):
    assert merge_patch(target, patch) == expected
