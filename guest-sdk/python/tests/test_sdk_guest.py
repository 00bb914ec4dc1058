"""The glue between the SDK and componentize-py's bindings, run natively.

componentize-py generates the real bindings only inside a component; its ``bindings``
command writes the same modules as stubs. These tests put those stubs on ``sys.path``, replace
the import functions with fakes, and call the world's exports as the component would.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import wasm_reconciler_sdk
from wasm_reconciler_sdk import (
    ApiError,
    EventType,
    ForbiddenError,
    Gvk,
    InvalidAnnotationError,
    InvalidError,
    InvalidReasonError,
    Metadata,
    NoObjectError,
    Reconciler,
    Response,
    TerminalError,
    UnavailableError,
    export,
)

WIT = Path(__file__).resolve().parents[3] / "wit" / "0.1.0"
GENERATED = ("wit_world", "componentize_py_types", "componentize_py_async_support", "poll_loop")


@pytest.fixture()
def bindings(tmp_path):
    """The generated modules, importable for one test, and gone afterwards."""
    tool = Path(sys.executable).parent / "componentize-py"
    if not tool.exists() and shutil.which("componentize-py") is None:
        pytest.skip("componentize-py is not installed (build.py test installs it)")
    command = str(tool) if tool.exists() else "componentize-py"
    subprocess.run(
        [command, "-d", str(WIT), "-w", "reconciler", "bindings", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import componentize_py_types
        from wit_world.imports import client, event_recorder, log, types

        yield componentize_py_types, client, event_recorder, log, types
    finally:
        sys.path.remove(str(tmp_path))
        for name in list(sys.modules):
            if name.split(".")[0] in GENERATED or name == "wasm_reconciler_sdk._guest":
                del sys.modules[name]
        # `from . import _guest` would find the attribute before looking at sys.modules.
        if hasattr(wasm_reconciler_sdk, "_guest"):
            delattr(wasm_reconciler_sdk, "_guest")


class Everything(Reconciler):
    """Uses every import once, then does what its spec says."""

    def metadata(self):
        return Metadata(
            "everything",
            Gvk("example.com", "v1", "Thing"),
            owns=[Gvk("apps", "v1", "Deployment")],
            reads=[Gvk("", "v1", "ConfigMap")],
        )

    def reconcile(self, ctx, request):
        spec = request.object["spec"]
        ctx.log.warning("reconciling %s", request.name)
        ctx.recorder.event(EventType.Normal, spec.get("reason", "Seen"), "seen")
        ctx.recorder.annotated_eventf({"example.com/n": "1"}, "Warning", "Annotated", "n=%d", 1)
        config = ctx.client.get(Gvk("", "v1", "ConfigMap"), "settings")
        stored = ctx.client.apply(
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}
        )
        ctx.client.patch_status({"config": config, "stored": stored["metadata"]["name"]})
        if spec.get("fail"):
            raise TerminalError("told to fail")
        return Response.requeue_after(1.5)


def install_fakes(monkeypatch, err_type, client, event_recorder, log, calls, error=None):
    def record(name, *args):
        calls.append((name, *args))
        if error and error[0] == name:
            raise err_type(error[1])

    monkeypatch.setattr(log, "log", lambda level, message: record("log", level, message))
    monkeypatch.setattr(event_recorder, "event", lambda *args: record("event", *args))
    monkeypatch.setattr(
        event_recorder, "annotated_event", lambda *args: record("annotated_event", *args)
    )

    def get(kind, name):
        record("get", kind.group, kind.version, kind.kind, name)
        return json.dumps({"data": {"mode": "fast"}})

    def apply(obj):
        record("apply", json.loads(obj))
        return obj

    def patch_status(status):
        record("patch_status", json.loads(status))
        return "{}"

    monkeypatch.setattr(client, "get", get)
    monkeypatch.setattr(client, "apply", apply)
    monkeypatch.setattr(client, "patch_status", patch_status)


def request(types, **spec):
    obj = {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": spec}
    return types.ReconcileRequest(object=json.dumps(obj))


def test_metadata_is_converted_to_the_wit_record(bindings):
    _, _, _, _, types = bindings
    metadata = export(Everything)().metadata()
    assert metadata == types.PluginMetadata(
        name="everything",
        reconciles=types.GroupVersionKind("example.com", "v1", "Thing"),
        owns=[types.GroupVersionKind("apps", "v1", "Deployment")],
        reads=[types.GroupVersionKind("", "v1", "ConfigMap")],
    )


def test_reconcile_calls_the_imports_and_converts_the_response(bindings, monkeypatch):
    cpt, client, event_recorder, log, types = bindings
    calls = []
    install_fakes(monkeypatch, cpt.Err, client, event_recorder, log, calls)

    response = export(Everything)().reconcile(request(types))

    assert response == types.ReconcileResponse(requeue_after_ms=1500)
    assert calls == [
        ("log", log.Level.WARN, "reconciling t"),
        ("event", event_recorder.EventType.NORMAL, "Seen", "seen"),
        (
            "annotated_event",
            [("example.com/n", "1")],
            event_recorder.EventType.WARNING,
            "Annotated",
            "n=1",
        ),
        ("get", "", "v1", "ConfigMap", "settings"),
        ("apply", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}),
        ("patch_status", {"config": {"data": {"mode": "fast"}}, "stored": "d"}),
    ]


def test_errors_become_the_wit_reconcile_error_of_their_kind(bindings, monkeypatch):
    cpt, client, event_recorder, log, types = bindings
    install_fakes(monkeypatch, cpt.Err, client, event_recorder, log, [])

    with pytest.raises(cpt.Err) as raised:
        export(Everything)().reconcile(request(types, fail=True))
    assert raised.value.value == types.ReconcileError_Terminal("told to fail")


@pytest.mark.parametrize(
    ("import_name", "wit_error", "sdk_error", "transient"),
    [
        ("get", "ClientError_Forbidden('no')", ForbiddenError, False),
        ("get", "ClientError_Invalid('bad')", InvalidError, False),
        ("get", "ClientError_Api((409, 'conflict'))", ApiError, True),
        ("get", "ClientError_Unavailable('down')", UnavailableError, True),
        ("event", "EventError_InvalidReason('r')", InvalidReasonError, False),
        ("event", "EventError_InvalidAnnotation('a')", InvalidAnnotationError, False),
        ("event", "EventError_NoObject()", NoObjectError, False),
    ],
)
def test_import_errors_become_sdk_errors(
    bindings, monkeypatch, import_name, wit_error, sdk_error, transient
):
    cpt, client, event_recorder, log, types = bindings
    module = client if wit_error.startswith("Client") else event_recorder
    error_value = eval(wit_error, vars(module))  # noqa: S307 - the test's own literals
    install_fakes(monkeypatch, cpt.Err, client, event_recorder, log, [], (import_name, error_value))

    from wasm_reconciler_sdk import _guest
    from wasm_reconciler_sdk.context import Context

    ctx = Context(_guest._HostEvents(), _guest._HostClient(), _guest._HostLog())
    with pytest.raises(sdk_error) as raised:
        if import_name == "get":
            ctx.client.get(Gvk("", "v1", "ConfigMap"), "c")
        else:
            ctx.recorder.event(EventType.Normal, "Seen", "m")
    assert raised.value.transient == transient

    # Escaping reconcile, each keeps its kind.
    expected = types.ReconcileError_Transient if transient else types.ReconcileError_Terminal
    with pytest.raises(cpt.Err) as escaped:
        export(Everything)().reconcile(request(types))
    assert isinstance(escaped.value.value, expected)
