"""Runs a :class:`~wasm_reconciler_sdk.Reconciler` natively, against fakes that check what the
host checks.

A :class:`TestKit` holds a :class:`FakeClient` store across reconciles; each
:meth:`TestKit.reconcile` returns an :class:`Outcome` with the result and everything that
reconcile did: events recorded (and refused), objects applied, status patches, log lines, and
the object as it ends up::

    from wasm_reconciler_sdk.testkit import RecordedEvent, TestKit

    def test_greets():
        kit = TestKit(Greeter)
        # apiVersion and kind default to the reconciled kind from the plugin's metadata.
        outcome = kit.reconcile({"metadata": {"name": "world", "namespace": "default"}})

        assert outcome.error is None
        assert outcome.events == [RecordedEvent.normal("Greeted", "Hello, world")]

What is checked like the host:

- the plugin's metadata is validated (:meth:`~wasm_reconciler_sdk.Metadata.validate`);
- event reasons and annotations: a refused event raises the host's
  :class:`~wasm_reconciler_sdk.EventError` in the reconciler and shows up in
  :attr:`Outcome.rejected_events`, not in :attr:`Outcome.events`; long messages are
  truncated as the host truncates them;
- the client's scope: declared kinds, the reconciled object's namespace, object names,
  payload sizes and the number of API calls (see :class:`FakeClient`).

An exception that is not a :class:`~wasm_reconciler_sdk.ReconcileError` propagates out of
:meth:`TestKit.reconcile`, as it traps the instance in the host: use ``pytest.raises``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from ..context import Context
from ..errors import ReconcileError
from ..reconciler import Reconciler, run
from ..response import Response
from .fakes import (
    MAX_API_CALLS,
    FakeClient,
    FakeLog,
    FakeRecorder,
    LogLine,
    Operation,
    RecordedEvent,
    RejectedEvent,
    merge_patch,
)

__all__ = [
    "MAX_API_CALLS",
    "FakeClient",
    "FakeLog",
    "FakeRecorder",
    "LogLine",
    "Operation",
    "Outcome",
    "RecordedEvent",
    "RejectedEvent",
    "TestKit",
    "merge_patch",
]


@dataclass
class Outcome:
    """What one :meth:`TestKit.reconcile` did."""

    #: The response, if the reconcile succeeded (``None`` returned becomes
    #: ``Response.await_change()``).
    response: Response | None
    #: The error raised, if the reconcile failed.
    error: ReconcileError | None
    #: The events the host would have posted, in order.
    events: list[RecordedEvent] = field(default_factory=list)
    #: The events the host would have refused, with the error the reconciler got.
    rejected_events: list[RejectedEvent] = field(default_factory=list)
    #: The objects applied, as the reconciler sent them.
    applied: list[dict[str, Any]] = field(default_factory=list)
    #: The status patches, as the reconciler sent them.
    status_patches: list[dict[str, Any]] = field(default_factory=list)
    #: The log lines written.
    logs: list[LogLine] = field(default_factory=list)
    #: The reconciled object as stored after the reconcile, status patches merged in.
    object: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> dict[str, Any] | None:
        """The reconciled object's ``status`` after the reconcile, if it has one."""
        return self.object.get("status")


class TestKit:
    """Runs one reconciler class natively over a :class:`FakeClient` store that persists
    across reconciles, so that a test can reconcile, look, and reconcile again, as the host
    does.

    :raises MetadataError: if the reconciler's metadata is invalid, as the host would
        refuse to load it.
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, reconciler: type[Reconciler]) -> None:
        self._reconciler = reconciler
        self._metadata = reconciler().metadata()
        self._metadata.validate()
        #: The store: add, inspect or remove objects between reconciles, or inject failures
        #: with :meth:`FakeClient.fail_next`.
        self.client = FakeClient()

    def with_object(self, obj: dict[str, Any]) -> TestKit:
        """Stores an object (an owned child, something the plugin reads) before reconciling;
        returns the kit."""
        self.client.insert(obj)
        return self

    def reconcile(self, obj: dict[str, Any]) -> Outcome:
        """Reconciles ``obj`` as the host would, and reports what happened.

        ``obj`` is stored as the reconciled object first (replacing an earlier version), so
        that the reconciler can ``get`` it and patch its status. A missing ``apiVersion`` or
        ``kind`` is filled in from the metadata.

        :raises ValueError: if ``obj`` has no ``metadata.name``, or its kind is not the one
            the plugin reconciles: mistakes the host would refuse long before a reconcile.
        """
        kind = self._metadata.reconciles
        obj = copy.deepcopy(obj)
        obj.setdefault("apiVersion", kind.api_version)
        obj.setdefault("kind", kind.kind)
        if not isinstance(obj.get("metadata"), dict) or not isinstance(
            obj["metadata"].get("name"), str
        ):
            raise ValueError("the reconciled object needs a metadata.name")
        if (obj["apiVersion"], obj["kind"]) != (kind.api_version, kind.kind):
            raise ValueError(
                f"the object's kind {obj['apiVersion']}/{obj['kind']} is not {kind}, the kind "
                "the plugin reconciles"
            )

        self.client.scope_to(self._metadata)
        self.client.set_reconciled(obj)
        recorder, log = FakeRecorder(), FakeLog()
        applied_before = len(self.client.applied)
        patches_before = len(self.client.status_patches)
        ctx = Context(recorder, self.client, log)

        response: Response | None = None
        error: ReconcileError | None = None
        try:
            response = run(self._reconciler, ctx, json.dumps(obj))
        except ReconcileError as raised:
            error = raised

        return Outcome(
            response=response,
            error=error,
            events=recorder.events,
            rejected_events=recorder.rejected,
            applied=self.client.applied[applied_before:],
            status_patches=self.client.status_patches[patches_before:],
            logs=log.lines,
            object=self.client.reconciled or obj,
        )
