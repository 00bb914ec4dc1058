// Fake capabilities that record what a reconciler did and refuse what the host refuses.

import { ClientError, EventError } from '../errors.js';
import { Gvk } from '../gvk.js';
import {
  MAX_API_CALLS,
  MAX_PAYLOAD_BYTES,
  annotationsProblem,
  objectNameProblem,
  reasonProblem,
  truncateMessage,
  utf8Length,
} from '../validate.js';

/**
 * @typedef {object} RecordedEvent an event as the host would post it (the message truncated
 *   as the host truncates it): plain data, to compare with `assert.deepStrictEqual`
 * @property {'Normal' | 'Warning'} type
 * @property {string} reason
 * @property {string} message
 * @property {Record<string, string>} annotations empty for a plain event
 */

/** Builds {@link RecordedEvent}s to compare with what a `FakeRecorder` accepted. */
export const RecordedEvent = Object.freeze({
  /**
   * @param {string} reason
   * @param {string} message
   * @param {Record<string, string>} [annotations]
   * @returns {RecordedEvent}
   */
  normal(reason, message, annotations = {}) {
    return { type: 'Normal', reason, message, annotations: { ...annotations } };
  },
  /**
   * @param {string} reason
   * @param {string} message
   * @param {Record<string, string>} [annotations]
   * @returns {RecordedEvent}
   */
  warning(reason, message, annotations = {}) {
    return { type: 'Warning', reason, message, annotations: { ...annotations } };
  },
});

/**
 * An event sink that checks events as the host does: accepted ones are kept as
 * {@link RecordedEvent}s, refused ones as `{event, error}` with the `EventError` thrown.
 */
export class FakeRecorder {
  constructor() {
    /** @type {RecordedEvent[]} */
    this._events = [];
    /** @type {Array<{event: import('../recorder.js').Event, error: EventError}>} */
    this._rejected = [];
  }

  /** @param {import('../recorder.js').Event} event */
  record(event) {
    const reason = reasonProblem(event.reason);
    const annotations = reason === null ? annotationsProblem(event.annotations) : null;
    if (reason !== null || annotations !== null) {
      const error = reason !== null ? new EventError('invalid-reason', reason) : new EventError('invalid-annotation', annotations);
      this._rejected.push({ event, error });
      throw error;
    }
    this._events.push({
      type: event.type,
      reason: event.reason,
      message: truncateMessage(event.message),
      annotations: Object.fromEntries(event.annotations),
    });
  }

  /** The events accepted, in order. @returns {RecordedEvent[]} */
  events() {
    return [...this._events];
  }

  /** The events refused, with the error the reconciler got. */
  rejected() {
    return [...this._rejected];
  }
}

/**
 * @typedef {object} LogLine
 * @property {'trace' | 'debug' | 'info' | 'warn' | 'error'} level
 * @property {string} message
 */

/** A log sink that keeps the lines, and echoes them to stderr when `echo` is set. */
export class FakeLog {
  /** @param {{echo?: boolean}} [options] */
  constructor({ echo = false } = {}) {
    /** @type {LogLine[]} */
    this._lines = [];
    this._echo = echo;
  }

  /**
   * @param {LogLine['level']} level
   * @param {string} message
   */
  log(level, message) {
    this._lines.push({ level, message });
    if (this._echo) process.stderr.write(`${level.toUpperCase()} ${message}\n`);
  }

  /** The lines written, in order. @returns {LogLine[]} */
  lines() {
    return [...this._lines];
  }
}

/** Which client call {@link FakeClient#failNext} makes fail. */
export const Operation = Object.freeze({
  Get: 'get',
  Apply: 'apply',
  PatchStatus: 'patchStatus',
});

/**
 * An in-memory object store behind the client, checking what the host checks:
 *
 * - declared kinds: `get` on an undeclared kind and `apply` on a kind not owned are `forbidden`
 *   (once {@link FakeClient#scopeTo} has given it the plugin's metadata);
 * - the namespace: an object naming another namespace than the reconciled object's is
 *   `forbidden`, and a cluster-scoped reconciled object cannot reach namespaced kinds
 *   (`namespacedKinds`: by default every kind is namespaced);
 * - `invalid`: names that are not object names, objects without `apiVersion`, `kind` or
 *   `metadata.name`, JSON over 3 MiB, a status that is not an object, applying the reconciled
 *   object itself;
 * - 429: more than 256 calls in one reconcile;
 * - `apply` sets the namespace and the controller owner reference, and keeps the stored
 *   status; `patchStatus` is a JSON merge patch on the reconciled object.
 *
 * It does not model server-side apply's field ownership (an apply replaces the stored object,
 * keeping its status), API-server validation and defaulting, or the controllers that would act
 * on the objects (no pods become ready): those are for tests against a real API server.
 */
export class FakeClient {
  /** @param {{clusterScopedKinds?: Iterable<Gvk | {group: string, version: string, kind: string}>}} [options] */
  constructor({ clusterScopedKinds = [] } = {}) {
    /** @type {Map<string, Record<string, any>>} */
    this._objects = new Map();
    /** @type {import('../metadata.js').Metadata | null} */
    this._metadata = null;
    /** @type {string | null} */
    this._reconciled = null;
    /** @type {Array<Record<string, any>>} */
    this._applied = [];
    /** @type {Array<Record<string, any>>} */
    this._statusPatches = [];
    /** @type {Array<{operation: string, error: ClientError}>} */
    this._failures = [];
    this._calls = 0;
    this._clusterScoped = [...clusterScopedKinds].map((k) => Gvk.from(k));
  }

  /**
   * Limits the client to what `metadata` declares, as the host does.
   *
   * @param {import('../metadata.js').Metadata} metadata
   * @returns {this}
   */
  scopeTo(metadata) {
    this._metadata = metadata;
    return this;
  }

  /**
   * Stores an object, replacing one of the same kind and name.
   *
   * @param {Record<string, any>} object with string `apiVersion`, `kind` and `metadata.name`
   * @returns {this}
   * @throws {TypeError} if it lacks one of those: a mistake in the test itself
   */
  insert(object) {
    const copy = clone(object);
    const key = keyOf(copy);
    if (typeof key !== 'string') throw new TypeError(`cannot insert ${JSON.stringify(object)}: ${key.problem}`);
    this._objects.set(key, copy);
    return this;
  }

  /**
   * Stores the object being reconciled: `patchStatus` patches it, `apply` makes it the owner,
   * and its namespace is the namespace of every call. Starts a new reconcile's call count.
   *
   * @param {Record<string, any>} object
   */
  setReconciled(object) {
    this.insert(object);
    this._reconciled = /** @type {string} */ (keyOf(object));
    this._calls = 0;
  }

  /**
   * The stored object of this kind and name, or `null`.
   *
   * @param {Gvk | {group: string, version: string, kind: string}} kind
   * @param {string} name
   * @returns {Record<string, any> | null}
   */
  object(kind, name) {
    const object = this._objects.get(key(Gvk.from(kind), name));
    return object === undefined ? null : clone(object);
  }

  /** The object being reconciled, as stored now (status patches merged in), or `null`. */
  reconciled() {
    const object = this._reconciled === null ? undefined : this._objects.get(this._reconciled);
    return object === undefined ? null : clone(object);
  }

  /**
   * Removes and returns the stored object of this kind and name, or `null`.
   *
   * @param {Gvk | {group: string, version: string, kind: string}} kind
   * @param {string} name
   */
  remove(kind, name) {
    const k = key(Gvk.from(kind), name);
    const object = this._objects.get(k);
    this._objects.delete(k);
    return object === undefined ? null : object;
  }

  /** Every stored object. */
  objects() {
    return [...this._objects.values()].map(clone);
  }

  /** Every object applied so far, as the reconciler sent it, oldest first; refused ones are not included. */
  applied() {
    return this._applied.map(clone);
  }

  /** Every status patch so far, as the reconciler sent it, oldest first. */
  statusPatches() {
    return this._statusPatches.map(clone);
  }

  /**
   * Makes the next call of `operation` fail with `error`, e.g. to test how a reconciler handles
   * an unavailable API server. Failures queue up in order.
   *
   * @param {'get' | 'apply' | 'patchStatus'} operation see {@link Operation}
   * @param {ClientError} error
   */
  failNext(operation, error) {
    if (!Object.values(Operation).includes(operation)) throw new TypeError(`unknown operation ${String(operation)}`);
    if (!(error instanceof ClientError)) throw new TypeError('failNext takes a ClientError');
    this._failures.push({ operation, error });
  }

  /** @param {Gvk} kind @param {string} name @returns {string | null} */
  get(kind, name) {
    this._take(Operation.Get);
    if (this._metadata && !this._metadata.mayGet(kind)) {
      throw ClientError.forbidden(`kind ${kind.group}/${kind.version}/${kind.kind} is not declared in the plugin's metadata`);
    }
    checkName(name);
    this._inScope(kind, null);
    this._count();
    const object = this._objects.get(key(kind, name));
    return object === undefined ? null : JSON.stringify(object);
  }

  /** @param {string} json @returns {string} */
  apply(json) {
    this._take(Operation.Apply);
    checkPayload(json);
    const sent = parseObject(json, 'not a JSON object');
    for (const field of ['apiVersion', 'kind']) {
      if (typeof sent[field] !== 'string' || sent[field] === '') throw ClientError.invalid(`${field} is missing`);
    }
    const kind = Gvk.fromApiVersion(sent.apiVersion, sent.kind);
    if (this._metadata && !this._metadata.mayApply(kind)) {
      throw ClientError.forbidden(`kind ${sent.apiVersion}/${sent.kind} is not declared as owned in the plugin's metadata`);
    }
    const metadata = sent.metadata ?? {};
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
      throw ClientError.invalid('metadata is not an object');
    }
    if (typeof metadata.name !== 'string' || metadata.name === '') throw ClientError.invalid('metadata.name is missing');
    checkName(metadata.name);
    const namespace = this._inScope(kind, typeof metadata.namespace === 'string' ? metadata.namespace : null);
    const k = key(kind, metadata.name);
    if (k === this._reconciled) {
      throw ClientError.invalid(`${sent.kind} ${metadata.name} is the reconciled object: an object cannot own itself`);
    }
    this._count();

    const stored = clone(sent);
    delete stored.status;
    const old = this._objects.get(k);
    if (old && 'status' in old) stored.status = clone(old.status);
    stored.metadata = { ...clone(metadata) };
    if (namespace !== null) stored.metadata.namespace = namespace;
    const owner = this._ownerReference();
    if (owner) stored.metadata.ownerReferences = [owner];
    this._applied.push(sent);
    this._objects.set(k, stored);
    return JSON.stringify(stored);
  }

  /** @param {string} json @returns {string} */
  patchStatus(json) {
    this._take(Operation.PatchStatus);
    checkPayload(json);
    const patch = parseObject(json, 'status is not JSON', 'status must be a JSON object');
    if (this._reconciled === null) throw ClientError.invalid('there is no reconciled object to patch');
    this._count();
    this._statusPatches.push(clone(patch));
    const object = this._objects.get(this._reconciled) ?? {};
    object.status = mergePatch(object.status ?? null, patch);
    this._objects.set(this._reconciled, object);
    return JSON.stringify(object);
  }

  _take(operation) {
    const index = this._failures.findIndex((f) => f.operation === operation);
    if (index !== -1) throw this._failures.splice(index, 1)[0].error;
  }

  _count() {
    this._calls += 1;
    if (this._calls > MAX_API_CALLS) {
      throw ClientError.api(429, `this reconcile made all the ${MAX_API_CALLS} API calls one reconcile may make`);
    }
  }

  /** The namespace a call on `kind` goes to (`null` for a cluster-scoped kind), or `forbidden`. */
  _inScope(kind, requested) {
    if (this._clusterScoped.some((k) => k.equals(kind))) return null;
    const reconciled = this.reconciled();
    if (reconciled === null) return requested;
    const namespace = typeof reconciled.metadata?.namespace === 'string' ? reconciled.metadata.namespace : null;
    if (namespace === null) {
      throw ClientError.forbidden(`the reconciled ${reconciled.kind} is cluster-scoped; namespaced ${kind.kind} objects are out of scope`);
    }
    if (requested !== null && requested !== namespace) {
      throw ClientError.forbidden(`namespace ${JSON.stringify(requested)} is outside the reconciled object's namespace ${namespace}`);
    }
    return namespace;
  }

  _ownerReference() {
    const owner = this.reconciled();
    if (owner === null) return null;
    return {
      apiVersion: owner.apiVersion,
      kind: owner.kind,
      name: owner.metadata.name,
      uid: owner.metadata.uid ?? null,
      controller: true,
      blockOwnerDeletion: true,
    };
  }

  /** Calls counted in the current reconcile (for the test kit). @internal */
  _counts() {
    return { applied: this._applied.length, statusPatches: this._statusPatches.length };
  }
}

/**
 * Applies a JSON merge patch (RFC 7386) to `target` and returns the result; `target` is not changed.
 *
 * @param {unknown} target
 * @param {unknown} patch
 * @returns {any}
 */
export function mergePatch(target, patch) {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return clone(patch);
  const result = target !== null && typeof target === 'object' && !Array.isArray(target) ? clone(target) : {};
  for (const [field, value] of Object.entries(patch)) {
    if (value === null) delete result[field];
    else result[field] = mergePatch(result[field] ?? null, value);
  }
  return result;
}

function key(kind, name) {
  return JSON.stringify([kind.group, kind.version, kind.kind, name]);
}

/** The store key of an object, or `{problem}`. */
function keyOf(object) {
  if (object === null || typeof object !== 'object') return { problem: 'not an object' };
  for (const [field, value] of [['apiVersion', object.apiVersion], ['kind', object.kind], ['metadata.name', object.metadata?.name]]) {
    if (typeof value !== 'string') return { problem: `the object has no string ${field}` };
  }
  return key(Gvk.fromApiVersion(object.apiVersion, object.kind), object.metadata.name);
}

function checkName(name) {
  const problem = objectNameProblem(name);
  if (problem !== null) {
    const shown = [...String(name)].slice(0, 64).join('');
    throw ClientError.invalid(`object name ${JSON.stringify(shown)} is not valid: ${problem}`);
  }
}

function checkPayload(json) {
  const bytes = utf8Length(json);
  if (bytes > MAX_PAYLOAD_BYTES) {
    throw ClientError.invalid(`${bytes} bytes of JSON: the limit for one call is ${MAX_PAYLOAD_BYTES} bytes (the API server's own request limit)`);
  }
}

function parseObject(json, notJson, notObject = notJson) {
  let value;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw ClientError.invalid(`${notJson}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw ClientError.invalid(notObject);
  return value;
}

function clone(value) {
  return value === undefined ? undefined : structuredClone(value);
}
