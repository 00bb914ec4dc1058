// Kubernetes Events about the reconciled object, like controller-runtime's `EventRecorder`.

import { format } from './format.js';

/** The type of an event. */
export const EventType = Object.freeze({
  /** Something expected happened (`corev1.EventTypeNormal`). */
  Normal: 'Normal',
  /** Something someone should look at (`corev1.EventTypeWarning`). */
  Warning: 'Warning',
});

/** `EventType.Normal`, for `recorder.eventf(Normal, ...)`. */
export const Normal = EventType.Normal;
/** `EventType.Warning`, for `recorder.eventf(Warning, ...)`. */
export const Warning = EventType.Warning;

/**
 * @typedef {object} Event one event, as handed to an event sink
 * @property {'Normal' | 'Warning'} type
 * @property {string} reason the UpperCamelCase reason, e.g. `Created`
 * @property {string} message the human-readable message
 * @property {Array<[string, string]>} annotations for the Event object; empty for a plain event
 */

/**
 * @typedef {object} EventSink where a {@link Recorder} sends events: the host's
 *   `event-recorder` import in a plugin, a `FakeRecorder` in tests
 * @property {(event: Event) => void} record records one event; throws an `EventError` if the
 *   event is refused, and nothing is recorded then
 */

/**
 * Records Events about the reconciled object, like controller-runtime's `EventRecorder`;
 * `kubectl describe` shows them under the object. Every event is about the object of the
 * current reconcile.
 *
 * ```js
 * ctx.recorder.event(Normal, 'Synced', 'Everything is up to date');
 * ctx.recorder.eventf(Normal, 'Created', 'Created deployment %s', name);
 * ctx.recorder.annotatedEventf({ 'example.com/revision': '3' }, Warning, 'Degraded', '%d of %d ready', 1, 3);
 * ```
 *
 * The host checks each event before queueing it: the reason must be UpperCamelCase, 1-128
 * characters (`^[A-Z][A-Za-z0-9]*$`); annotation keys must be valid Kubernetes annotation keys,
 * none twice, at most 256 KiB in total; a message over 1024 bytes is cut on a character
 * boundary and ends with `" ..."`. A refused event throws an `EventError` and is not sent. Left
 * uncaught, it fails the reconcile as a terminal error (it is a bug in the plugin); catch it to
 * ignore it the way Go code does.
 *
 * Recording never waits for the API server: the host delivers events in the background and
 * folds repeats together the way client-go does.
 */
export class Recorder {
  /** @param {EventSink} sink */
  constructor(sink) {
    /** @private */
    this._sink = sink;
  }

  /**
   * Records an event (`Event(object, type, reason, message)`).
   *
   * @param {'Normal' | 'Warning'} type
   * @param {string} reason
   * @param {string} message
   * @throws {import('./errors.js').EventError} if the host refuses it
   */
  event(type, reason, message) {
    this._sink.record({ type: checkType(type), reason: String(reason), message: String(message), annotations: [] });
  }

  /**
   * Records an event with a formatted message (`Eventf`): `format` takes `%s`, `%d`, `%i`,
   * `%f`, `%j`, `%o`/`%O` and `%%` as Node's `util.format` does.
   *
   * @param {'Normal' | 'Warning'} type
   * @param {string} reason
   * @param {string} template
   * @param {...unknown} args
   * @throws {import('./errors.js').EventError} if the host refuses it
   */
  eventf(type, reason, template, ...args) {
    this.event(type, reason, format(template, ...args));
  }

  /**
   * Records an event with annotations on the Event object.
   *
   * @param {Annotations} annotations a plain object, a `Map`, or an iterable of `[key, value]` pairs
   * @param {'Normal' | 'Warning'} type
   * @param {string} reason
   * @param {string} message
   * @throws {import('./errors.js').EventError} if the host refuses it
   */
  annotatedEvent(annotations, type, reason, message) {
    this._sink.record({
      type: checkType(type),
      reason: String(reason),
      message: String(message),
      annotations: annotationPairs(annotations),
    });
  }

  /**
   * Records an event with annotations and a formatted message (`AnnotatedEventf`).
   *
   * @param {Annotations} annotations
   * @param {'Normal' | 'Warning'} type
   * @param {string} reason
   * @param {string} template
   * @param {...unknown} args
   * @throws {import('./errors.js').EventError} if the host refuses it
   */
  annotatedEventf(annotations, type, reason, template, ...args) {
    this.annotatedEvent(annotations, type, reason, format(template, ...args));
  }
}

/** @typedef {Record<string, string> | Map<string, string> | Iterable<readonly [string, string]>} Annotations */

function checkType(type) {
  if (type !== EventType.Normal && type !== EventType.Warning) {
    throw new TypeError(`event type must be 'Normal' or 'Warning', got ${String(type)}`);
  }
  return type;
}

/** @returns {Array<[string, string]>} */
function annotationPairs(annotations) {
  if (annotations == null) return [];
  const entries =
    annotations instanceof Map || typeof annotations[Symbol.iterator] === 'function'
      ? [...annotations]
      : Object.entries(annotations);
  return entries.map((entry) => {
    if (!Array.isArray(entry) || entry.length !== 2) {
      throw new TypeError('annotations must be an object, a Map or [key, value] pairs');
    }
    return [String(entry[0]), String(entry[1])];
  });
}
