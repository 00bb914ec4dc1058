// Log lines written to the host's log, inside the span of the current reconcile.

import { format } from './format.js';

/** How important a log line is: the WIT `level` names. */
export const Level = Object.freeze({
  Trace: 'trace',
  Debug: 'debug',
  Info: 'info',
  Warn: 'warn',
  Error: 'error',
});

const LEVELS = new Set(Object.values(Level));

/**
 * @typedef {object} LogSink where a {@link Logger} writes: the host's `log` import in a plugin,
 *   a `FakeLog` in tests
 * @property {(level: 'trace' | 'debug' | 'info' | 'warn' | 'error', message: string) => void} log
 */

/**
 * Writes log lines to the host's log. The host files them under the span of the reconcile
 * (plugin, kind, namespace, name), so a message need not repeat those. Each method formats its
 * arguments like `console.log` (`%s`, `%d`, `%j`, ... as in Node's `util.format`):
 *
 * ```js
 * ctx.log.info('deployment is up to date');
 * ctx.log.debug('want %d replicas', replicas);
 * ```
 */
export class Logger {
  /** @param {LogSink} sink */
  constructor(sink) {
    /** @private */
    this._sink = sink;
  }

  /**
   * Writes at `level`.
   *
   * @param {'trace' | 'debug' | 'info' | 'warn' | 'error'} level
   * @param {...unknown} args
   */
  log(level, ...args) {
    if (!LEVELS.has(level)) throw new TypeError(`log level must be one of ${[...LEVELS].join(', ')}, got ${String(level)}`);
    this._sink.log(level, format(...args));
  }

  /** @param {...unknown} args */
  trace(...args) {
    this.log(Level.Trace, ...args);
  }

  /** @param {...unknown} args */
  debug(...args) {
    this.log(Level.Debug, ...args);
  }

  /** @param {...unknown} args */
  info(...args) {
    this.log(Level.Info, ...args);
  }

  /** @param {...unknown} args */
  warn(...args) {
    this.log(Level.Warn, ...args);
  }

  /** @param {...unknown} args */
  error(...args) {
    this.log(Level.Error, ...args);
  }
}
