/**
 * Byte areas of a disk: what a copy is asked to make equal on the target. A full copy is one area, the whole disk;
 * a Changed Block Tracking sync is the areas CBT reported.
 */

export interface ByteArea {
  start: number;
  length: number;
}

/** Sorted, merged, checked areas: overlapping or out-of-disk input is a caller bug worth failing loudly on. */
export function normaliseAreas(areas: readonly ByteArea[], size: number): ByteArea[] {
  const sorted = [...areas].filter((a) => a.length > 0).sort((a, b) => a.start - b.start);
  const out: ByteArea[] = [];
  for (const a of sorted) {
    if (!Number.isSafeInteger(a.start) || !Number.isSafeInteger(a.length) || a.start < 0 || a.start + a.length > size) {
      throw new RangeError(`area [${a.start}, ${a.start + a.length}) is outside the disk (size ${size})`);
    }
    const last = out[out.length - 1];
    if (last && a.start <= last.start + last.length) last.length = Math.max(last.length, a.start + a.length - last.start);
    else out.push({ ...a });
  }
  return out;
}

/** [0, size) minus the (normalised) areas. */
export function complementAreas(areas: readonly ByteArea[], size: number): ByteArea[] {
  const out: ByteArea[] = [];
  let at = 0;
  for (const a of areas) {
    if (a.start > at) out.push({ start: at, length: a.start - at });
    at = a.start + a.length;
  }
  if (at < size) out.push({ start: at, length: size - at });
  return out;
}

export function totalLength(areas: readonly ByteArea[]): number {
  return areas.reduce((sum, a) => sum + a.length, 0);
}
