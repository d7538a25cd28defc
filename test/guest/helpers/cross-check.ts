/** Compares inspectDiskLayout's answer with what sfdisk -J and blkid -p say about the same image. */
import type { DiskLayout } from '../../../guest/disk-layout';
import { blkidAt, sfdiskJson } from './disk-image';

export function expectSameAsSfdiskAndBlkid(image: string, layout: DiskLayout): void {
  const table = sfdiskJson(image);
  expect(layout.partitionTable).toBe(table.label === 'dos' ? 'mbr' : table.label);
  expect(layout.diskId?.toLowerCase()).toBe(table.id.toLowerCase());
  expect(
    layout.partitions.map((p) => ({ number: p.number, start: p.start, size: p.size, type: p.type, name: p.name, uuid: p.uuid })),
  ).toEqual(
    table.partitions.map((p) => ({
      number: Number(/(\d+)$/.exec(p.node)?.[1]),
      start: p.start * table.sectorsize,
      size: p.size * table.sectorsize,
      type: p.type,
      name: p.name,
      uuid: p.uuid,
    })),
  );
  for (const p of layout.partitions) {
    const blkid = blkidAt(image, p.start);
    expect({ number: p.number, type: p.filesystem?.type, label: p.filesystem?.label, uuid: p.filesystem?.uuid }).toEqual({
      number: p.number,
      type: blkid.TYPE,
      label: blkid.LABEL,
      uuid: blkid.UUID,
    });
  }
}
