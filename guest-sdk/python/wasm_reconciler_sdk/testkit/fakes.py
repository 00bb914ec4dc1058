"""Fake capabilities that record what a reconciler did and refuse what the host refuses."""

from __future__ import annotations

import copy
import enum
import json
import sys
from dataclasses import dataclass
from typing import Any

from ..client import MAX_PAYLOAD_BYTES, name_problem
from ..errors import ApiError, ClientError, EventError, ForbiddenError, InvalidError
from ..gvk import Gvk
from ..log import Level
from ..metadata import Metadata
from ..recorder import Event, EventType, truncate_message, validate_annotations, validate_reason

__all__ = [
    "MAX_API_CALLS",
    "MAX_METADATA_BYTES",
    "FakeClient",
    "FakeLog",
    "FakeRecorder",
    "LogLine",
    "Operation",
    "RecordedEvent",
    "RejectedEvent",
]

#: API calls one reconcile may make with the host's default ``--max-api-calls``.
MAX_API_CALLS = 256
#: Largest ``metadata`` of an applied object, in bytes of JSON.
MAX_METADATA_BYTES = 512 << 10


@dataclass(frozen=True)
class RecordedEvent:
    """An event a :class:`FakeRecorder` accepted, as the host would post it (the message
    truncated as the host truncates it). Compare with ``==``::

        assert outcome.events == [RecordedEvent.normal("Created", "Created deployment demo")]
    """

    event_type: EventType
    reason: str
    message: str
    #: The annotations, in the order given; empty for a plain event.
    annotations: tuple[tuple[str, str], ...] = ()

    @classmethod
    def normal(cls, reason: str, message: str) -> RecordedEvent:
        """A ``Normal`` event without annotations."""
        return cls(EventType.Normal, reason, message)

    @classmethod
    def warning(cls, reason: str, message: str) -> RecordedEvent:
        """A ``Warning`` event without annotations."""
        return cls(EventType.Warning, reason, message)

    def with_annotation(self, key: str, value: str) -> RecordedEvent:
        """The same event with one more annotation."""
        return RecordedEvent(
            self.event_type, self.reason, self.message, (*self.annotations, (key, value))
        )


@dataclass(frozen=True)
class RejectedEvent:
    """An event a :class:`FakeRecorder` refused, and the error the reconciler got."""

    event: RecordedEvent
    error: EventError


class FakeRecorder:
    """An :class:`~wasm_reconciler_sdk.recorder.EventSink` that keeps events in memory, after
    checking them with the host's rules (reason UpperCamelCase of 1-128 characters, valid
    annotation keys, 256 KiB of annotations). Long messages are truncated as the host
    truncates them."""

    def __init__(self) -> None:
        #: The events accepted so far, oldest first.
        self.events: list[RecordedEvent] = []
        #: The events refused so far, oldest first.
        self.rejected: list[RejectedEvent] = []

    def record(self, event: Event) -> None:
        recorded = RecordedEvent(event.event_type, event.reason, event.message, event.annotations)
        try:
            validate_reason(event.reason)
            validate_annotations(event.annotations)
        except EventError as error:
            self.rejected.append(RejectedEvent(recorded, error))
            raise
        self.events.append(
            RecordedEvent(
                event.event_type, event.reason, truncate_message(event.message), event.annotations
            )
        )


@dataclass(frozen=True)
class LogLine:
    """A line written through a :class:`FakeLog`."""

    level: Level
    message: str


class FakeLog:
    """A :class:`~wasm_reconciler_sdk.log.LogSink` that keeps lines in memory and also
    prints them to stderr, where pytest shows them for failed tests."""

    def __init__(self) -> None:
        #: The lines written so far, oldest first.
        self.lines: list[LogLine] = []

    def log(self, level: Level, message: str) -> None:
        print(f"[plugin {level.name}] {message}", file=sys.stderr)
        self.lines.append(LogLine(level, message))


class Operation(enum.Enum):
    """A client call, for :meth:`FakeClient.fail_next`."""

    GET = "get"
    APPLY = "apply"
    PATCH_STATUS = "patch_status"


@dataclass
class _Scope:
    metadata: Metadata
    calls_left: int = MAX_API_CALLS


class FakeClient:
    """An :class:`~wasm_reconciler_sdk.client.ObjectClient` over objects in memory, keyed by
    kind and name, that enforces what the host enforces.

    Once scoped to a plugin's :class:`~wasm_reconciler_sdk.Metadata` (the test kit does
    this):

    - ``get`` on an undeclared kind and ``apply`` on a kind the plugin does not own raise
      :class:`~wasm_reconciler_sdk.ForbiddenError`, and so does ``apply`` with a
      ``metadata.namespace`` other than the reconciled object's;
    - names are checked as the host checks them, and JSON over 3 MiB, ``metadata`` over
      512 KiB, an object without ``apiVersion``/``kind``/``metadata.name``, and applying the
      reconciled object itself raise :class:`~wasm_reconciler_sdk.InvalidError`;
    - the 257th call of one reconcile raises :class:`~wasm_reconciler_sdk.ApiError` 429.

    ``apply`` stores the object with the reconciled object's namespace and a controller owner
    reference to it, as the host does; ``patch_status`` merges into the reconciled object's
    status as a JSON merge patch.

    Caveats: ``apply`` replaces the stored object (keeping its ``status``) rather than merging
    field ownership as server-side apply does; there is no API-server validation or
    defaulting; every object lives in one namespace; and nothing acts on the objects (no
    pods become ready).
    """

    def __init__(self) -> None:
        self._objects: dict[tuple[Gvk, str], dict[str, Any]] = {}
        self._scope: _Scope | None = None
        self._reconciled: tuple[Gvk, str] | None = None
        self._failures: list[tuple[Operation, ClientError]] = []
        #: Every object applied so far, as the reconciler sent it, oldest first.
        self.applied: list[dict[str, Any]] = []
        #: Every status patch so far, as the reconciler sent it, oldest first.
        self.status_patches: list[dict[str, Any]] = []

    def scope_to(self, metadata: Metadata) -> FakeClient:
        """Allows from now on only what ``metadata`` declares, as the host does, and starts a
        new allowance of API calls. Returns the client."""
        self._scope = _Scope(metadata)
        return self

    def insert(self, obj: dict[str, Any]) -> None:
        """Stores an object (deep-copied), replacing one of the same kind and name.

        :raises ValueError: if it has no string ``apiVersion``, ``kind`` and
            ``metadata.name``: a mistake in the test itself.
        """
        obj = copy.deepcopy(obj)
        self._objects[_key_of(obj, ValueError)] = obj

    def set_reconciled(self, obj: dict[str, Any]) -> None:
        """Stores the object being reconciled: ``patch_status`` patches it, ``apply`` makes
        it the owner, and its namespace is the namespace of every object."""
        obj = copy.deepcopy(obj)
        key = _key_of(obj, ValueError)
        self._objects[key] = obj
        self._reconciled = key

    def object(self, kind: Gvk, name: str) -> dict[str, Any] | None:
        """A copy of the stored object of this kind and name, if any."""
        obj = self._objects.get((kind, name))
        return copy.deepcopy(obj) if obj is not None else None

    @property
    def reconciled(self) -> dict[str, Any] | None:
        """A copy of the object being reconciled, as stored now (status patches merged)."""
        return self.object(*self._reconciled) if self._reconciled else None

    def remove(self, kind: Gvk, name: str) -> dict[str, Any] | None:
        """Removes and returns the stored object of this kind and name, if any."""
        return self._objects.pop((kind, name), None)

    def objects(self) -> list[dict[str, Any]]:
        """Copies of every stored object, ordered by kind and name."""
        return [copy.deepcopy(self._objects[key]) for key in sorted(self._objects)]

    def fail_next(self, operation: Operation, error: ClientError) -> None:
        """Makes the next call of ``operation`` raise ``error``, e.g. to test how a
        reconciler handles an unavailable API server. Failures queue up in order."""
        self._failures.append((operation, error))

    # The ObjectClient protocol: what the SDK's Client calls, on JSON text.

    def get(self, kind: Gvk, name: str) -> str | None:
        self._take_failure(Operation.GET)
        if self._scope and not self._scope.metadata.may_get(kind):
            raise ForbiddenError(
                f"kind {kind.group}/{kind.version}/{kind.kind} is not declared in the "
                "plugin's metadata"
            )
        _check_name(name)
        self._take_call()
        obj = self._objects.get((kind, name))
        return None if obj is None else json.dumps(obj)

    def apply(self, object_json: str) -> str:
        self._take_failure(Operation.APPLY)
        _check_payload(object_json)
        try:
            sent = json.loads(object_json)
        except ValueError as error:
            raise InvalidError(f"not a JSON object: {error}") from None
        if not isinstance(sent, dict):
            raise InvalidError("not a JSON object")
        for field_name in ("apiVersion", "kind"):
            if not isinstance(sent.get(field_name), str) or not sent[field_name]:
                raise InvalidError(f"{field_name} is missing")
        kind = Gvk.from_api_version(sent["apiVersion"], sent["kind"])
        if self._scope and not self._scope.metadata.may_apply(kind):
            raise ForbiddenError(
                f"kind {sent['apiVersion']}/{sent['kind']} is not declared as owned in the "
                "plugin's metadata"
            )
        metadata = sent.get("metadata", {})
        if not isinstance(metadata, dict):
            raise InvalidError("metadata is not an object")
        if len(json.dumps(metadata)) > MAX_METADATA_BYTES:
            raise InvalidError(f"metadata is larger than {MAX_METADATA_BYTES} bytes")
        name = metadata.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidError("metadata.name is missing")
        _check_name(name)
        namespace = self._namespace()
        requested = metadata.get("namespace")
        if isinstance(requested, str) and namespace is not None and requested != namespace:
            raise ForbiddenError(
                f"namespace {requested!r} is outside the reconciled object's namespace {namespace}"
            )
        if (kind, name) == self._reconciled:
            raise InvalidError(
                f"{kind.kind} {name} is the reconciled object: an object cannot own itself"
            )
        self._take_call()

        stored = copy.deepcopy(sent)
        # Apply to the main resource never writes status: keep what is there.
        stored.pop("status", None)
        old = self._objects.get((kind, name))
        if old is not None and "status" in old:
            stored["status"] = copy.deepcopy(old["status"])
        stored_metadata = stored.setdefault("metadata", {})
        if namespace is not None:
            stored_metadata["namespace"] = namespace
        owner = self._owner_reference()
        if owner is not None:
            stored_metadata["ownerReferences"] = [owner]
        self.applied.append(sent)
        self._objects[(kind, name)] = stored
        return json.dumps(stored)

    def patch_status(self, status_json: str) -> str:
        self._take_failure(Operation.PATCH_STATUS)
        _check_payload(status_json)
        try:
            patch = json.loads(status_json)
        except ValueError as error:
            raise InvalidError(f"status is not JSON: {error}") from None
        if not isinstance(patch, dict):
            raise InvalidError("status must be a JSON object")
        if self._reconciled is None:
            raise InvalidError("there is no reconciled object to patch")
        self._take_call()
        self.status_patches.append(patch)
        obj = self._objects.setdefault(self._reconciled, {})
        obj["status"] = merge_patch(obj.get("status"), patch)
        return json.dumps(obj)

    def _take_failure(self, operation: Operation) -> None:
        for index, (op, error) in enumerate(self._failures):
            if op is operation:
                del self._failures[index]
                raise error

    def _take_call(self) -> None:
        if self._scope is None:
            return
        if self._scope.calls_left <= 0:
            raise ApiError(
                429,
                f"this reconcile made its {MAX_API_CALLS} API calls: the host allows no more "
                "in one reconcile (return and requeue instead of looping)",
            )
        self._scope.calls_left -= 1

    def _namespace(self) -> str | None:
        obj = self._objects.get(self._reconciled) if self._reconciled else None
        namespace = (obj or {}).get("metadata", {}).get("namespace")
        return namespace if isinstance(namespace, str) else None

    def _owner_reference(self) -> dict[str, Any] | None:
        obj = self._objects.get(self._reconciled) if self._reconciled else None
        if obj is None:
            return None
        metadata = obj.get("metadata", {})
        return {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": metadata.get("name"),
            "uid": metadata.get("uid"),
            "controller": True,
            "blockOwnerDeletion": True,
        }


def merge_patch(target: Any, patch: Any) -> Any:
    """Applies a JSON merge patch (RFC 7386) to ``target``; returns the result, leaving
    ``patch`` untouched."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _key_of(obj: Any, error: type[Exception]) -> tuple[Gvk, str]:
    def field_of(*path: str) -> str:
        value = obj
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, str):
            raise error(f"the object has no string {'.'.join(path)}")
        return value

    kind = Gvk.from_api_version(field_of("apiVersion"), field_of("kind"))
    return kind, field_of("metadata", "name")


def _check_name(name: object) -> None:
    problem = name_problem(name)
    if problem:
        raise InvalidError(f"object name {str(name)[:64]!r} is not valid: {problem}")


def _check_payload(text: str) -> None:
    size = len(text.encode())
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidError(
            f"{size} bytes of JSON: the limit for one call is {MAX_PAYLOAD_BYTES} bytes (the "
            "API server's own request limit)"
        )
