/**
 * One line of virt-v2v's `--machine-readable` stream: a JSON object per line,
 *   { "message": "Inspecting the source", "timestamp": "2026-…+00:00", "type": "message" }
 * with type message (a stage), info, warning or error; or a progress bar line "n/m" while disks are copied.
 */
export type ConverterEvent =
  | { kind: 'message' | 'info' | 'warning' | 'error'; text: string; timestamp?: string }
  | { kind: 'progress'; done: number; total: number };

export function parseConverterLine(line: string): ConverterEvent | undefined {
  const text = line.trim();
  const bar = /^(\d+)\/(\d+)$/.exec(text);
  if (bar) return { kind: 'progress', done: Number(bar[1]), total: Number(bar[2]) };
  if (!text.startsWith('{')) return undefined;
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!obj || typeof obj !== 'object') return undefined;
  const { message, type, timestamp } = obj as { message?: unknown; type?: unknown; timestamp?: unknown };
  if (typeof message !== 'string') return undefined;
  const kind = type === 'info' || type === 'warning' || type === 'error' ? type : 'message';
  return { kind, text: message, ...(typeof timestamp === 'string' ? { timestamp } : {}) };
}
