// The reconciler shape, and one reconcile from the object's JSON to the plugin's answer: shared
// by the component glue and the test kit, so that both treat requests and results the same way.

import { ReconcileError, TerminalError } from './errors.js';
import { Metadata } from './metadata.js';
import { Request } from './request.js';
import { Response } from './response.js';

/**
 * @typedef {object} Reconciler a plugin: what it declares, and how it brings the world in line
 *   with one object
 * @property {() => Metadata} metadata describes the plugin; called once, when the host loads
 *   it, before any object exists: it must not use a context
 * @property {(ctx: import('./context.js').Context, request: Request) => Response | void} reconcile
 *   brings the world in line with the object in `request`; synchronous, and called with a fresh
 *   instance each time
 */

/**
 * Checks the shape of a reconciler and returns it, so that mistakes show when the module loads
 * (and, in an editor, as type errors) rather than on the first reconcile:
 *
 * ```js
 * export default defineReconciler({
 *   metadata() { return new Metadata('hello', new Gvk('example.com', 'v1', 'Greeting')); },
 *   reconcile(ctx, request) {
 *     ctx.recorder.eventf(Normal, 'Greeted', 'Hello, %s', request.name);
 *     return Response.awaitChange();
 *   },
 * });
 * ```
 *
 * @template {Reconciler} R
 * @param {R} reconciler
 * @returns {R}
 * @throws {TypeError} unless `metadata` and `reconcile` are functions
 */
export function defineReconciler(reconciler) {
  if (reconciler === null || typeof reconciler !== 'object' && typeof reconciler !== 'function') {
    throw new TypeError('a reconciler is an object with metadata() and reconcile(ctx, request)');
  }
  for (const method of ['metadata', 'reconcile']) {
    if (typeof reconciler[method] !== 'function') {
      throw new TypeError(`the reconciler has no ${method}() function`);
    }
  }
  return reconciler;
}

/**
 * The reconciler's metadata, checked as the host checks it.
 *
 * @param {Reconciler} reconciler
 * @returns {Metadata}
 * @throws {TypeError | import('./errors.js').MetadataError}
 */
export function metadataOf(reconciler) {
  const metadata = defineReconciler(reconciler).metadata();
  if (!(metadata instanceof Metadata)) {
    throw new TypeError('metadata() must return a Metadata (new Metadata(name, kind))');
  }
  metadata.validate();
  return metadata;
}

/**
 * Runs one reconcile and says how it ended: `{ok: Response}` or `{error: ReconcileError}`.
 * Never throws: whatever `reconcile` throws becomes a `ReconcileError` (see
 * {@link ReconcileError.from}).
 *
 * @param {Reconciler} reconciler
 * @param {import('./context.js').Context} ctx
 * @param {string} objectJson
 * @returns {{ok: Response, error?: undefined} | {ok?: undefined, error: ReconcileError}}
 */
export function runReconcile(reconciler, ctx, objectJson) {
  try {
    const request = Request.fromJson(objectJson);
    const answer = reconciler.reconcile(ctx, request);
    if (answer === undefined) return { ok: Response.awaitChange() };
    if (answer instanceof Response) return { ok: answer };
    if (answer !== null && typeof answer === 'object' && typeof answer.then === 'function') {
      // Every capability is synchronous and timers are disabled: there is nothing to await.
      answer.then(undefined, () => {});
      return { error: new TerminalError('reconcile returned a Promise: it must be a synchronous function') };
    }
    return { error: new TerminalError('reconcile must return a Response or nothing') };
  } catch (error) {
    return { error: ReconcileError.from(error) };
  }
}
