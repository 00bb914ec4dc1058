"""One call to ``reconcile``: the object as it is now."""

from __future__ import annotations

import json
from typing import Any

from .errors import TerminalError
from .gvk import Gvk

__all__ = ["Request"]


class Request:
    """One call to :meth:`Reconciler.reconcile`: the reconciled object as the API server
    returned it.

    Reconciliation is level-triggered: a request says what the object is now, never whether
    it was added, modified or deleted. ::

        request = Request.from_json('{"apiVersion": "mygroup.example.com/v1alpha1", '
            '"kind": "PyResource", "metadata": {"name": "demo", "namespace": "default", '
            '"generation": 3}, "spec": {"image": "nginx:1.27"}}')
        assert request.name == "demo" and request.generation == 3
        assert request.object["spec"]["image"] == "nginx:1.27"
    """

    __slots__ = ("_json", "_object", "_name")

    def __init__(self, object_json: str, obj: dict[str, Any]) -> None:
        """Use :meth:`from_json`."""
        self._json = object_json
        self._object = obj
        self._name: str = obj["metadata"]["name"]

    @classmethod
    def from_json(cls, object_json: str) -> Request:
        """Parses a request from the object's JSON, as the host sends it. Plugins get their
        requests ready-made; this is for tests and other harnesses.

        :raises TerminalError: unless ``object_json`` is a JSON object with a string
            ``metadata.name``.
        """
        try:
            obj = json.loads(object_json)
        except ValueError as error:
            raise TerminalError(f"the request object is not JSON: {error}") from None
        metadata = obj.get("metadata") if isinstance(obj, dict) else None
        if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
            raise TerminalError("the request object has no metadata.name")
        return cls(object_json, obj)

    @property
    def object(self) -> dict[str, Any]:
        """The object, parsed: read fields with ``request.object["spec"]``. Changing it
        changes nothing in the cluster."""
        return self._object

    @property
    def object_json(self) -> str:
        """The object's JSON, exactly as the host sent it."""
        return self._json

    @property
    def name(self) -> str:
        """``metadata.name``."""
        return self._name

    @property
    def namespace(self) -> str | None:
        """``metadata.namespace``; ``None`` for a cluster-scoped object."""
        return self._metadata_str("namespace")

    @property
    def generation(self) -> int | None:
        """``metadata.generation``: bumped by the API server on every change to the spec.
        Write it back as ``status.observedGeneration`` to say which spec the status
        describes."""
        generation = self._object["metadata"].get("generation")
        is_int = isinstance(generation, int) and not isinstance(generation, bool)
        return generation if is_int else None

    @property
    def uid(self) -> str | None:
        """``metadata.uid``."""
        return self._metadata_str("uid")

    @property
    def resource_version(self) -> str | None:
        """``metadata.resourceVersion``."""
        return self._metadata_str("resourceVersion")

    @property
    def gvk(self) -> Gvk | None:
        """The object's kind, from its ``apiVersion`` and ``kind``."""
        api_version, kind = self._object.get("apiVersion"), self._object.get("kind")
        if isinstance(api_version, str) and isinstance(kind, str):
            return Gvk.from_api_version(api_version, kind)
        return None

    @property
    def is_being_deleted(self) -> bool:
        """Whether ``metadata.deletionTimestamp`` is set: the object is being deleted."""
        return self._object["metadata"].get("deletionTimestamp") is not None

    def _metadata_str(self, field: str) -> str | None:
        value = self._object["metadata"].get(field)
        return value if isinstance(value, str) else None

    def __repr__(self) -> str:
        return f"Request(name={self._name!r}, namespace={self.namespace!r})"
