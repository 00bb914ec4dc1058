// Errors: how a reconcile fails (transient or terminal), and what the client and the recorder throw.

/** Whether retrying a failed reconcile can help. */
export const ErrorKind = Object.freeze({
  /** Retry with per-object exponential backoff. */
  Transient: 'transient',
  /** Do not retry until the object (or one it owns) changes. */
  Terminal: 'terminal',
});

/**
 * Why a reconcile failed, and whether retrying can help: throw one from `reconcile`.
 *
 * Build one with {@link ReconcileError.transient} (the host retries the object with per-object
 * exponential backoff, like returning an `error` in controller-runtime) or
 * {@link ReconcileError.terminal} (the host waits for the object to change, like
 * `reconcile.TerminalError`), or the subclasses {@link TransientError} and {@link TerminalError}.
 *
 * Anything else thrown from `reconcile` is converted by {@link ReconcileError.from}:
 *
 * | thrown                                  | kind      | why                              |
 * |-----------------------------------------|-----------|----------------------------------|
 * | `ClientError` `unavailable`, `api`      | transient | the API server may come back, conflicts and throttling pass |
 * | `ClientError` `forbidden`, `invalid`, `decode` | terminal | the same call fails again  |
 * | `EventError`                            | terminal  | a bad reason is a bug in the plugin |
 * | `MetadataError`                         | terminal  | the metadata will not change      |
 * | any other value (a `TypeError`, ...)    | transient | like a Go `error`: retried with backoff |
 */
export class ReconcileError extends Error {
  /**
   * @param {'transient' | 'terminal'} kind
   * @param {string} message
   * @param {{cause?: unknown}} [options]
   */
  constructor(kind, message, options) {
    super(String(message), options);
    if (kind !== ErrorKind.Transient && kind !== ErrorKind.Terminal) {
      throw new TypeError(`ReconcileError kind must be 'transient' or 'terminal', got ${String(kind)}`);
    }
    /** @readonly @type {'transient' | 'terminal'} */
    this.kind = kind;
  }

  get name() {
    return this.kind === ErrorKind.Transient ? 'TransientError' : 'TerminalError';
  }

  /**
   * A failure that may pass on its own: the host retries with backoff.
   *
   * @param {string} message
   * @param {{cause?: unknown}} [options]
   * @returns {TransientError}
   */
  static transient(message, options) {
    return new TransientError(message, options);
  }

  /**
   * A failure that retrying cannot fix: the host waits for the object to change.
   *
   * @param {string} message
   * @param {{cause?: unknown}} [options]
   * @returns {TerminalError}
   */
  static terminal(message, options) {
    return new TerminalError(message, options);
  }

  /**
   * Converts anything thrown into a `ReconcileError`, with the kinds in the table above. A
   * `ReconcileError` is returned as it is.
   *
   * @param {unknown} error
   * @returns {ReconcileError}
   */
  static from(error) {
    if (error instanceof ReconcileError) return error;
    if (error instanceof ClientError) {
      const transient = error.kind === 'unavailable' || error.kind === 'api';
      return new (transient ? TransientError : TerminalError)(error.message, { cause: error });
    }
    if (error instanceof EventError || error instanceof MetadataError) {
      return new TerminalError(error.message, { cause: error });
    }
    if (error instanceof Error) {
      return new TransientError(`${error.name}: ${error.message}`, { cause: error });
    }
    return new TransientError(`uncaught ${describe(error)}`, { cause: error });
  }

  /** Whether the host will retry with backoff. */
  get isTransient() {
    return this.kind === ErrorKind.Transient;
  }

  /** Whether the host will wait for the object to change. */
  get isTerminal() {
    return this.kind === ErrorKind.Terminal;
  }

  /**
   * The same kind of error with what was being done in front of the message:
   * `"get deployment demo: API server unavailable: ..."`.
   *
   * @param {string} what
   * @returns {ReconcileError}
   */
  context(what) {
    const Kind = this.isTransient ? TransientError : TerminalError;
    return new Kind(`${what}: ${this.message}`, { cause: this.cause ?? this });
  }
}

/** A failure that may pass on its own: the host retries the object with backoff. */
export class TransientError extends ReconcileError {
  /**
   * @param {string} message
   * @param {{cause?: unknown}} [options]
   */
  constructor(message, options) {
    super(ErrorKind.Transient, message, options);
  }
}

/** A failure retrying cannot fix: the host waits for the object to change. */
export class TerminalError extends ReconcileError {
  /**
   * @param {string} message
   * @param {{cause?: unknown}} [options]
   */
  constructor(message, options) {
    super(ErrorKind.Terminal, message, options);
  }
}

/**
 * Runs `fn` and returns what it returns; if it throws, rethrows the error converted by
 * {@link ReconcileError.from} with `what` in front of its message, keeping its kind (like Rust's
 * `.context()`):
 *
 * ```js
 * const deployment = context(`get deployment ${name}`, () => ctx.client.get(DEPLOYMENT, name));
 * // on failure: TransientError "get deployment demo: API server unavailable: connection refused"
 * ```
 *
 * @template T
 * @param {string} what
 * @param {() => T} fn
 * @returns {T}
 */
export function context(what, fn) {
  try {
    return fn();
  } catch (error) {
    throw ReconcileError.from(error).context(what);
  }
}

/**
 * Why a client call failed. `kind` says which, as in the WIT `client-error`:
 *
 * - `forbidden`: the plugin did not declare this kind (or may not use this verb on it), or the
 *   object is outside the reconciled object's namespace;
 * - `invalid`: the object given is not valid for this call;
 * - `api`: the API server refused the request (`code` is the HTTP status, e.g. 409 Conflict), or
 *   the host did with 429 because this reconcile made all the API calls one reconcile may make;
 * - `unavailable`: the API server could not be reached;
 * - `decode`: the SDK's own: the host's answer was not JSON.
 */
export class ClientError extends Error {
  /**
   * @param {'forbidden' | 'invalid' | 'api' | 'unavailable' | 'decode'} kind
   * @param {string} detail what the host (or the SDK) said
   * @param {number} [code] the HTTP status code, for `api`
   */
  constructor(kind, detail, code) {
    super(clientMessage(kind, detail, code));
    /** @readonly */ this.kind = kind;
    /** @readonly */ this.detail = String(detail);
    /** @readonly @type {number | undefined} */ this.code = kind === 'api' ? Number(code) : undefined;
  }

  get name() {
    return 'ClientError';
  }

  /** @param {string} detail */
  static forbidden(detail) {
    return new ClientError('forbidden', detail);
  }

  /** @param {string} detail */
  static invalid(detail) {
    return new ClientError('invalid', detail);
  }

  /**
   * @param {number} code
   * @param {string} detail
   */
  static api(code, detail) {
    return new ClientError('api', detail, code);
  }

  /** @param {string} detail */
  static unavailable(detail) {
    return new ClientError('unavailable', detail);
  }

  /** @param {string} detail */
  static decode(detail) {
    return new ClientError('decode', detail);
  }

  /** Whether the API server answered 409 Conflict. */
  get isConflict() {
    return this.kind === 'api' && this.code === 409;
  }
}

function clientMessage(kind, detail, code) {
  switch (kind) {
    case 'forbidden':
      return `forbidden: ${detail}`;
    case 'invalid':
      return `invalid object: ${detail}`;
    case 'api':
      return `API server refused the request (${code}): ${detail}`;
    case 'unavailable':
      return `API server unavailable: ${detail}`;
    case 'decode':
      return `cannot decode the object returned by the host: ${detail}`;
    default:
      throw new TypeError(`unknown ClientError kind ${String(kind)}`);
  }
}

/**
 * Why the host refused an event; nothing is sent for a refused event. `kind` is
 * `invalid-reason`, `invalid-annotation` or `no-object` (recorded outside of `reconcile`).
 */
export class EventError extends Error {
  /**
   * @param {'invalid-reason' | 'invalid-annotation' | 'no-object'} kind
   * @param {string} [detail]
   */
  constructor(kind, detail = '') {
    super(eventMessage(kind, detail));
    /** @readonly */ this.kind = kind;
    /** @readonly */ this.detail = String(detail);
  }

  get name() {
    return 'EventError';
  }
}

function eventMessage(kind, detail) {
  switch (kind) {
    case 'invalid-reason':
      return `invalid event reason: ${detail}`;
    case 'invalid-annotation':
      return `invalid event annotation: ${detail}`;
    case 'no-object':
      return 'no object to record an event about: events can only be recorded during reconcile';
    default:
      throw new TypeError(`unknown EventError kind ${String(kind)}`);
  }
}

/** Why {@link Metadata#validate} refused a plugin's metadata. */
export class MetadataError extends Error {
  get name() {
    return 'MetadataError';
  }
}

function describe(value) {
  try {
    return typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
