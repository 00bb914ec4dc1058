"""Kubernetes Events about the reconciled object, like controller-runtime's ``EventRecorder``.

Every event is about the object of the current reconcile; the host posts it as an
``events.k8s.io/v1`` Event that ``kubectl describe`` shows. The validation functions here are
the rules the host applies, so that the test kit refuses what the host would refuse.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, Union

from .errors import InvalidAnnotationError, InvalidReasonError

__all__ = [
    "MAX_ANNOTATIONS_BYTES",
    "MAX_MESSAGE_BYTES",
    "MAX_REASON_LEN",
    "Event",
    "EventSink",
    "EventType",
    "Recorder",
    "truncate_message",
    "validate_annotations",
    "validate_reason",
]

#: The longest reason the host accepts, in characters.
MAX_REASON_LEN = 128
#: The longest message the host posts, in UTF-8 bytes; longer ones are truncated.
MAX_MESSAGE_BYTES = 1024
#: The most the keys and values of an event's annotations may add up to, in UTF-8 bytes.
MAX_ANNOTATIONS_BYTES = 256 * 1024

_REASON = re.compile(r"[A-Z][A-Za-z0-9]*")
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")


class EventType(str, enum.Enum):
    """The type of an event. Plain strings ``"Normal"`` and ``"Warning"`` work too."""

    #: Something expected happened (``corev1.EventTypeNormal``).
    Normal = "Normal"
    #: Something someone should look at (``corev1.EventTypeWarning``).
    Warning = "Warning"

    def __str__(self) -> str:
        return self.value


Annotations = Union[Mapping[str, str], Iterable[tuple[str, str]]]


@dataclass(frozen=True)
class Event:
    """One event, as handed to an :class:`EventSink`."""

    event_type: EventType
    reason: str
    message: str
    #: Annotations for the Event object, in the order given; empty for a plain event.
    annotations: tuple[tuple[str, str], ...] = ()


class EventSink(Protocol):
    """Where a :class:`Recorder` sends events: the host's ``event-recorder`` import in a
    plugin, a :class:`~wasm_reconciler_sdk.testkit.FakeRecorder` in tests."""

    def record(self, event: Event) -> None:
        """Records one event about the reconciled object.

        :raises EventError: if the event is refused; nothing is recorded then.
        """


class Recorder:
    """Records Events about the reconciled object, like controller-runtime's
    ``EventRecorder``::

        ctx.recorder.event(EventType.Normal, "Synced", "Everything is up to date")
        ctx.recorder.eventf(EventType.Normal, "Created", "Created deployment %s", name)
        ctx.recorder.annotated_eventf({"example.com/revision": str(rev)},
                                      EventType.Normal, "RolledOut", "Rolled out revision %d", rev)

    Recording does not wait for the API server: the host validates the event, queues it and
    delivers it in the background, folding repeats together the way client-go does.

    Each method raises the host's verdict on a refused event as an :class:`EventError`
    (terminal): a refused event is a bug in the plugin. Catch it to ignore it the way Go code
    does.
    """

    __slots__ = ("_sink",)

    def __init__(self, sink: EventSink) -> None:
        self._sink = sink

    def event(self, event_type: EventType | str, reason: str, message: str) -> None:
        """Records an event (``Event(object, type, reason, message)``). A message over 1024
        bytes is truncated on a character boundary and ends with ``" ..."``.

        :raises InvalidReasonError: unless ``reason`` is 1-128 characters of UpperCamelCase.
        """
        self._sink.record(Event(EventType(event_type), reason, str(message)))

    def eventf(self, event_type: EventType | str, reason: str, fmt: str, *args: object) -> None:
        """Records an event with a formatted message (``Eventf``): ``fmt % args``, printf
        style as in Go and in :mod:`logging`; with no ``args``, ``fmt`` is the message as it
        is.

        :raises InvalidReasonError: as for :meth:`event`.
        """
        self.event(event_type, reason, fmt % args if args else fmt)

    def annotated_event(
        self,
        annotations: Annotations,
        event_type: EventType | str,
        reason: str,
        message: str,
    ) -> None:
        """Records an event with annotations on the Event object (``AnnotatedEventf``);
        ``annotations`` is a mapping or an iterable of key-value pairs.

        :raises InvalidReasonError: as for :meth:`event`.
        :raises InvalidAnnotationError: unless every key is a valid annotation key
            (``example.com/name``), no key comes twice, and all of them fit in 256 KiB.
        """
        pairs = annotations.items() if isinstance(annotations, Mapping) else annotations
        self._sink.record(
            Event(
                EventType(event_type),
                reason,
                str(message),
                tuple((str(key), str(value)) for key, value in pairs),
            )
        )

    def annotated_eventf(
        self,
        annotations: Annotations,
        event_type: EventType | str,
        reason: str,
        fmt: str,
        *args: object,
    ) -> None:
        """Records an annotated event with a formatted message, as :meth:`eventf` formats.

        :raises EventError: as for :meth:`annotated_event`.
        """
        self.annotated_event(annotations, event_type, reason, fmt % args if args else fmt)

    def __repr__(self) -> str:
        return "Recorder(..)"


def validate_reason(reason: object) -> None:
    """Checks a reason the way the host does: 1-128 characters matching
    ``^[A-Z][A-Za-z0-9]*$``.

    :raises InvalidReasonError: saying what is wrong.
    """
    if not isinstance(reason, str):
        problem = f"it must be a string, not {type(reason).__name__}"
    elif not reason:
        problem = "it is empty"
    elif len(reason) > MAX_REASON_LEN:
        problem = f"it is {len(reason)} characters long, over {MAX_REASON_LEN}"
    elif not ("A" <= reason[0] <= "Z"):
        problem = f"{reason!r} does not start with an uppercase letter A-Z"
    elif not (reason.isascii() and _REASON.fullmatch(reason)):
        bad = next(c for c in reason if not (c.isascii() and c.isalnum()))
        problem = f"{reason!r} contains {bad!r}; only A-Z, a-z and 0-9 are allowed (UpperCamelCase)"
    else:
        return
    raise InvalidReasonError(problem)


def validate_annotations(annotations: Iterable[tuple[str, str]]) -> None:
    """Checks annotations the way the host does: every key a Kubernetes qualified name
    (``[prefix/]name``, the prefix a DNS subdomain of at most 253 characters, the name at most
    63 characters of ``[A-Za-z0-9_.-]`` starting and ending alphanumeric), no key twice, and
    keys plus values at most :data:`MAX_ANNOTATIONS_BYTES` bytes.

    :raises InvalidAnnotationError: naming the key and what is wrong with it.
    """
    total = 0
    seen: set[str] = set()
    for key, value in annotations:
        problem = _annotation_key_problem(key)
        if problem:
            raise InvalidAnnotationError(f"key {key!r}: {problem}")
        if key in seen:
            raise InvalidAnnotationError(f"duplicate key {key!r}")
        seen.add(key)
        total += len(key.encode()) + len(value.encode())
    if total > MAX_ANNOTATIONS_BYTES:
        raise InvalidAnnotationError(
            f"annotations take {total} bytes, over the limit of {MAX_ANNOTATIONS_BYTES}"
        )


def _annotation_key_problem(key: str) -> str | None:
    prefix, slash, name = key.partition("/")
    if not slash:
        prefix, name = "", key
    elif not _is_dns1123_subdomain(prefix):
        return f"prefix {prefix!r} is not a DNS subdomain (at most 253 of a-z, 0-9, '-' and '.')"
    if len(name) > 63 or not name.isascii() or not _QUALIFIED_NAME.fullmatch(name):
        return (
            f"name {name!r} must be 1-63 of A-Z, a-z, 0-9, '-', '_' and '.', "
            "alphanumeric at both ends"
        )
    return None


def _is_dns1123_subdomain(value: str) -> bool:
    return (
        0 < len(value) <= 253
        and value.isascii()
        and all(len(label) <= 63 and _DNS1123_LABEL.fullmatch(label) for label in value.split("."))
    )


def truncate_message(message: str) -> str:
    """Truncates a message the way the host does: over :data:`MAX_MESSAGE_BYTES` UTF-8 bytes,
    it is cut on a character boundary and ends with ``" ..."``, the whole within the limit."""
    encoded = message.encode()
    if len(encoded) <= MAX_MESSAGE_BYTES:
        return message
    ellipsis = " ..."
    cut = encoded[: MAX_MESSAGE_BYTES - len(ellipsis)]
    # Dropping a partial character at the end is cutting on a character boundary.
    return cut.decode(errors="ignore") + ellipsis
