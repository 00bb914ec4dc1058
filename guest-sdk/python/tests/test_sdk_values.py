"""The SDK's plain values: kinds, metadata, requests, responses, errors."""

from datetime import timedelta

import pytest
from wasm_reconciler_sdk import (
    ApiError,
    DecodeError,
    EventError,
    ForbiddenError,
    Gvk,
    InvalidError,
    InvalidReasonError,
    Metadata,
    MetadataError,
    ReconcileError,
    Request,
    Response,
    TerminalError,
    TransientError,
    UnavailableError,
    error_context,
)

KIND = Gvk("mygroup.example.com", "v1alpha1", "MyResource")


def test_api_version_round_trips_for_named_and_core_groups():
    for gvk in (Gvk("apps", "v1", "Deployment"), Gvk("", "v1", "Secret")):
        assert Gvk.from_api_version(gvk.api_version, gvk.kind) == gvk
    assert Gvk("", "v1", "Pod").api_version == "v1"


def test_gvk_displays_like_apimachinery():
    assert str(Gvk("apps", "v1", "Deployment")) == "apps/v1, Kind=Deployment"
    assert str(Gvk("", "v1", "Pod")) == "v1, Kind=Pod"


@pytest.mark.parametrize("name", ["a", "myresource", "my-resource-2", "0", "a" * 63])
def test_dns1123_names_are_accepted(name):
    Metadata(name, KIND).validate()


@pytest.mark.parametrize(
    "name", ["", "-a", "a-", "My", "my_resource", "my.resource", "a" * 64, "a\n"]
)
def test_other_names_are_refused(name):
    with pytest.raises(MetadataError, match="DNS-1123"):
        Metadata(name, KIND).validate()


def test_kinds_need_a_version_and_a_kind():
    with pytest.raises(MetadataError, match="empty version or kind"):
        Metadata("ok", KIND, owns=[Gvk("apps", "", "Deployment")]).validate()


def test_permissions_follow_the_declarations():
    deployment, config_map, secret = (
        Gvk("apps", "v1", "Deployment"),
        Gvk("", "v1", "ConfigMap"),
        Gvk("", "v1", "Secret"),
    )
    metadata = Metadata("p", KIND, owns=[deployment], reads=[config_map])
    assert metadata.may_get(KIND) and not metadata.may_apply(KIND)
    assert metadata.may_get(deployment) and metadata.may_apply(deployment)
    assert metadata.may_get(config_map) and not metadata.may_apply(config_map)
    assert not metadata.may_get(secret) and not metadata.may_apply(secret)


def test_request_accessors_read_the_metadata():
    request = Request.from_json(
        '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a","uid":"u-1",'
        '"resourceVersion":"7","generation":4,"deletionTimestamp":"2024-01-01T00:00:00Z"}}'
    )
    assert request.name == "a"
    assert request.namespace is None
    assert request.generation == 4
    assert request.uid == "u-1"
    assert request.resource_version == "7"
    assert request.gvk == Gvk("apps", "v1", "Deployment")
    assert request.is_being_deleted
    assert request.object["metadata"]["uid"] == "u-1"


@pytest.mark.parametrize(
    "text", ["not json", "[]", '{"metadata":{}}', '{"metadata":{"name":1}}', '{"metadata":[]}']
)
def test_objects_without_a_name_are_terminal_errors(text):
    with pytest.raises(TerminalError):
        Request.from_json(text)


def test_delays_are_rounded_up_to_whole_milliseconds():
    def ms(delay):
        return Response.requeue_after(delay).requeue_after_ms

    assert ms(timedelta(seconds=2)) == 2000
    assert ms(2) == 2000
    assert ms(timedelta(microseconds=1500)) == 2
    assert ms(0.0015) == 2
    assert ms(timedelta(microseconds=1)) == 1
    assert ms(0) == 0
    assert ms(float("inf")) == 2**64 - 1
    assert ms(timedelta.max) < 2**64
    assert Response.await_change().requeue_after_ms is None
    assert Response.requeue_after(90).requeue_delay == timedelta(seconds=90)
    with pytest.raises(ValueError):
        Response.requeue_after(-1)


def test_errors_have_the_documented_kinds():
    transient = [UnavailableError("down"), ApiError(409, "conflict"), TransientError("x")]
    terminal = [
        ForbiddenError("no"),
        InvalidError("bad"),
        DecodeError("bad"),
        InvalidReasonError("r"),
        TerminalError("x"),
    ]
    assert all(e.transient and isinstance(e, TransientError) for e in transient)
    assert all(e.terminal and isinstance(e, TerminalError) for e in terminal)
    assert isinstance(InvalidReasonError("r"), EventError)
    assert ApiError(409, "conflict").is_conflict
    assert str(ApiError(409, "conflict")) == "API server refused the request (409): conflict"


def test_error_context_prefixes_the_message_and_keeps_the_kind():
    with pytest.raises(ReconcileError) as raised, error_context("get deployment demo"):
        raise UnavailableError("timed out")
    assert str(raised.value) == "get deployment demo: API server unavailable: timed out"
    assert raised.value.transient
    assert isinstance(raised.value.__cause__, UnavailableError)

    with pytest.raises(TerminalError, match="^apply: forbidden: no$"), error_context("apply"):
        raise ForbiddenError("no")
    with pytest.raises(KeyError), error_context("not ours"):
        raise KeyError("x")
