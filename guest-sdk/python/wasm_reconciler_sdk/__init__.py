"""Write wasm-reconciler plugins in Python: Kubernetes reconcile logic that runs as a
sandboxed WebAssembly component inside the wasm-reconciler host.

A plugin is a :class:`Reconciler` subclass, exported under the name ``WitWorld``::

    from wasm_reconciler_sdk import (Context, EventType, Gvk, Metadata, Reconciler,
                                     Request, Response, export)

    class Hello(Reconciler):
        def metadata(self) -> Metadata:
            return Metadata("hello", Gvk("example.com", "v1", "Greeting"))

        def reconcile(self, ctx: Context, request: Request) -> Response:
            ctx.recorder.eventf(EventType.Normal, "Greeted", "Hello, %s", request.name)
            return Response.await_change()

    WitWorld = export(Hello)

Build it with ``python3 guest-sdk/python/build.py build --out DIR PLUGIN_DIR``
(componentize-py, pinned in ``requirements.txt``) and put the ``.wasm`` file in the host's
plugins directory. Import what the plugin uses at the top of its module: see :func:`export`.

Reading guide:

- :class:`Reconciler`: what a plugin implements: :class:`Metadata` once, and
  :class:`Request` -> :class:`Response` (or a :class:`ReconcileError`) for each reconcile.
- :class:`Context`: what a reconcile may use: the event :class:`Recorder`, the scoped
  :class:`Client`, and the :class:`Logger`.
- :mod:`wasm_reconciler_sdk.errors`: :class:`TransientError` and :class:`TerminalError`, and
  the SDK's own errors, each one or the other.
- :mod:`wasm_reconciler_sdk.testkit`: runs a reconciler natively (``pytest``) against fakes
  that check what the host checks.

Each capability in :class:`Context` is a thin class over a small protocol. Inside a component
it calls the host's WIT imports (``wasm-reconciler:plugin@0.1.0``); natively, where those
imports do not exist, the test kit's fakes stand in. So the same reconciler is unit-tested
with pytest and shipped as ``.wasm`` unchanged.
"""

from .client import Client, ObjectClient
from .context import Context
from .errors import (
    ApiError,
    ClientError,
    DecodeError,
    EventError,
    ForbiddenError,
    InvalidAnnotationError,
    InvalidError,
    InvalidReasonError,
    NoObjectError,
    ReconcileError,
    TerminalError,
    TransientError,
    UnavailableError,
    error_context,
)
from .gvk import Gvk
from .log import Level, Logger, LogSink
from .metadata import Metadata, MetadataError
from .reconciler import Reconciler, export
from .recorder import Event, EventSink, EventType, Recorder
from .request import Request
from .response import Response

#: ``EventType.Normal``, for ``recorder.event(Normal, ...)``.
Normal = EventType.Normal
#: ``EventType.Warning``. Importing it by name shadows Python's built-in ``Warning``
#: category in that module; write ``EventType.Warning`` where that matters.
Warning = EventType.Warning  # noqa: A001

#: The version of the WIT package this SDK implements.
WIT_PACKAGE = "wasm-reconciler:plugin@0.1.0"

__all__ = [
    "WIT_PACKAGE",
    "ApiError",
    "Client",
    "ClientError",
    "Context",
    "DecodeError",
    "Event",
    "EventError",
    "EventSink",
    "EventType",
    "ForbiddenError",
    "Gvk",
    "InvalidAnnotationError",
    "InvalidError",
    "InvalidReasonError",
    "Level",
    "LogSink",
    "Logger",
    "Metadata",
    "MetadataError",
    "NoObjectError",
    "Normal",
    "ObjectClient",
    "ReconcileError",
    "Reconciler",
    "Recorder",
    "Request",
    "Response",
    "TerminalError",
    "TransientError",
    "UnavailableError",
    "Warning",
    "error_context",
    "export",
]
