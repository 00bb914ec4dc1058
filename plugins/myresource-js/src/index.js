// Example wasm-reconciler plugin in JavaScript: runs a Deployment for each `JsResource`.
//
// It does what the Rust example (plugins/myresource) does for `MyResource`, for its own kind,
// `JsResource` (`mygroup.example.com/v1alpha1`, namespaced, with a status subresource, the same
// schema; manifests/crd.yaml): the examples can run in one host without reconciling the same
// objects. A `JsResource` asks for an image and a number of replicas:
//
//     apiVersion: mygroup.example.com/v1alpha1
//     kind: JsResource
//     metadata: {name: demo-js, namespace: default}
//     spec: {image: "nginx:1.27", replicas: 2}
//
// The plugin keeps a Deployment of the same name in line with it, records `Created` and
// `Updated` events when it changes the Deployment, and reports in the status what it runs. An
// invalid spec gets a `Warning InvalidSpec` event, `status.invalidSpec`, and a terminal error:
// nothing to retry until someone fixes the spec.
//
// Build: `node ../../guest-sdk/js/build.mjs --out DIR .`, then put DIR/myresource_js.wasm in the
// host's plugins directory.

import { Gvk, Metadata, Normal, Response, TerminalError, Warning, context, defineReconciler } from 'wasm-reconciler-sdk';

/** The kind this plugin reconciles. */
export const JS_RESOURCE = new Gvk('mygroup.example.com', 'v1alpha1', 'JsResource');

/** The kind this plugin owns: one per `JsResource`, of the same name. */
export const DEPLOYMENT = new Gvk('apps', 'v1', 'Deployment');

/** The plugin's name: its controller, field manager and event source. */
export const PLUGIN_NAME = 'myresource-js';

/** The name of the one container in each Deployment. */
export const CONTAINER = 'app';

export default defineReconciler({
  metadata() {
    return new Metadata(PLUGIN_NAME, JS_RESOURCE).owns(DEPLOYMENT);
  },

  reconcile(ctx, request) {
    const name = request.name;
    const generation = request.generation ?? 0;
    if (request.isBeingDeleted) {
      // The Deployment carries an owner reference: garbage collection removes it.
      ctx.log.debug('being deleted; nothing to do');
      return Response.awaitChange();
    }

    let spec;
    try {
      spec = parseSpec(request.object);
    } catch (problem) {
      if (!(problem instanceof SpecProblem)) throw problem;
      // A change to the Deployment requeues this object too: say it once per spec.
      if (!alreadyReported(request.object, generation, problem.message)) {
        ctx.recorder.eventf(Warning, 'InvalidSpec', '%s', problem.message);
        context('patch status', () =>
          ctx.client.patchStatus({ observedGeneration: generation, invalidSpec: problem.message }),
        );
      }
      throw new TerminalError(`invalid spec: ${problem.message}`);
    }

    const existing = context(`get deployment ${name}`, () => ctx.client.get(DEPLOYMENT, name));
    let deployment;
    if (existing === null) {
      deployment = apply(ctx, name, spec);
      ctx.recorder.eventf(Normal, 'Created', 'Created deployment %s', name);
      ctx.log.info('created deployment %s', name);
    } else {
      const changed = changes(existing, spec);
      if (changed.length === 0) {
        ctx.log.debug('deployment %s is up to date', name);
        deployment = existing;
      } else {
        deployment = apply(ctx, name, spec);
        ctx.recorder.eventf(Normal, 'Updated', 'Updated deployment %s: %s', name, changed.join(', '));
        ctx.log.info('updated deployment %s: %s', name, changed.join(', '));
      }
    }

    context('patch status', () =>
      ctx.client.patchStatus({
        observedGeneration: generation,
        deployment: name,
        image: spec.image,
        replicas: spec.replicas,
        readyReplicas: deployment.status?.readyReplicas ?? 0,
        // `null` removes a message left by an earlier invalid spec (JSON merge patch).
        invalidSpec: null,
      }),
    );
    return Response.awaitChange();
  },
});

/** What is wrong with a spec, as one message naming every problem. */
export class SpecProblem extends Error {}

/**
 * Reads and checks the `spec` of a `JsResource`: `{image, replicas}`.
 *
 * @param {Record<string, any>} object
 * @returns {{image: string, replicas: number}}
 * @throws {SpecProblem} naming every problem found, e.g. `"spec.image is empty; spec.replicas must not be negative, got -1"`
 */
export function parseSpec(object) {
  const spec = object.spec;
  if (spec === undefined || spec === null) throw new SpecProblem('spec is missing');
  const problems = [];
  const { image, replicas } = spec;
  if (image === undefined || image === null) problems.push('spec.image is missing');
  else if (typeof image !== 'string') problems.push(`spec.image must be a string, got ${JSON.stringify(image)}`);
  else if (image.trim() === '') problems.push('spec.image is empty');
  if (replicas === undefined || replicas === null) problems.push('spec.replicas is missing');
  else if (!Number.isInteger(replicas)) problems.push(`spec.replicas must be an integer, got ${JSON.stringify(replicas)}`);
  else if (replicas < 0) problems.push(`spec.replicas must not be negative, got ${replicas}`);
  else if (replicas > 2 ** 31 - 1) problems.push(`spec.replicas must fit in an int32, got ${replicas}`);
  if (problems.length > 0) throw new SpecProblem(problems.join('; '));
  return { image, replicas };
}

/** Whether the status already reports `problem` for this generation of the spec. */
function alreadyReported(object, generation, problem) {
  return object.status?.observedGeneration === generation && object.status?.invalidSpec === problem;
}

/** The labels of the Deployment and its pods. */
function labels(name) {
  return { 'app.kubernetes.io/name': name, 'app.kubernetes.io/managed-by': PLUGIN_NAME };
}

/**
 * The Deployment a `JsResource` called `name` should have. The host adds the namespace and the
 * controller owner reference when it applies it.
 *
 * @param {string} name
 * @param {{image: string, replicas: number}} spec
 */
export function desiredDeployment(name, spec) {
  return {
    apiVersion: DEPLOYMENT.apiVersion,
    kind: DEPLOYMENT.kind,
    metadata: { name, labels: labels(name) },
    spec: {
      replicas: spec.replicas,
      selector: { matchLabels: { 'app.kubernetes.io/name': name } },
      template: {
        metadata: { labels: labels(name) },
        spec: { containers: [{ name: CONTAINER, image: spec.image }] },
      },
    },
  };
}

function apply(ctx, name, spec) {
  return context(`apply deployment ${name}`, () => ctx.client.apply(desiredDeployment(name, spec)));
}

/** What differs between the Deployment and the spec, as `"image a -> b"` and `"replicas 1 -> 2"`. */
function changes(current, spec) {
  const changed = [];
  const containers = current.spec?.template?.spec?.containers ?? [];
  const image = containers.find((container) => container.name === CONTAINER)?.image;
  if (image !== spec.image) changed.push(`image ${image ?? '<none>'} -> ${spec.image}`);
  const replicas = current.spec?.replicas;
  if (replicas !== spec.replicas) changed.push(`replicas ${replicas ?? '<unset>'} -> ${spec.replicas}`);
  return changed;
}
