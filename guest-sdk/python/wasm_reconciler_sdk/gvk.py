"""Kubernetes kinds as group, version and kind."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Gvk"]


@dataclass(frozen=True, order=True)
class Gvk:
    """A Kubernetes kind: group, version and kind, like apimachinery's ``GroupVersionKind``.

    The core group is the empty string. Kinds a plugin uses often read well as constants::

        DEPLOYMENT = Gvk("apps", "v1", "Deployment")
        CONFIG_MAP = Gvk("", "v1", "ConfigMap")
        assert DEPLOYMENT.api_version == "apps/v1" and CONFIG_MAP.api_version == "v1"
    """

    #: The group; empty for the core group.
    group: str
    #: The version, e.g. ``v1``.
    version: str
    #: The kind, e.g. ``Deployment``.
    kind: str

    @classmethod
    def from_api_version(cls, api_version: str, kind: str) -> Gvk:
        """A kind from an object's ``apiVersion`` (``"apps/v1"``, or ``"v1"`` for the core
        group) and ``kind``."""
        group, _, version = api_version.rpartition("/")
        return cls(group, version, kind)

    @property
    def api_version(self) -> str:
        """The ``apiVersion`` an object of this kind carries: ``group/version``, or the
        version alone for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def __str__(self) -> str:
        """Formats like apimachinery: ``apps/v1, Kind=Deployment``."""
        return f"{self.api_version}, Kind={self.kind}"
