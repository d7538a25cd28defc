/**
 * Project, volume and instance names become path components under the data directory, so anything that could
 * escape it or alias another entry is refused up front with a message naming the offending value.
 */
const MAX_NAME_BYTES = 200; // leaves room for suffixes (".json", temp names) under the usual 255-byte limit

export function checkResourceName(kind: 'project' | 'volume' | 'instance', name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw new Error(`${kind} name must be a non-empty string`);
  const shown = JSON.stringify(name);
  if (name.includes('\0')) throw new Error(`${kind} name ${shown} contains a NUL byte`);
  if (name.includes('/') || name.includes('\\')) throw new Error(`${kind} name ${shown} contains a path separator`);
  if (name === '.' || name === '..') throw new Error(`${kind} name ${shown} is a path traversal`);
  // Leading dots are reserved for our own bookkeeping entries (.meta, temp files).
  if (name.startsWith('.')) throw new Error(`${kind} name ${shown} must not start with "."`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new Error(`${kind} name ${shown} contains control characters`);
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new Error(`${kind} name ${shown} is longer than ${MAX_NAME_BYTES} bytes`);
  return name;
}
