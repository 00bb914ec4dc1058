"""The reconciler a plugin implements, and how it becomes the component's exports."""

from __future__ import annotations

import abc

from .context import Context
from .metadata import Metadata
from .request import Request
from .response import Response

__all__ = ["Reconciler", "export"]


class Reconciler(abc.ABC):
    """A reconciler plugin: what it declares, and how it brings the world in line with one
    object. The Python form of controller-runtime's ``Reconciler`` plus its builder's
    ``For``/``Owns``::

        class Hello(Reconciler):
            def metadata(self) -> Metadata:
                return Metadata("hello", Gvk("example.com", "v1", "Greeting"))

            def reconcile(self, ctx: Context, request: Request) -> Response:
                ctx.recorder.eventf(EventType.Normal, "Greeted", "Hello, %s", request.name)
                return Response.await_change()

        WitWorld = export(Hello)

    The host calls :meth:`metadata` once, when it loads the plugin, and :meth:`reconcile`
    each time an object of the reconciled kind (or an object it owns) changes, or a requeue
    falls due. Each call runs in a fresh instance of the component and of this class:
    nothing survives between calls. Keep state in the cluster.
    """

    @abc.abstractmethod
    def metadata(self) -> Metadata:
        """Describes the plugin: its name and the kinds it reconciles, owns and reads. The
        host refuses every client call on a kind not declared here. Called before any object
        exists: there is no :class:`Context`."""

    @abc.abstractmethod
    def reconcile(self, ctx: Context, request: Request) -> Response | None:
        """Brings the world in line with the object in ``request``.

        Reconciliation is level-triggered: look at what is (the object, its owned objects
        through ``ctx.client``) and make it what it should be, whatever happened before. The
        same call may come twice; make it idempotent. Returning ``None`` is
        :meth:`Response.await_change`.

        :raises TransientError: to make the host retry with backoff.
        :raises TerminalError: to make it wait for the object to change.
        """


def run(reconciler: type[Reconciler], ctx: Context, object_json: str) -> Response:
    """One reconcile, from the object's JSON to the plugin's answer: shared by the component
    export and the test kit, so that both parse requests and answers the same way."""
    request = Request.from_json(object_json)
    response = reconciler().reconcile(ctx, request)
    if response is None:
        return Response.await_change()
    if not isinstance(response, Response):
        raise TypeError(
            f"{reconciler.__name__}.reconcile returned {type(response).__name__}, "
            "not a Response or None"
        )
    return response


def export(reconciler: type[Reconciler]) -> type:
    """Turns a :class:`Reconciler` into the component's exports. Assign the result to the
    name ``WitWorld`` in the module you build (componentize-py looks for that name)::

        WitWorld = export(MyReconciler)

    In the component, the exported ``metadata`` and ``reconcile`` call the reconciler with a
    :class:`Context` over the host's imports. A :class:`ReconcileError` escaping
    ``reconcile`` (the SDK's own errors included) becomes the WIT ``reconcile-error``, keeping
    its kind; any other exception traps the instance, as a panic does in Rust, and its
    traceback goes to the host's log.

    componentize-py imports the module while it builds the component and keeps what the
    import made (a snapshot); each reconcile starts from that snapshot. Two consequences:

    - Import every module you need at the top of the module. The host gives plugins no
      files, so a module imported for the first time during a reconcile fails with
      ``ModuleNotFoundError``; one imported at the top is already in the snapshot.
    - Nothing a reconcile changes survives it: each call starts from the same snapshot.

    ``print()`` works but its output is discarded; write to ``ctx.log`` instead.

    Outside a component (tests, a plain ``import``) the bindings do not exist; the returned
    class then raises :class:`RuntimeError` when called: use the test kit instead.
    """
    if not (isinstance(reconciler, type) and issubclass(reconciler, Reconciler)):
        raise TypeError(f"export() takes a Reconciler subclass, not {reconciler!r}")
    try:
        # Imported here, while componentize-py pre-initializes the module at build time, so
        # that the bindings are part of the snapshot and not imported again on every call.
        from . import _guest
    except ImportError:
        return _native_stub(reconciler)
    return _guest.world(reconciler)


def _native_stub(reconciler: type[Reconciler]) -> type:
    def unavailable(*_args: object) -> None:
        raise RuntimeError(
            f"{reconciler.__name__} is only exported inside a component built with "
            "componentize-py; test it with wasm_reconciler_sdk.testkit.TestKit"
        )

    return type("WitWorld", (), {"metadata": unavailable, "reconcile": unavailable})
