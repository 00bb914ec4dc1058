// Kubernetes kinds as group, version and kind.

/**
 * A Kubernetes kind: group, version and kind, like apimachinery's `GroupVersionKind`. The core
 * group is the empty string. Instances are frozen, so kinds used in several places read well
 * as module constants:
 *
 * ```js
 * const DEPLOYMENT = new Gvk('apps', 'v1', 'Deployment');
 * DEPLOYMENT.apiVersion; // 'apps/v1'
 * new Gvk('', 'v1', 'ConfigMap').apiVersion; // 'v1'
 * ```
 */
export class Gvk {
  /**
   * @param {string} group the API group; `''` for the core group
   * @param {string} version e.g. `v1`
   * @param {string} kind e.g. `Deployment`
   */
  constructor(group, version, kind) {
    for (const [field, value] of [['group', group], ['version', version], ['kind', kind]]) {
      if (typeof value !== 'string') throw new TypeError(`Gvk ${field} must be a string, got ${typeof value}`);
    }
    /** @readonly */ this.group = group;
    /** @readonly */ this.version = version;
    /** @readonly */ this.kind = kind;
    Object.freeze(this);
  }

  /**
   * A kind from an object's `apiVersion` (`'apps/v1'`, or `'v1'` for the core group) and `kind`.
   *
   * @param {string} apiVersion
   * @param {string} kind
   * @returns {Gvk}
   */
  static fromApiVersion(apiVersion, kind) {
    const slash = apiVersion.indexOf('/');
    return slash === -1
      ? new Gvk('', apiVersion, kind)
      : new Gvk(apiVersion.slice(0, slash), apiVersion.slice(slash + 1), kind);
  }

  /**
   * A `Gvk` from anything with string `group`, `version` and `kind` fields.
   *
   * @param {{group: string, version: string, kind: string}} value
   * @returns {Gvk}
   */
  static from(value) {
    if (value instanceof Gvk) return value;
    if (value === null || typeof value !== 'object') {
      throw new TypeError(`expected a Gvk or {group, version, kind}, got ${value === null ? 'null' : typeof value}`);
    }
    return new Gvk(value.group, value.version, value.kind);
  }

  /** The `apiVersion` an object of this kind carries: `group/version`, or `version` alone for the core group. */
  get apiVersion() {
    return this.group === '' ? this.version : `${this.group}/${this.version}`;
  }

  /**
   * Whether `other` names the same kind.
   *
   * @param {{group: string, version: string, kind: string} | null | undefined} other
   * @returns {boolean}
   */
  equals(other) {
    return other != null && other.group === this.group && other.version === this.version && other.kind === this.kind;
  }

  /** Formats like apimachinery: `apps/v1, Kind=Deployment`. */
  toString() {
    return `${this.apiVersion}, Kind=${this.kind}`;
  }

  /** The WIT `group-version-kind` record: `{group, version, kind}`. */
  toJSON() {
    return { group: this.group, version: this.version, kind: this.kind };
  }
}
