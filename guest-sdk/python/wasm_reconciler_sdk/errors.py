"""Why a reconcile failed, and whether retrying can help.

Every error the SDK raises is a :class:`ReconcileError`, and every one is either a
:class:`TransientError` (the host retries the object with per-object exponential backoff) or a
:class:`TerminalError` (the host waits for the object, or one it owns, to change). Raise them
from ``reconcile``, or let the SDK's own errors pass through:

=============================  =========  ==================================
raised by the SDK              kind       why
=============================  =========  ==================================
:class:`UnavailableError`      transient  the API server may come back
:class:`ApiError`              transient  conflicts and throttling pass
:class:`ForbiddenError`        terminal   the metadata will not change
:class:`InvalidError`          terminal   the same input fails again
:class:`DecodeError`           terminal   the same answer fails again
:class:`EventError`            terminal   a bad reason is a bug in the plugin
=============================  =========  ==================================

Any other exception escaping ``reconcile`` is a bug, like a panic in Rust: the instance traps,
the host logs the traceback and records a ``Warning ReconcileFailed`` Event on the object.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = [
    "ApiError",
    "ClientError",
    "DecodeError",
    "EventError",
    "ForbiddenError",
    "InvalidAnnotationError",
    "InvalidError",
    "InvalidReasonError",
    "NoObjectError",
    "ReconcileError",
    "TerminalError",
    "TransientError",
    "error_context",
]


class ReconcileError(Exception):
    """A failed reconcile: a message, and whether retrying can help (:attr:`transient`).

    Not raised itself: raise :class:`TransientError` or :class:`TerminalError`.
    """

    #: Whether the host retries with backoff (``True``) or waits for a change (``False``).
    transient: bool = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = str(message)

    def __str__(self) -> str:
        return self.message

    @property
    def terminal(self) -> bool:
        """Whether the host waits for the object to change instead of retrying."""
        return not self.transient

    def context(self, what: str) -> ReconcileError:
        """The same kind of error, its message prefixed with what was being done:
        ``"get deployment demo: API server unavailable: ..."``."""
        kind = TransientError if self.transient else TerminalError
        error = kind(f"{what}: {self.message}")
        error.__cause__ = self
        return error


class TransientError(ReconcileError):
    """Something that may pass on its own (a conflict, an unavailable API server): the host
    retries the object with per-object exponential backoff."""

    transient = True


class TerminalError(ReconcileError):
    """Retrying cannot help until the object changes (an invalid spec): the host waits for the
    next change to the object or one of its owned objects."""

    transient = False


@contextlib.contextmanager
def error_context(what: str) -> Iterator[None]:
    """Prefixes the message of a :class:`ReconcileError` raised inside the block with
    ``what``, keeping its kind (like anyhow's ``context``)::

        with error_context(f"get deployment {name}"):
            existing = ctx.client.get(DEPLOYMENT, name)
        # on failure: "get deployment demo: API server unavailable: connection refused"

    Other exceptions pass through unchanged.
    """
    try:
        yield
    except ReconcileError as error:
        raise error.context(what) from error


class ClientError(ReconcileError):
    """Why a client call failed. Catch a subclass to handle one case."""


class ForbiddenError(ClientError, TerminalError):
    """The plugin did not declare this kind (or may not use this verb on it) in its metadata,
    or the object is outside the reconciled object's namespace."""

    def __init__(self, message: str) -> None:
        super().__init__(f"forbidden: {message}")


class InvalidError(ClientError, TerminalError):
    """The object or name given is not valid for this call."""

    def __init__(self, message: str) -> None:
        super().__init__(f"invalid object: {message}")


class ApiError(ClientError, TransientError):
    """The API server refused the request, e.g. a conflict (409) or a failed validation
    (422); or the host did, with 429, because this reconcile made all the API calls one
    reconcile may make."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"API server refused the request ({code}): {message}")
        #: The HTTP status code.
        self.code = code
        #: The API server's message.
        self.server_message = message

    @property
    def is_conflict(self) -> bool:
        """Whether the API server answered 409 Conflict."""
        return self.code == 409


class UnavailableError(ClientError, TransientError):
    """The API server could not be reached; retrying later may help."""

    def __init__(self, message: str) -> None:
        super().__init__(f"API server unavailable: {message}")


class DecodeError(ClientError, TerminalError):
    """The host's answer was not the JSON object expected."""

    def __init__(self, message: str) -> None:
        super().__init__(f"cannot decode the object returned by the host: {message}")


class EventError(TerminalError):
    """Why the host refused an event; nothing is sent for a refused event. A refused event is
    a bug in the plugin, so it is terminal; catch it to ignore it the way Go code does."""


class InvalidReasonError(EventError):
    """The reason is not 1-128 characters of UpperCamelCase (``^[A-Z][A-Za-z0-9]*$``)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"invalid event reason: {message}")


class InvalidAnnotationError(EventError):
    """An annotation key or value is not valid as a Kubernetes annotation."""

    def __init__(self, message: str) -> None:
        super().__init__(f"invalid event annotation: {message}")


class NoObjectError(EventError):
    """There is no object to attach the event to: recorded outside of ``reconcile``."""

    def __init__(self) -> None:
        super().__init__(
            "no object to record an event about: events can only be recorded during reconcile"
        )
