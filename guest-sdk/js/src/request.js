// One call to `reconcile`: the object as it is now.

import { TerminalError } from './errors.js';
import { Gvk } from './gvk.js';

/**
 * One call to `reconcile`: the reconciled object as the API server returned it.
 *
 * Reconciliation is level-triggered: a request says what the object is now, never whether it
 * was added, modified or deleted.
 *
 * ```js
 * const request = Request.fromJson('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "demo", "namespace": "default"}}');
 * request.name;      // 'demo'
 * request.namespace; // 'default'
 * request.object;    // the parsed object
 * ```
 */
export class Request {
  /**
   * @param {string} json the object's JSON text
   * @param {Record<string, any>} object the same, parsed
   * @private use {@link Request.fromJson}
   */
  constructor(json, object) {
    /** The object's JSON, exactly as the host sent it. @readonly @type {string} */
    this.objectJson = json;
    /** The object, parsed. Changing it changes nothing in the cluster. @readonly @type {Record<string, any>} */
    this.object = object;
    Object.freeze(this);
  }

  /**
   * Parses a request from the object's JSON, as the host sends it. Plugins get their requests
   * ready-made; this is for tests and other harnesses.
   *
   * @param {string} json
   * @returns {Request}
   * @throws {TerminalError} unless `json` is a JSON object with a string `metadata.name`
   */
  static fromJson(json) {
    let object;
    try {
      object = JSON.parse(json);
    } catch (error) {
      throw new TerminalError(`the request object is not JSON: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (object === null || typeof object !== 'object' || Array.isArray(object) || typeof object.metadata?.name !== 'string') {
      throw new TerminalError('the request object has no metadata.name');
    }
    return new Request(json, object);
  }

  /** `metadata.name`. @type {string} */
  get name() {
    return this.object.metadata.name;
  }

  /** `metadata.namespace`; `null` for a cluster-scoped object. @type {string | null} */
  get namespace() {
    return stringOrNull(this.object.metadata.namespace);
  }

  /**
   * `metadata.generation`, bumped by the API server on every change to the spec; write it
   * back as `status.observedGeneration`. `null` when absent. @type {number | null}
   */
  get generation() {
    const generation = this.object.metadata.generation;
    return Number.isInteger(generation) ? generation : null;
  }

  /** `metadata.uid`, or `null`. @type {string | null} */
  get uid() {
    return stringOrNull(this.object.metadata.uid);
  }

  /** `metadata.resourceVersion`, or `null`. @type {string | null} */
  get resourceVersion() {
    return stringOrNull(this.object.metadata.resourceVersion);
  }

  /** `metadata.labels`; `{}` when there are none. @type {Readonly<Record<string, string>>} */
  get labels() {
    return this.object.metadata.labels ?? {};
  }

  /** `metadata.annotations`; `{}` when there are none. @type {Readonly<Record<string, string>>} */
  get annotations() {
    return this.object.metadata.annotations ?? {};
  }

  /** The object's kind from its `apiVersion` and `kind`, or `null` if either is missing. @type {Gvk | null} */
  get gvk() {
    const { apiVersion, kind } = this.object;
    return typeof apiVersion === 'string' && typeof kind === 'string' ? Gvk.fromApiVersion(apiVersion, kind) : null;
  }

  /** Whether `metadata.deletionTimestamp` is set: the object is being deleted. @type {boolean} */
  get isBeingDeleted() {
    return this.object.metadata.deletionTimestamp != null;
  }
}

function stringOrNull(value) {
  return typeof value === 'string' ? value : null;
}
