// Printf-style formatting for `eventf` and the logger, with Node's `util.format` directives.
// The component has no `node:util`, so the SDK carries its own copy of the part it documents.

/**
 * Formats like Node's `util.format` (and Go's `Sprintf` for the common verbs): `%s` string,
 * `%d` number, `%i` integer, `%f` float, `%j` and `%o`/`%O` JSON, `%%` a percent sign.
 * Arguments left over are appended, separated by spaces.
 *
 * @param {unknown} template
 * @param {...unknown} args
 * @returns {string}
 */
export function format(template, ...args) {
  if (typeof template !== 'string') {
    return [template, ...args].map(show).join(' ');
  }
  let next = 0;
  let out = template.replace(/%([sdifjoOc%])/g, (directive, verb) => {
    if (verb === '%') return '%';
    if (next >= args.length) return directive;
    const arg = args[next++];
    switch (verb) {
      case 's':
        return typeof arg === 'bigint' ? `${arg}n` : typeof arg === 'object' && arg !== null ? show(arg) : String(arg);
      case 'd':
        return typeof arg === 'bigint' ? `${arg}n` : typeof arg === 'symbol' ? 'NaN' : String(Number(arg));
      case 'i':
        return typeof arg === 'bigint' ? `${arg}n` : typeof arg === 'symbol' ? 'NaN' : String(parseInt(String(arg), 10));
      case 'f':
        return typeof arg === 'symbol' ? 'NaN' : String(parseFloat(String(arg)));
      case 'j':
        return json(arg);
      case 'o':
      case 'O':
        return show(arg);
      case 'c':
        return '';
      default:
        return directive;
    }
  });
  for (; next < args.length; next++) out += ` ${show(args[next])}`;
  return out;
}

/** A value as a log line shows it: strings as they are, errors by name and message, the rest as JSON. */
function show(value) {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  if (typeof value === 'bigint') return `${value}n`;
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return String(value);
  return json(value);
}

function json(value) {
  try {
    const text = JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? `${v}n` : v));
    return text === undefined ? String(value) : text;
  } catch {
    return '[Circular]';
  }
}
