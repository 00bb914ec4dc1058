"""What a plugin declares about itself: its name and the kinds it may touch."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .gvk import Gvk

__all__ = ["Metadata", "MetadataError"]

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


class MetadataError(ValueError):
    """The metadata is one the host refuses to load."""


@dataclass(frozen=True)
class Metadata:
    """What a plugin declares about itself, returned by :meth:`Reconciler.metadata`.

    The host reads it once, when it loads the plugin, and from then on refuses every client
    call on a kind the plugin did not declare here. It is controller-runtime's
    ``Named(name).For(kind).Owns(..)`` written down as data:

    ==================  ======================  ==========================================
    field               controller-runtime      the plugin may
    ==================  ======================  ==========================================
    ``reconciles``      ``For(kind)``           get it, patch its status
    ``owns``            ``Owns(kind)``          get and apply; changes requeue the owner
    ``reads``           a cached client read    get
    ==================  ======================  ==========================================

    ::

        Metadata("myresource-py", Gvk("mygroup.example.com", "v1alpha1", "PyResource"),
                 owns=[Gvk("apps", "v1", "Deployment")])

    ``name`` must be a DNS-1123 label (see :meth:`validate`): it names the controller, the
    server-side-apply field manager and the ``From`` of every Event the plugin records.
    """

    name: str
    reconciles: Gvk
    owns: tuple[Gvk, ...] = field(default=())
    reads: tuple[Gvk, ...] = field(default=())

    def __init__(
        self, name: str, reconciles: Gvk, owns: Iterable[Gvk] = (), reads: Iterable[Gvk] = ()
    ) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "reconciles", reconciles)
        object.__setattr__(self, "owns", tuple(owns))
        object.__setattr__(self, "reads", tuple(reads))

    def may_get(self, kind: Gvk) -> bool:
        """Whether the plugin may ``get`` objects of ``kind``: the reconciled kind, an owned
        kind or a read kind."""
        return kind == self.reconciles or kind in self.owns or kind in self.reads

    def may_apply(self, kind: Gvk) -> bool:
        """Whether the plugin may ``apply`` objects of ``kind``: only owned kinds."""
        return kind in self.owns

    def validate(self) -> None:
        """Checks what the host checks when it loads the plugin.

        :raises MetadataError: unless the name is a DNS-1123 label (1-63 lowercase letters,
            digits and ``-``, starting and ending with a letter or digit) and every declared
            kind has a version and a kind.
        """
        if (
            not isinstance(self.name, str)
            or len(self.name) > 63
            or not _DNS1123_LABEL.fullmatch(self.name)
        ):
            raise MetadataError(
                f"plugin name {self.name!r} is not a DNS-1123 label "
                "(1-63 of a-z, 0-9 and '-', alphanumeric at both ends)"
            )
        for kind in (self.reconciles, *self.owns, *self.reads):
            if not isinstance(kind, Gvk):
                raise MetadataError(f"declared kind {kind!r} is not a Gvk")
            if not kind.version or not kind.kind:
                raise MetadataError(f"declared kind {kind} has an empty version or kind")
