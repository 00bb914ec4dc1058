// Runs a reconciler in Node, against fakes that check what the host checks.

import { Context } from '../context.js';
import { metadataOf, runReconcile } from '../reconciler.js';
import { Request } from '../request.js';
import { FakeClient, FakeLog, FakeRecorder } from './fakes.js';

export { FakeClient, FakeLog, FakeRecorder, Operation, RecordedEvent, mergePatch } from './fakes.js';

/**
 * Runs reconcilers in Node over a {@link FakeClient} store that persists across reconciles, so
 * a test can reconcile, look, and reconcile again, as the host would:
 *
 * ```js
 * import { test } from 'node:test';
 * import assert from 'node:assert/strict';
 * import { TestKit, RecordedEvent } from 'wasm-reconciler-sdk/testkit';
 * import reconciler from '../src/index.js';
 *
 * test('greets', () => {
 *   const kit = new TestKit();
 *   const outcome = kit.reconcile(reconciler, { metadata: { name: 'world', namespace: 'default' } });
 *   assert.deepEqual(outcome.events, [RecordedEvent.normal('Greeted', 'Hello, world')]);
 * });
 * ```
 *
 * What is checked as the host checks it: the metadata (validated); event reasons and
 * annotations (a refused event throws the host's `EventError` into the reconciler and shows up in
 * `outcome.rejectedEvents`, not in `outcome.events`; long messages are truncated as the host
 * truncates them); declared kinds, the namespace, names and payload sizes on every client call
 * (see {@link FakeClient}).
 */
export class TestKit {
  /** @param {{client?: FakeClient, echoLogs?: boolean}} [options] `echoLogs` writes log lines to stderr */
  constructor({ client = new FakeClient(), echoLogs = false } = {}) {
    /** The store: add, inspect or remove objects between reconciles, or inject failures. @readonly */
    this.client = client;
    this._echoLogs = echoLogs;
  }

  /**
   * Stores an object (an owned child, something the plugin reads) before reconciling.
   *
   * @param {Record<string, any>} object
   * @returns {this}
   */
  withObject(object) {
    this.client.insert(object);
    return this;
  }

  /**
   * Reconciles `object` with `reconciler`, as the host would, and reports what happened.
   * `object` is stored as the reconciled object first (replacing any earlier version), so the
   * reconciler can `get` it and patch its status. A missing `apiVersion` or `kind` is filled
   * in from the reconciler's metadata.
   *
   * @param {import('../reconciler.js').Reconciler} reconciler
   * @param {Record<string, any>} object
   * @returns {Outcome}
   * @throws {Error} if the metadata is invalid, or `object` has no `metadata.name` or is not of
   *   the kind reconciled: mistakes the host would refuse long before a reconcile
   */
  reconcile(reconciler, object) {
    const metadata = metadataOf(reconciler);
    const kind = metadata.reconciles;
    const full = { apiVersion: kind.apiVersion, kind: kind.kind, ...structuredClone(object) };
    const json = JSON.stringify(full);
    const request = Request.fromJson(json);
    if (!kind.equals(request.gvk)) {
      throw new Error(`the object's kind ${request.gvk} is not the one the plugin reconciles, ${kind}`);
    }
    this.client.scopeTo(metadata);
    this.client.setReconciled(full);
    const recorder = new FakeRecorder();
    const log = new FakeLog({ echo: this._echoLogs });
    const before = this.client._counts();
    const ctx = new Context({ events: recorder, client: this.client, log });

    const result = runReconcile(reconciler, ctx, json);

    return new Outcome({
      result,
      events: recorder.events(),
      rejectedEvents: recorder.rejected(),
      applied: this.client.applied().slice(before.applied),
      statusPatches: this.client.statusPatches().slice(before.statusPatches),
      logs: log.lines(),
      object: this.client.reconciled() ?? full,
    });
  }
}

/** What one {@link TestKit#reconcile} did. Each outcome covers that reconcile only. */
export class Outcome {
  /** @param {any} parts */
  constructor({ result, events, rejectedEvents, applied, statusPatches, logs, object }) {
    /** The response, if the reconcile succeeded, else `null`. @readonly @type {import('../response.js').Response | null} */
    this.response = result.ok ?? null;
    /** The error, if the reconcile failed, else `null`. @readonly @type {import('../errors.js').ReconcileError | null} */
    this.error = result.error ?? null;
    /** The events the host would have posted, in order. @readonly */
    this.events = events;
    /** The events the host would have refused, with the error the reconciler got. @readonly */
    this.rejectedEvents = rejectedEvents;
    /** The objects applied, as the reconciler sent them. @readonly */
    this.applied = applied;
    /** The status patches, as the reconciler sent them. @readonly */
    this.statusPatches = statusPatches;
    /** The log lines written. @readonly */
    this.logs = logs;
    /** The reconciled object as stored after the reconcile, status patches merged in. @readonly */
    this.object = object;
    Object.freeze(this);
  }

  /** Whether the reconcile succeeded. */
  get ok() {
    return this.error === null;
  }

  /** The reconciled object's `status` after the reconcile, or `null` if it has none. */
  get status() {
    return this.object.status ?? null;
  }
}
