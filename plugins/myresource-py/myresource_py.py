"""Example wasm-reconciler plugin in Python: runs a Deployment for each ``PyResource``.

It does what the Rust example (``plugins/myresource``) does for ``MyResource``, for its own
kind, ``PyResource`` (``mygroup.example.com/v1alpha1``, namespaced, with a status
subresource, the same schema): the two examples can run in one host without reconciling the
same objects. A ``PyResource`` asks for an image and a number of replicas::

    apiVersion: mygroup.example.com/v1alpha1
    kind: PyResource
    metadata: {name: demo-py, namespace: default}
    spec: {image: "nginx:1.27", replicas: 2}

The plugin keeps a Deployment of the same name in line with it, records ``Created`` and
``Updated`` events when it changes the Deployment, and reports in the status what it runs.
An invalid spec gets a ``Warning InvalidSpec`` event, ``status.invalidSpec``, and a terminal
error: nothing to retry until someone fixes the spec.

Build: ``python3 guest-sdk/python/build.py --plugin plugins/myresource-py --out DIR``, then
put ``DIR/myresource_py.wasm`` in the host's plugins directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from wasm_reconciler_sdk import (
    Context,
    EventType,
    Gvk,
    Metadata,
    Reconciler,
    Request,
    Response,
    TerminalError,
    error_context,
    export,
)

#: The kind this plugin reconciles.
PY_RESOURCE = Gvk("mygroup.example.com", "v1alpha1", "PyResource")
#: The kind this plugin owns: one per ``PyResource``, of the same name.
DEPLOYMENT = Gvk("apps", "v1", "Deployment")
#: The plugin's name: its controller, field manager and event source.
PLUGIN_NAME = "myresource-py"
#: The name of the one container in each Deployment.
CONTAINER = "app"


class MyResourceReconciler(Reconciler):
    """Reconciles ``PyResource`` objects into Deployments."""

    def metadata(self) -> Metadata:
        return Metadata(PLUGIN_NAME, PY_RESOURCE, owns=[DEPLOYMENT])

    def reconcile(self, ctx: Context, request: Request) -> Response:
        name = request.name
        generation = request.generation or 0
        if request.is_being_deleted:
            # The Deployment carries an owner reference: garbage collection removes it.
            ctx.log.debug("being deleted; nothing to do")
            return Response.await_change()

        try:
            spec = Spec.from_object(request.object)
        except SpecError as invalid:
            problem = str(invalid)
            # A change to the Deployment requeues this object too: say it once per spec.
            if not already_reported(request, generation, problem):
                ctx.recorder.event(EventType.Warning, "InvalidSpec", problem)
                with error_context("patch status"):
                    ctx.client.patch_status(
                        {"observedGeneration": generation, "invalidSpec": problem}
                    )
            raise TerminalError(f"invalid spec: {problem}") from None

        with error_context(f"get deployment {name}"):
            current = ctx.client.get(DEPLOYMENT, name)
        if current is None:
            deployment = apply(ctx, name, spec)
            ctx.recorder.eventf(EventType.Normal, "Created", "Created deployment %s", name)
            ctx.log.info("created deployment %s", name)
        else:
            differences = changes(current, spec)
            if not differences:
                ctx.log.debug("deployment %s is up to date", name)
                deployment = current
            else:
                deployment = apply(ctx, name, spec)
                summary = ", ".join(differences)
                ctx.recorder.eventf(
                    EventType.Normal, "Updated", "Updated deployment %s: %s", name, summary
                )
                ctx.log.info("updated deployment %s: %s", name, summary)

        with error_context("patch status"):
            ctx.client.patch_status(
                {
                    "observedGeneration": generation,
                    "deployment": name,
                    "image": spec.image,
                    "replicas": spec.replicas,
                    "readyReplicas": _field(deployment, "status", "readyReplicas") or 0,
                    # None removes a message left by an earlier invalid spec (JSON merge patch).
                    "invalidSpec": None,
                }
            )
        return Response.await_change()


class SpecError(ValueError):
    """What is wrong with a spec, every problem found, e.g. ``"spec.image is empty;
    spec.replicas must not be negative, got -1"``."""


@dataclass(frozen=True)
class Spec:
    """What a ``PyResource`` asks for, once checked."""

    #: The container image; not empty.
    image: str
    #: How many replicas; not negative, fits in an int32.
    replicas: int

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> Spec:
        """Reads and checks the ``spec`` of a ``PyResource``.

        :raises SpecError: naming every problem found.
        """
        spec = obj.get("spec")
        if spec is None:
            raise SpecError("spec is missing")
        if not isinstance(spec, dict):
            spec = {}
        problems = []

        image = spec.get("image")
        if image is None:
            problems.append("spec.image is missing")
        elif not isinstance(image, str):
            problems.append(f"spec.image must be a string, got {_json(image)}")
        elif not image.strip():
            problems.append("spec.image is empty")

        replicas = spec.get("replicas")
        if replicas is None:
            problems.append("spec.replicas is missing")
        elif not isinstance(replicas, int) or isinstance(replicas, bool):
            problems.append(f"spec.replicas must be an integer, got {_json(replicas)}")
        elif replicas < 0:
            problems.append(f"spec.replicas must not be negative, got {replicas}")
        elif replicas > 2**31 - 1:
            problems.append(f"spec.replicas must fit in an int32, got {replicas}")

        if problems:
            raise SpecError("; ".join(problems))
        return cls(image, replicas)


def already_reported(request: Request, generation: int, problem: str) -> bool:
    """Whether the status already reports ``problem`` for this generation of the spec."""
    status = request.object.get("status") or {}
    return status.get("observedGeneration") == generation and status.get("invalidSpec") == problem


def labels(name: str) -> dict[str, str]:
    """The labels of the Deployment and its pods."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": PLUGIN_NAME}


def desired_deployment(name: str, spec: Spec) -> dict[str, Any]:
    """The Deployment a ``PyResource`` called ``name`` should have. The host adds the
    namespace and the controller owner reference when it applies it."""
    return {
        "apiVersion": DEPLOYMENT.api_version,
        "kind": DEPLOYMENT.kind,
        "metadata": {"name": name, "labels": labels(name)},
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": labels(name)},
                "spec": {"containers": [{"name": CONTAINER, "image": spec.image}]},
            },
        },
    }


def apply(ctx: Context, name: str, spec: Spec) -> dict[str, Any]:
    with error_context(f"apply deployment {name}"):
        return ctx.client.apply(desired_deployment(name, spec))


def changes(current: dict[str, Any], spec: Spec) -> list[str]:
    """What differs between the Deployment and the spec, as ``"image a -> b"`` and
    ``"replicas 1 -> 2"``; empty when nothing does."""
    differences = []
    containers = _field(current, "spec", "template", "spec", "containers") or []
    image = next(
        (c.get("image") for c in containers if isinstance(c, dict) and c.get("name") == CONTAINER),
        None,
    )
    if image != spec.image:
        differences.append(f"image {image if image is not None else '<none>'} -> {spec.image}")
    replicas = _field(current, "spec", "replicas")
    if replicas != spec.replicas:
        shown = replicas if replicas is not None else "<unset>"
        differences.append(f"replicas {shown} -> {spec.replicas}")
    return differences


def _field(obj: Any, *path: str) -> Any:
    for part in path:
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _json(value: Any) -> str:
    """A value as compact JSON, as the Rust example prints it."""
    return json.dumps(value, separators=(",", ":"))


# The name componentize-py looks for: the component's `metadata` and `reconcile` exports.
WitWorld = export(MyResourceReconciler)
