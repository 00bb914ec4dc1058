// Write wasm-reconciler plugins in JavaScript: Kubernetes reconcile logic that runs as a
// sandboxed WebAssembly component inside the wasm-reconciler host.
//
// A plugin is a module whose default export is a reconciler: an object with `metadata()` and
// `reconcile(ctx, request)`. `build.mjs` turns it into a component; `wasm-reconciler-sdk/testkit`
// runs it in Node against fakes that check what the host checks.

export { Client } from './client.js';
export { Context } from './context.js';
export {
  ClientError,
  ErrorKind,
  EventError,
  MetadataError,
  ReconcileError,
  TerminalError,
  TransientError,
  context,
} from './errors.js';
export { format } from './format.js';
export { Gvk } from './gvk.js';
export { Level, Logger } from './log.js';
export { Metadata } from './metadata.js';
export { defineReconciler } from './reconciler.js';
export { EventType, Normal, Recorder, Warning } from './recorder.js';
export { Request } from './request.js';
export { Response } from './response.js';
export {
  MAX_ANNOTATIONS_BYTES,
  MAX_MESSAGE_BYTES,
  MAX_REASON_LENGTH,
  truncateMessage,
} from './validate.js';
