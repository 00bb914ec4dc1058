"""The glue between a :class:`Reconciler` and the WIT world, over componentize-py's bindings.

Imported only inside a component (componentize-py generates ``wit_world`` while it builds
one); natively the import fails and :func:`~wasm_reconciler_sdk.export` returns a stub. Not
part of the API.
"""

from __future__ import annotations

from componentize_py_types import Err
from wit_world.imports import client as wit_client
from wit_world.imports import event_recorder as wit_events
from wit_world.imports import log as wit_log
from wit_world.imports import types as wit_types

from .context import Context
from .errors import (
    ApiError,
    ForbiddenError,
    InvalidAnnotationError,
    InvalidError,
    InvalidReasonError,
    NoObjectError,
    ReconcileError,
    UnavailableError,
)
from .gvk import Gvk
from .log import Level
from .reconciler import Reconciler, run
from .recorder import Event, EventType

_EVENT_TYPES = {
    EventType.Normal: wit_events.EventType.NORMAL,
    EventType.Warning: wit_events.EventType.WARNING,
}
_LEVELS = {
    Level.TRACE: wit_log.Level.TRACE,
    Level.DEBUG: wit_log.Level.DEBUG,
    Level.INFO: wit_log.Level.INFO,
    Level.WARN: wit_log.Level.WARN,
    Level.ERROR: wit_log.Level.ERROR,
}


def world(reconciler: type[Reconciler]) -> type:
    """The class componentize-py calls for the world's exports, over ``reconciler``."""

    class WitWorld:
        def metadata(self) -> wit_types.PluginMetadata:
            metadata = reconciler().metadata()
            return wit_types.PluginMetadata(
                name=metadata.name,
                reconciles=_wit_gvk(metadata.reconciles),
                owns=[_wit_gvk(kind) for kind in metadata.owns],
                reads=[_wit_gvk(kind) for kind in metadata.reads],
            )

        def reconcile(self, request: wit_types.ReconcileRequest) -> wit_types.ReconcileResponse:
            ctx = Context(_HostEvents(), _HostClient(), _HostLog())
            try:
                response = run(reconciler, ctx, request.object)
            except ReconcileError as error:
                kind = (
                    wit_types.ReconcileError_Transient
                    if error.transient
                    else wit_types.ReconcileError_Terminal
                )
                raise Err(kind(str(error))) from None
            return wit_types.ReconcileResponse(requeue_after_ms=response.requeue_after_ms)

    WitWorld.__qualname__ = WitWorld.__name__ = "WitWorld"
    WitWorld.__doc__ = f"The component's exports, calling {reconciler.__qualname__}."
    return WitWorld


def _wit_gvk(kind: Gvk) -> wit_types.GroupVersionKind:
    return wit_types.GroupVersionKind(group=kind.group, version=kind.version, kind=kind.kind)


class _HostEvents:
    """Events through the ``event-recorder`` import."""

    def record(self, event: Event) -> None:
        if not isinstance(event.reason, str):
            raise InvalidReasonError(f"it must be a string, not {type(event.reason).__name__}")
        event_type = _EVENT_TYPES[event.event_type]
        try:
            if event.annotations:
                wit_events.annotated_event(
                    list(event.annotations), event_type, event.reason, event.message
                )
            else:
                wit_events.event(event_type, event.reason, event.message)
        except Err as err:
            error = err.value
            if isinstance(error, wit_events.EventError_InvalidReason):
                raise InvalidReasonError(error.value) from None
            if isinstance(error, wit_events.EventError_InvalidAnnotation):
                raise InvalidAnnotationError(error.value) from None
            raise NoObjectError() from None


class _HostClient:
    """Objects through the ``client`` import."""

    def get(self, kind: Gvk, name: str) -> str | None:
        try:
            return wit_client.get(_wit_gvk(kind), name)
        except Err as err:
            raise _client_error(err.value) from None

    def apply(self, object_json: str) -> str:
        try:
            return wit_client.apply(object_json)
        except Err as err:
            raise _client_error(err.value) from None

    def patch_status(self, status_json: str) -> str:
        try:
            return wit_client.patch_status(status_json)
        except Err as err:
            raise _client_error(err.value) from None


def _client_error(error: object) -> ReconcileError:
    if isinstance(error, wit_client.ClientError_Forbidden):
        return ForbiddenError(error.value)
    if isinstance(error, wit_client.ClientError_Invalid):
        return InvalidError(error.value)
    if isinstance(error, wit_client.ClientError_Api):
        code, message = error.value
        return ApiError(code, message)
    if isinstance(error, wit_client.ClientError_Unavailable):
        return UnavailableError(error.value)
    return UnavailableError(f"unexpected client error {error!r}")


class _HostLog:
    """Lines through the ``log`` import."""

    def log(self, level: Level, message: str) -> None:
        wit_log.log(_LEVELS[level], message)
