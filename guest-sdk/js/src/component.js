// The glue between a reconciler and the WIT world `wasm-reconciler:plugin/reconciler@0.1.0`:
// the capabilities backed by the host's imports, and the exports the component carries.
// `build.mjs` generates the component's entry module around `exportReconciler`; this module
// only loads inside a component, where the `wasm-reconciler:plugin/...` imports exist.

import * as witClient from 'wasm-reconciler:plugin/client@0.1.0';
import * as witEvents from 'wasm-reconciler:plugin/event-recorder@0.1.0';
import * as witLog from 'wasm-reconciler:plugin/log@0.1.0';

import { Context } from './context.js';
import { ClientError, EventError } from './errors.js';
import { format } from './format.js';
import { metadataOf, runReconcile } from './reconciler.js';

/** Events through the `event-recorder` import. */
const hostEvents = {
  record({ type, reason, message, annotations }) {
    const witType = type === 'Warning' ? 'warning' : 'normal';
    try {
      if (annotations.length === 0) {
        witEvents.event(witType, reason, message);
      } else {
        witEvents.annotatedEvent(annotations, witType, reason, message);
      }
    } catch (error) {
      const payload = payloadOf(error);
      switch (payload?.tag) {
        case 'invalid-reason':
        case 'invalid-annotation':
          throw new EventError(payload.tag, payload.val);
        case 'no-object':
          throw new EventError('no-object');
        default:
          throw error;
      }
    }
  },
};

/** Objects through the `client` import. */
const hostClient = {
  get(kind, name) {
    return callClient(() => witClient.get(kind.toJSON(), name)) ?? null;
  },
  apply(object) {
    return callClient(() => witClient.apply(object));
  },
  patchStatus(status) {
    return callClient(() => witClient.patchStatus(status));
  },
};

/** Lines through the `log` import. */
const hostLog = {
  log(level, message) {
    witLog.log(level, message);
  },
};

function callClient(call) {
  try {
    return call();
  } catch (error) {
    const payload = payloadOf(error);
    switch (payload?.tag) {
      case 'forbidden':
      case 'invalid':
      case 'unavailable':
        throw new ClientError(payload.tag, payload.val);
      case 'api':
        throw ClientError.api(payload.val[0], payload.val[1]);
      default:
        throw error;
    }
  }
}

/** The WIT error value the bindings attach to what a failed import throws. */
function payloadOf(error) {
  return error !== null && typeof error === 'object' && 'payload' in error ? error.payload : undefined;
}

/**
 * `console` for plugins: the component has no stdout or stderr (stdio is disabled), so
 * `console.log` and friends write to the host's log, like `ctx.log`.
 */
const hostConsole = {
  trace: (...args) => hostLog.log('trace', format(...args)),
  debug: (...args) => hostLog.log('debug', format(...args)),
  log: (...args) => hostLog.log('info', format(...args)),
  info: (...args) => hostLog.log('info', format(...args)),
  warn: (...args) => hostLog.log('warn', format(...args)),
  error: (...args) => hostLog.log('error', format(...args)),
};

/**
 * The component's exports for `reconciler`: `metadata()` returning the WIT `plugin-metadata`
 * record, and `reconcile(request)` returning the WIT `result<reconcile-response, reconcile-error>`
 * explicitly as `{tag, val}`.
 *
 * @param {import('./reconciler.js').Reconciler} reconciler
 */
export function exportReconciler(reconciler) {
  globalThis.console = Object.assign(Object.create(null), globalThis.console ?? {}, hostConsole);
  return {
    metadata() {
      return metadataOf(reconciler).toJSON();
    },
    reconcile(request) {
      const ctx = new Context({ events: hostEvents, client: hostClient, log: hostLog });
      const { ok, error } = runReconcile(reconciler, ctx, request.object);
      if (error) {
        return { tag: 'err', val: { tag: error.kind, val: error.message } };
      }
      const ms = ok.requeueAfterMs;
      return { tag: 'ok', val: { requeueAfterMs: ms === null ? undefined : BigInt(ms) } };
    },
  };
}
