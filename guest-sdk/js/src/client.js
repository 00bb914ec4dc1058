// The Kubernetes client a plugin gets: scoped to its declared kinds and its object's namespace.

import { ClientError } from './errors.js';
import { Gvk } from './gvk.js';

/**
 * @typedef {object} ObjectClient the calls behind a {@link Client}: the host's `client` import in
 *   a plugin, a `FakeClient` in tests. Objects cross as JSON text; each method throws a
 *   `ClientError` on failure.
 * @property {(kind: Gvk, name: string) => string | null} get one object of a declared kind in the
 *   reconciled object's namespace; `null` if it does not exist
 * @property {(object: string) => string} apply server-side apply of an owned kind; the object as stored
 * @property {(status: string) => string} patchStatus JSON merge patch of the reconciled object's
 *   status; the object as stored
 */

/**
 * A Kubernetes client scoped to what the plugin declared in its `Metadata` and to the reconciled
 * object's namespace. Each call is one request to the API server, through the host's checks.
 * Objects are plain JavaScript values (parsed JSON); each call also has a `Raw` form on JSON text.
 *
 * ```js
 * const existing = ctx.client.get(DEPLOYMENT, name);          // null when it does not exist
 * const stored = ctx.client.apply({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name }, spec });
 * ctx.client.patchStatus({ observedGeneration: request.generation });
 * ```
 *
 * Every method throws a `ClientError` on failure; see its `kind`.
 */
export class Client {
  /** @param {ObjectClient} inner */
  constructor(inner) {
    /** @private */
    this._inner = inner;
  }

  /**
   * Reads the object `name` of kind `kind`; `null` if it does not exist. `kind` must be the
   * reconciled kind or one the plugin owns or reads.
   *
   * @param {Gvk | {group: string, version: string, kind: string}} kind
   * @param {string} name
   * @returns {Record<string, any> | null}
   * @throws {ClientError} `forbidden` for an undeclared kind, `decode` if the answer is not
   *   JSON, and what the API server says
   */
  get(kind, name) {
    const json = this.getRaw(kind, name);
    return json == null ? null : decode(json);
  }

  /**
   * Reads an object as JSON text; `null` if it does not exist.
   *
   * @param {Gvk | {group: string, version: string, kind: string}} kind
   * @param {string} name
   * @returns {string | null}
   * @throws {ClientError} as {@link Client#get}, without decoding
   */
  getRaw(kind, name) {
    return this._inner.get(Gvk.from(kind), String(name)) ?? null;
  }

  /**
   * Creates or updates `object` by server-side apply, with the plugin's name as field manager,
   * and returns it as stored. Send what you want to be true: `apiVersion`, `kind`,
   * `metadata.name`, and the fields you manage. The host sets `metadata.namespace` to the
   * reconciled object's and adds a controller owner reference to it, so garbage collection
   * deletes the object with its owner. The kind must be one the plugin owns.
   *
   * @param {Record<string, any>} object
   * @returns {Record<string, any>}
   * @throws {ClientError} `forbidden` for a kind the plugin does not own or another namespace,
   *   `invalid` if the object cannot be serialized or lacks `apiVersion`, `kind` or
   *   `metadata.name`, and what the API server says
   */
  apply(object) {
    return decode(this.applyRaw(encode(object)));
  }

  /**
   * Applies an object given as JSON text; returns it as stored, as JSON text.
   *
   * @param {string} json
   * @returns {string}
   * @throws {ClientError} as {@link Client#apply}
   */
  applyRaw(json) {
    return this._inner.apply(String(json));
  }

  /**
   * Merges `status` into the reconciled object's status subresource as a JSON merge patch
   * (RFC 7386): fields given replace, fields set to `null` are removed, fields not given are
   * kept. Returns the object as stored.
   *
   * @param {Record<string, any>} status
   * @returns {Record<string, any>}
   * @throws {ClientError} `invalid` if `status` is not a JSON object, and what the API server says
   */
  patchStatus(status) {
    return decode(this.patchStatusRaw(encode(status)));
  }

  /**
   * Merges a status given as JSON text; returns the object as stored, as JSON text.
   *
   * @param {string} json
   * @returns {string}
   * @throws {ClientError} as {@link Client#patchStatus}
   */
  patchStatusRaw(json) {
    return this._inner.patchStatus(String(json));
  }
}

function encode(value) {
  let json;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw ClientError.invalid(`cannot serialize: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (json === undefined) throw ClientError.invalid(`cannot serialize ${typeof value} as JSON`);
  return json;
}

function decode(json) {
  try {
    return JSON.parse(json);
  } catch (error) {
    throw ClientError.decode(error instanceof Error ? error.message : String(error));
  }
}
