// Types of wasm-reconciler-sdk/testkit: run a reconciler in Node against fakes that check what the host checks.

import type { ClientError, Event, EventError, EventSink, GvkLike, KubeObject, LevelName, LogSink, Metadata, ObjectClient, Gvk, ReconcileError, Reconciler, Response } from './index.js';

/** An event as the host would post it: plain data, for `assert.deepStrictEqual`. */
export interface RecordedEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  annotations: Record<string, string>;
}

export const RecordedEvent: {
  normal(reason: string, message: string, annotations?: Record<string, string>): RecordedEvent;
  warning(reason: string, message: string, annotations?: Record<string, string>): RecordedEvent;
};

export interface RejectedEvent {
  event: Event;
  error: EventError;
}

export interface LogLine {
  level: LevelName;
  message: string;
}

export class FakeRecorder implements EventSink {
  record(event: Event): void;
  events(): RecordedEvent[];
  rejected(): RejectedEvent[];
}

export class FakeLog implements LogSink {
  constructor(options?: { echo?: boolean });
  log(level: LevelName, message: string): void;
  lines(): LogLine[];
}

export type OperationName = 'get' | 'apply' | 'patchStatus';
export const Operation: { readonly Get: 'get'; readonly Apply: 'apply'; readonly PatchStatus: 'patchStatus' };

/** An in-memory store behind the client that checks kinds, namespace, names, sizes and call counts as the host does. */
export class FakeClient implements ObjectClient {
  constructor(options?: { clusterScopedKinds?: Iterable<GvkLike> });
  scopeTo(metadata: Metadata): this;
  insert(object: KubeObject): this;
  setReconciled(object: KubeObject): void;
  object(kind: GvkLike, name: string): KubeObject | null;
  reconciled(): KubeObject | null;
  remove(kind: GvkLike, name: string): KubeObject | null;
  objects(): KubeObject[];
  applied(): KubeObject[];
  statusPatches(): KubeObject[];
  failNext(operation: OperationName, error: ClientError): void;
  get(kind: Gvk, name: string): string | null;
  apply(object: string): string;
  patchStatus(status: string): string;
}

/** What one `TestKit.reconcile` did. */
export class Outcome {
  private constructor();
  readonly response: Response | null;
  readonly error: ReconcileError | null;
  readonly ok: boolean;
  readonly events: RecordedEvent[];
  readonly rejectedEvents: RejectedEvent[];
  readonly applied: KubeObject[];
  readonly statusPatches: KubeObject[];
  readonly logs: LogLine[];
  readonly object: KubeObject;
  readonly status: KubeObject | null;
}

/** Runs reconcilers over a store that persists across reconciles. */
export class TestKit {
  constructor(options?: { client?: FakeClient; echoLogs?: boolean });
  readonly client: FakeClient;
  withObject(object: KubeObject): this;
  reconcile(reconciler: Reconciler, object: KubeObject): Outcome;
}

export function mergePatch(target: unknown, patch: unknown): any;
