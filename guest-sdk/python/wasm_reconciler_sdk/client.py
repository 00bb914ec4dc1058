"""The Kubernetes client a plugin gets: scoped to its declared kinds and its object's
namespace. Objects cross the boundary as JSON text."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from .errors import DecodeError, InvalidError
from .gvk import Gvk

__all__ = ["MAX_NAME_LEN", "MAX_PAYLOAD_BYTES", "Client", "ObjectClient", "name_problem"]

#: Largest JSON text one client call may carry: the API server's own request limit.
MAX_PAYLOAD_BYTES = 3 << 20
#: Longest object name the host accepts (a DNS-1123 subdomain).
MAX_NAME_LEN = 253
_NAME_PUNCTUATION = frozenset("-._:@+~")


class ObjectClient(Protocol):
    """The calls behind a :class:`Client`, on JSON text: the host's ``client`` import in a
    plugin, a :class:`~wasm_reconciler_sdk.testkit.FakeClient` in tests. Each raises a
    :class:`~wasm_reconciler_sdk.ClientError` on failure."""

    def get(self, kind: Gvk, name: str) -> str | None:
        """Reads one object; ``None`` if it does not exist."""

    def apply(self, object_json: str) -> str:
        """Server-side applies an object of an owned kind; returns it as stored."""

    def patch_status(self, status_json: str) -> str:
        """Merges a status into the reconciled object's; returns the object as stored."""


class Client:
    """A Kubernetes client scoped to what the plugin declared in its
    :class:`~wasm_reconciler_sdk.Metadata` and to the reconciled object's namespace.

    Reads and writes go to the API server, through the host's checks. Objects are dicts (any
    JSON-serializable mapping going in); each call also has a ``_raw`` form on JSON text::

        CONFIG_MAP = Gvk("", "v1", "ConfigMap")
        if ctx.client.get(CONFIG_MAP, "settings") is None:
            ctx.client.apply({"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "settings"}, "data": {"mode": "fast"}})
        ctx.client.patch_status({"ready": True})

    Every call raises a :class:`~wasm_reconciler_sdk.ClientError` on failure: transient ones
    (:class:`~wasm_reconciler_sdk.UnavailableError`, :class:`~wasm_reconciler_sdk.ApiError`)
    make the host retry with backoff when they escape ``reconcile``, terminal ones do not.
    """

    __slots__ = ("_inner",)

    def __init__(self, inner: ObjectClient) -> None:
        self._inner = inner

    def get(self, kind: Gvk, name: str) -> dict[str, Any] | None:
        """Reads the object ``name`` of kind ``kind``; ``None`` if it does not exist.

        ``kind`` must be the reconciled kind or one the plugin owns or reads.

        :raises ForbiddenError: for an undeclared kind.
        :raises InvalidError: for a name that is not a plain object name.
        """
        text = self.get_raw(kind, name)
        return None if text is None else _decode(text)

    def get_raw(self, kind: Gvk, name: str) -> str | None:
        """Reads an object as JSON text; ``None`` if it does not exist."""
        return self._inner.get(kind, name)

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Creates or updates ``obj`` by server-side apply, with the plugin's name as field
        manager, and returns it as stored.

        Send what you want to be true: ``apiVersion``, ``kind``, ``metadata.name``, and the
        fields you manage. The host sets ``metadata.namespace`` to the reconciled object's and
        adds a controller owner reference to it, so garbage collection deletes the object
        with its owner. The kind must be one the plugin owns.

        :raises ForbiddenError: for a kind the plugin does not own, or another namespace.
        :raises InvalidError: if ``obj`` is not a JSON object with ``apiVersion``, ``kind``
            and ``metadata.name``.
        """
        return _decode(self.apply_raw(_encode(obj)))

    def apply_raw(self, object_json: str) -> str:
        """Applies an object given as JSON text; returns it as stored, as JSON text."""
        return self._inner.apply(object_json)

    def patch_status(self, status: Mapping[str, Any]) -> dict[str, Any]:
        """Merges ``status`` into the reconciled object's status subresource as a JSON merge
        patch (RFC 7386): fields given replace, fields set to ``None`` are removed, fields not
        given are kept. Returns the object as stored.

        :raises InvalidError: if ``status`` is not a JSON object.
        """
        return _decode(self.patch_status_raw(_encode(status)))

    def patch_status_raw(self, status_json: str) -> str:
        """Merges a status given as JSON text; returns the object as stored, as JSON text."""
        return self._inner.patch_status(status_json)

    def __repr__(self) -> str:
        return "Client(..)"


def name_problem(name: object) -> str | None:
    """What the host finds wrong with an object name, or ``None`` if it accepts it: names are
    1-253 letters, digits and ``- . _ : @ + ~``, and not ``.`` or ``..``."""
    if not isinstance(name, str):
        return f"the name must be a string, not {type(name).__name__}"
    if not name:
        return "the name is empty"
    if name in (".", ".."):
        return f"the name may not be {name!r}"
    if len(name.encode()) > MAX_NAME_LEN:
        return f"the name is longer than {MAX_NAME_LEN} bytes"
    for c in name:
        if not ((c.isascii() and c.isalnum()) or c in _NAME_PUNCTUATION):
            return f"the name may not contain {c!r}"
    return None


def _encode(value: Mapping[str, Any]) -> str:
    if not isinstance(value, Mapping):
        raise InvalidError(f"expected a JSON object (a mapping), not {type(value).__name__}")
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidError(f"cannot serialize: {error}") from None


def _decode(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise DecodeError(str(error)) from None
    if not isinstance(value, dict):
        raise DecodeError(f"expected a JSON object, got {type(value).__name__}")
    return value
