// Types of wasm-reconciler-sdk: write wasm-reconciler plugins (Kubernetes reconcilers as
// WebAssembly components) in JavaScript or TypeScript. The docs are on the JavaScript sources.

/** A kind's fields, as the WIT `group-version-kind` record has them. */
export interface GvkLike {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
}

/** A Kubernetes kind: group (`''` for the core group), version and kind. Frozen. */
export class Gvk implements GvkLike {
  constructor(group: string, version: string, kind: string);
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  /** `group/version`, or `version` alone for the core group. */
  readonly apiVersion: string;
  static fromApiVersion(apiVersion: string, kind: string): Gvk;
  static from(value: GvkLike): Gvk;
  equals(other: GvkLike | null | undefined): boolean;
  /** `apps/v1, Kind=Deployment`. */
  toString(): string;
  toJSON(): { group: string; version: string; kind: string };
}

/** What a plugin declares about itself: its name and the kinds it reconciles, owns and reads. */
export class Metadata {
  constructor(name: string, reconciles: GvkLike);
  readonly name: string;
  readonly reconciles: Gvk;
  readonly ownedKinds: readonly Gvk[];
  readonly readKinds: readonly Gvk[];
  /** Declares an owned kind (`Owns`): get and apply, the host sets the controller owner reference. */
  owns(kind: GvkLike): this;
  /** Declares a kind the plugin may only get. */
  reads(kind: GvkLike): this;
  mayGet(kind: GvkLike): boolean;
  mayApply(kind: GvkLike): boolean;
  /** Checks what the host checks at load; throws a `MetadataError`. */
  validate(): void;
  toJSON(): { name: string; reconciles: GvkLike; owns: GvkLike[]; reads: GvkLike[] };
}

/** A Kubernetes object as JSON. */
export type KubeObject = Record<string, any>;

/** One call to `reconcile`: the reconciled object as the API server returned it. */
export class Request {
  private constructor();
  static fromJson(json: string): Request;
  readonly objectJson: string;
  readonly object: KubeObject;
  readonly name: string;
  readonly namespace: string | null;
  readonly generation: number | null;
  readonly uid: string | null;
  readonly resourceVersion: string | null;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly gvk: Gvk | null;
  readonly isBeingDeleted: boolean;
}

/** What to do after a successful reconcile. */
export class Response {
  private constructor();
  /** `Result{}`: wait for the next change. */
  static awaitChange(): Response;
  /** `Result{RequeueAfter: d}`, in milliseconds (rounded up); throws `RangeError` on a negative or non-finite delay. */
  static requeueAfter(ms: number): Response;
  /** Whole milliseconds, or `null` to wait for the next change. */
  readonly requeueAfterMs: number | null;
}

export type EventTypeName = 'Normal' | 'Warning';
export const EventType: { readonly Normal: 'Normal'; readonly Warning: 'Warning' };
export const Normal: 'Normal';
export const Warning: 'Warning';

/** Annotations for an Event: a plain object, a `Map`, or `[key, value]` pairs. */
export type Annotations = Readonly<Record<string, string>> | ReadonlyMap<string, string> | Iterable<readonly [string, string]>;

/** One event, as an event sink gets it. */
export interface Event {
  type: EventTypeName;
  reason: string;
  message: string;
  annotations: Array<[string, string]>;
}

/** Where a `Recorder` sends events. Throws an `EventError` to refuse one. */
export interface EventSink {
  record(event: Event): void;
}

/** Records Events about the reconciled object (controller-runtime's `EventRecorder`). Each method throws an `EventError` if the host refuses the event. */
export class Recorder {
  constructor(sink: EventSink);
  event(type: EventTypeName, reason: string, message: string): void;
  /** `Eventf`: `%s %d %i %f %j %o %O %%` as in Node's `util.format`. */
  eventf(type: EventTypeName, reason: string, format: string, ...args: unknown[]): void;
  annotatedEvent(annotations: Annotations, type: EventTypeName, reason: string, message: string): void;
  /** `AnnotatedEventf`. */
  annotatedEventf(annotations: Annotations, type: EventTypeName, reason: string, format: string, ...args: unknown[]): void;
}

/** The calls behind a `Client`, on JSON text. Each throws a `ClientError` on failure. */
export interface ObjectClient {
  get(kind: Gvk, name: string): string | null;
  apply(object: string): string;
  patchStatus(status: string): string;
}

/** A client scoped to the declared kinds and the reconciled object's namespace. Every method throws a `ClientError` on failure. */
export class Client {
  constructor(inner: ObjectClient);
  get<T extends KubeObject = KubeObject>(kind: GvkLike, name: string): T | null;
  getRaw(kind: GvkLike, name: string): string | null;
  apply<T extends KubeObject = KubeObject>(object: KubeObject): T;
  applyRaw(json: string): string;
  patchStatus<T extends KubeObject = KubeObject>(status: KubeObject): T;
  patchStatusRaw(json: string): string;
}

export type LevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export const Level: {
  readonly Trace: 'trace';
  readonly Debug: 'debug';
  readonly Info: 'info';
  readonly Warn: 'warn';
  readonly Error: 'error';
};

/** Where a `Logger` writes. */
export interface LogSink {
  log(level: LevelName, message: string): void;
}

/** Writes to the host's log; arguments are formatted like `console.log`. */
export class Logger {
  constructor(sink: LogSink);
  log(level: LevelName, ...args: unknown[]): void;
  trace(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/** What one reconcile may use. */
export class Context {
  constructor(sinks: { events: EventSink; client: ObjectClient; log: LogSink });
  readonly recorder: Recorder;
  readonly client: Client;
  readonly log: Logger;
}

/** A plugin: the default export of its main module. */
export interface Reconciler {
  /** Called once, at load, before any object exists: must not use a context. */
  metadata(): Metadata;
  /** Synchronous; a fresh instance each call. Return nothing for `Response.awaitChange()`; throw to fail. */
  reconcile(ctx: Context, request: Request): Response | void;
}

/** Checks the shape of a reconciler and returns it. */
export function defineReconciler<R extends Reconciler>(reconciler: R): R;

export const ErrorKind: { readonly Transient: 'transient'; readonly Terminal: 'terminal' };
export type ErrorKindName = 'transient' | 'terminal';

/** Why a reconcile failed, and whether retrying can help. */
export class ReconcileError extends Error {
  constructor(kind: ErrorKindName, message: string, options?: { cause?: unknown });
  readonly kind: ErrorKindName;
  readonly isTransient: boolean;
  readonly isTerminal: boolean;
  static transient(message: string, options?: { cause?: unknown }): TransientError;
  static terminal(message: string, options?: { cause?: unknown }): TerminalError;
  /** Converts anything thrown: client `unavailable`/`api` and unknown errors transient; client `forbidden`/`invalid`/`decode`, `EventError`, `MetadataError` terminal. */
  static from(error: unknown): ReconcileError;
  /** The same kind, with `what: ` in front of the message. */
  context(what: string): ReconcileError;
}
export class TransientError extends ReconcileError {
  constructor(message: string, options?: { cause?: unknown });
  readonly kind: 'transient';
}
export class TerminalError extends ReconcileError {
  constructor(message: string, options?: { cause?: unknown });
  readonly kind: 'terminal';
}

/** Runs `fn`; rethrows what it throws as a `ReconcileError` with `what: ` in front of the message. */
export function context<T>(what: string, fn: () => T): T;

export type ClientErrorKind = 'forbidden' | 'invalid' | 'api' | 'unavailable' | 'decode';

/** Why a client call failed. */
export class ClientError extends Error {
  constructor(kind: ClientErrorKind, detail: string, code?: number);
  readonly kind: ClientErrorKind;
  readonly detail: string;
  /** The HTTP status code, for `api`. */
  readonly code: number | undefined;
  readonly isConflict: boolean;
  static forbidden(detail: string): ClientError;
  static invalid(detail: string): ClientError;
  static api(code: number, detail: string): ClientError;
  static unavailable(detail: string): ClientError;
  static decode(detail: string): ClientError;
}

export type EventErrorKind = 'invalid-reason' | 'invalid-annotation' | 'no-object';

/** Why the host refused an event. */
export class EventError extends Error {
  constructor(kind: EventErrorKind, detail?: string);
  readonly kind: EventErrorKind;
  readonly detail: string;
}

/** Why `Metadata.validate` refused the metadata. */
export class MetadataError extends Error {}

/** `util.format`-style formatting, as `eventf` and the logger use it. */
export function format(format?: unknown, ...args: unknown[]): string;

/** Cuts a message over 1024 UTF-8 bytes as the host does. */
export function truncateMessage(message: string): string;
export const MAX_MESSAGE_BYTES: 1024;
export const MAX_REASON_LENGTH: 128;
export const MAX_ANNOTATIONS_BYTES: number;
