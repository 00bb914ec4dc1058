// What a successful reconcile asks of the host next.

/**
 * What to do after a successful reconcile, like controller-runtime's `Result`.
 *
 * ```js
 * return Response.awaitChange();                 // ctrl.Result{}
 * return Response.requeueAfter(5 * 60 * 1000);   // ctrl.Result{RequeueAfter: 5 * time.Minute}
 * ```
 *
 * Returning nothing (`undefined`) from `reconcile` is the same as `Response.awaitChange()`.
 */
export class Response {
  /** @param {number | null} requeueAfterMs */
  constructor(requeueAfterMs) {
    /**
     * The delay after which the host reconciles again even if nothing changes, in whole
     * milliseconds; `null` to wait for the next change.
     * @readonly @type {number | null}
     */
    this.requeueAfterMs = requeueAfterMs;
    Object.freeze(this);
  }

  /**
   * Waits for the next change to the object or one of its owned objects (`Result{}`).
   *
   * @returns {Response}
   */
  static awaitChange() {
    return AWAIT_CHANGE;
  }

  /**
   * Reconciles the object again after `ms` milliseconds even if nothing changes
   * (`Result{RequeueAfter: d}`). A change before then still reconciles at once. The host works
   * in whole milliseconds: a fraction is rounded up.
   *
   * @param {number} ms a finite number of milliseconds, at least 0
   * @returns {Response}
   * @throws {RangeError} if `ms` is negative, not finite, or more than `Number.MAX_SAFE_INTEGER`
   */
  static requeueAfter(ms) {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || ms > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`requeueAfter takes a finite number of milliseconds >= 0, got ${String(ms)}`);
    }
    return new Response(Math.ceil(ms));
  }
}

const AWAIT_CHANGE = new Response(null);
