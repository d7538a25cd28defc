/** GPT GUIDs are stored mixed-endian: the first three fields little-endian, the rest as bytes. */
export function formatMixedEndianGuid(b: Buffer, at = 0): string {
  const hex = (start: number, end: number, reverse: boolean) => {
    const bytes = [...b.subarray(at + start, at + end)];
    if (reverse) bytes.reverse();
    return bytes.map((x) => x.toString(16).padStart(2, '0')).join('');
  };
  return [hex(0, 4, true), hex(4, 6, true), hex(6, 8, true), hex(8, 10, false), hex(10, 16, false)].join('-').toUpperCase();
}

/** Plain big-endian UUID bytes (ext*, xfs, btrfs, swap), as blkid prints them. */
export function formatUuid(b: Buffer, at = 0): string {
  const h = b.subarray(at, at + 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
