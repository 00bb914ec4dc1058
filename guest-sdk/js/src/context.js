// What a reconcile may use: the event recorder, the client and the log.

import { Client } from './client.js';
import { Logger } from './log.js';
import { Recorder } from './recorder.js';

/**
 * The capabilities the host gives one reconcile: an event `recorder`, a scoped `client` and a
 * `log`. In a plugin the SDK builds it over the host's imports; the test kit builds it over
 * fakes. To test with doubles of your own, build one from three sinks:
 *
 * ```js
 * const ctx = new Context({ events: { record(event) {} }, client: myObjectClient, log: { log(level, message) {} } });
 * ```
 */
export class Context {
  /**
   * @param {{events: import('./recorder.js').EventSink, client: import('./client.js').ObjectClient, log: import('./log.js').LogSink}} sinks
   */
  constructor({ events, client, log }) {
    /** Records Events about the reconciled object. @readonly @type {Recorder} */
    this.recorder = new Recorder(events);
    /** Reads and writes objects, scoped to the declared kinds and the object's namespace. @readonly @type {Client} */
    this.client = new Client(client);
    /** Writes to the host's log. @readonly @type {Logger} */
    this.log = new Logger(log);
    Object.freeze(this);
  }
}
