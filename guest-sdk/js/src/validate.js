// The checks the host applies to events and client calls (host/src/recorder/validate.rs,
// host/src/client/), so that the test kit refuses what the host would refuse.

/** Longest event reason the host accepts, in characters. */
export const MAX_REASON_LENGTH = 128;
/** Longest event message the host keeps, in UTF-8 bytes; longer ones are truncated. */
export const MAX_MESSAGE_BYTES = 1024;
/** Largest total of an event's annotation keys and values, in UTF-8 bytes. */
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;
/** Largest JSON text one client call may carry, in bytes (the API server's own limit). */
export const MAX_PAYLOAD_BYTES = 3 * 1024 * 1024;
/** API calls one reconcile may make by default; more fail with an `api` error of code 429. */
export const MAX_API_CALLS = 256;
/** Longest object name, in bytes. */
export const MAX_NAME_LENGTH = 253;

const TRUNCATED_SUFFIX = ' ...';

/**
 * Why a reason is refused, or `null` when the host accepts it: 1-128 characters matching
 * `^[A-Z][A-Za-z0-9]*$` (UpperCamelCase: `Created`, `InvalidSpec`).
 *
 * @param {unknown} reason
 * @returns {string | null}
 */
export function reasonProblem(reason) {
  if (typeof reason === 'string' && reason.length <= MAX_REASON_LENGTH && /^[A-Z][A-Za-z0-9]*$/.test(reason)) {
    return null;
  }
  let shown = String(reason).slice(0, MAX_REASON_LENGTH);
  if (shown.length < String(reason).length) shown += '...';
  return `invalid reason ${JSON.stringify(shown)}: must be 1-128 characters matching ^[A-Z][A-Za-z0-9]*$`;
}

/**
 * Why a list of annotations is refused, or `null` when the host accepts it: each key a
 * Kubernetes annotation key (`[prefix/]name`), no key twice, at most 256 KiB in total.
 *
 * @param {ReadonlyArray<readonly [string, string]>} annotations
 * @returns {string | null}
 */
export function annotationsProblem(annotations) {
  let total = 0;
  const seen = new Set();
  for (const [key, value] of annotations) {
    const problem = annotationKeyProblem(key);
    if (problem) return `key ${JSON.stringify(key)}: ${problem}`;
    total += utf8Length(key) + utf8Length(value);
    if (seen.has(key)) return `duplicate key ${JSON.stringify(key)}`;
    seen.add(key);
  }
  if (total > MAX_ANNOTATIONS_BYTES) {
    return `annotations total ${total} bytes, more than ${MAX_ANNOTATIONS_BYTES}`;
  }
  return null;
}

function annotationKeyProblem(key) {
  const slash = key.indexOf('/');
  const prefix = slash === -1 ? null : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (prefix !== null && !isDns1123Subdomain(prefix)) {
    return 'prefix must be a DNS subdomain of at most 253 characters';
  }
  if (!/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(name)) {
    return "name must be 1-63 characters, alphanumeric at both ends, with '-', '_' or '.' between";
  }
  return null;
}

/**
 * Whether `value` is a DNS-1123 label: 1-63 of `a-z`, `0-9` and `-`, alphanumeric at both ends.
 *
 * @param {unknown} value
 * @returns {boolean}
 */
export function isDns1123Label(value) {
  return typeof value === 'string' && /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(value);
}

function isDns1123Subdomain(value) {
  return value.length > 0 && value.length <= 253 && value.split('.').every(isDns1123Label);
}

/**
 * Truncates a message the way the host does: over 1024 UTF-8 bytes, it is cut on a character
 * boundary and ends with `" ..."`, the whole within the limit.
 *
 * @param {string} message
 * @returns {string}
 */
export function truncateMessage(message) {
  if (utf8Length(message) <= MAX_MESSAGE_BYTES) return message;
  const budget = MAX_MESSAGE_BYTES - TRUNCATED_SUFFIX.length;
  let bytes = 0;
  let end = 0;
  for (const char of message) {
    const size = utf8Length(char);
    if (bytes + size > budget) break;
    bytes += size;
    end += char.length;
  }
  return message.slice(0, end) + TRUNCATED_SUFFIX;
}

/**
 * Why an object name is refused before it reaches a URL, or `null` when the host accepts it.
 *
 * @param {unknown} name
 * @returns {string | null}
 */
export function objectNameProblem(name) {
  if (typeof name !== 'string' || name === '') return 'the name is empty';
  if (name === '.' || name === '..') return `the name may not be ${JSON.stringify(name)}`;
  if (utf8Length(name) > MAX_NAME_LENGTH) return `the name is longer than ${MAX_NAME_LENGTH} bytes`;
  const bad = [...name].find((c) => !/^[A-Za-z0-9\-._:@+~]$/.test(c));
  return bad === undefined ? null : `the name may not contain ${JSON.stringify(bad)}`;
}

/**
 * The length of `text` in UTF-8 bytes (lone surrogates count as the 3 bytes of U+FFFD).
 *
 * @param {string} text
 * @returns {number}
 */
export function utf8Length(text) {
  let bytes = 0;
  for (const char of String(text)) {
    const code = char.codePointAt(0) ?? 0;
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return bytes;
}
