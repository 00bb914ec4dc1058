// What a plugin declares about itself: its name and the kinds it may touch.

import { MetadataError } from './errors.js';
import { Gvk } from './gvk.js';
import { isDns1123Label } from './validate.js';

/**
 * What a plugin declares about itself, returned by the reconciler's `metadata()`. The host reads
 * it once, when it loads the plugin, and from then on refuses every client call on a kind the
 * plugin did not declare here. It is controller-runtime's `For(..).Owns(..)` written down as data:
 *
 * | `Metadata`          | controller-runtime       | the plugin may                     |
 * |---------------------|--------------------------|------------------------------------|
 * | `new Metadata(name, kind)` | `Named(name).For(kind)` | get it, patch its status     |
 * | `.owns(kind)`       | `Owns(kind)`             | get and apply; changes requeue the owner |
 * | `.reads(kind)`      | a cached client read     | get                                |
 *
 * ```js
 * new Metadata('myresource-js', new Gvk('mygroup.example.com', 'v1alpha1', 'JsResource'))
 *   .owns(new Gvk('apps', 'v1', 'Deployment'));
 * ```
 */
export class Metadata {
  /**
   * @param {string} name a DNS-1123 label (see {@link Metadata#validate}): it names the
   *   controller, the server-side-apply field manager and the source of every Event
   * @param {Gvk | {group: string, version: string, kind: string}} reconciles the kind reconciled
   */
  constructor(name, reconciles) {
    /** @readonly @type {string} */
    this.name = name;
    /** @readonly @type {Gvk} */
    this.reconciles = Gvk.from(reconciles);
    /** @type {Gvk[]} */
    this._owns = [];
    /** @type {Gvk[]} */
    this._reads = [];
  }

  /**
   * Declares a kind the plugin creates and owns, like controller-runtime's `Owns`. The plugin
   * may get and apply objects of this kind; the host sets the controller owner reference on
   * every apply, and a change to an owned object requeues its owner.
   *
   * @param {Gvk | {group: string, version: string, kind: string}} kind
   * @returns {this}
   */
  owns(kind) {
    this._owns.push(Gvk.from(kind));
    return this;
  }

  /**
   * Declares a kind the plugin may only read with `ctx.client.get`.
   *
   * @param {Gvk | {group: string, version: string, kind: string}} kind
   * @returns {this}
   */
  reads(kind) {
    this._reads.push(Gvk.from(kind));
    return this;
  }

  /** The kinds the plugin owns. @type {readonly Gvk[]} */
  get ownedKinds() {
    return [...this._owns];
  }

  /** The kinds the plugin only reads. @type {readonly Gvk[]} */
  get readKinds() {
    return [...this._reads];
  }

  /**
   * Whether the plugin may `get` objects of `kind`: the reconciled kind, an owned or a read kind.
   *
   * @param {Gvk | {group: string, version: string, kind: string}} kind
   * @returns {boolean}
   */
  mayGet(kind) {
    return this.reconciles.equals(kind) || this.mayApply(kind) || this._reads.some((k) => k.equals(kind));
  }

  /**
   * Whether the plugin may `apply` objects of `kind`: only owned kinds.
   *
   * @param {Gvk | {group: string, version: string, kind: string}} kind
   * @returns {boolean}
   */
  mayApply(kind) {
    return this._owns.some((k) => k.equals(kind));
  }

  /**
   * Checks what the host checks when it loads the plugin: the name is a DNS-1123 label (1-63
   * lowercase letters, digits and `-`, alphanumeric at both ends), and every declared kind has
   * a version and a kind.
   *
   * @returns {void}
   * @throws {MetadataError} naming what is wrong
   */
  validate() {
    if (!isDns1123Label(this.name)) {
      throw new MetadataError(
        `plugin name ${JSON.stringify(this.name)} is not a DNS-1123 label (1-63 of a-z, 0-9 and '-', alphanumeric at both ends)`,
      );
    }
    for (const kind of [this.reconciles, ...this._owns, ...this._reads]) {
      if (kind.version === '' || kind.kind === '') {
        throw new MetadataError(`declared kind ${kind} has an empty version or kind`);
      }
    }
  }

  /** The WIT `plugin-metadata` record. */
  toJSON() {
    return {
      name: this.name,
      reconciles: this.reconciles.toJSON(),
      owns: this._owns.map((k) => k.toJSON()),
      reads: this._reads.map((k) => k.toJSON()),
    };
  }
}
