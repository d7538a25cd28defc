/**
 * An empty Windows registry hive (regf): a base block, one hive bin with the root key and its security cell, and the
 * rest of the bin free. hivex cannot create a hive from nothing, only change one, so test disks start from this and
 * `hivexregedit --merge` writes their keys and values: the layout the agent reads is then hivex's, not ours.
 */
const BLOCK = 4096;

function cell(size: number): Buffer {
  const b = Buffer.alloc(size);
  b.writeInt32LE(-size, 0); // negative: allocated
  return b;
}

export function emptyHive(rootName = 'ROOT'): Buffer {
  const hive = Buffer.alloc(2 * BLOCK);
  const ROOT_AT = 0x20; // offsets are from the first hive bin
  const rootSize = Math.ceil((4 + 0x4c + rootName.length) / 8) * 8;
  const SK_AT = ROOT_AT + rootSize;
  // A self-relative security descriptor with no owner, group or ACLs.
  const descriptor = Buffer.from([1, 0, 0x00, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const skSize = Math.ceil((4 + 0x14 + descriptor.length) / 8) * 8;

  const base = hive.subarray(0, BLOCK);
  base.write('regf', 0, 'latin1');
  base.writeUInt32LE(1, 0x04); // primary and secondary sequence numbers equal: the hive is consistent
  base.writeUInt32LE(1, 0x08);
  base.writeUInt32LE(1, 0x14); // version 1.3
  base.writeUInt32LE(3, 0x18);
  base.writeUInt32LE(0, 0x1c); // primary file
  base.writeUInt32LE(1, 0x20); // direct memory load
  base.writeUInt32LE(ROOT_AT, 0x24);
  base.writeUInt32LE(BLOCK, 0x28); // size of the hive bins
  base.writeUInt32LE(1, 0x2c);
  let sum = 0;
  for (let i = 0; i < 0x1fc; i += 4) sum ^= base.readUInt32LE(i);
  base.writeUInt32LE(sum >>> 0, 0x1fc);

  const bin = hive.subarray(BLOCK);
  bin.write('hbin', 0, 'latin1');
  bin.writeUInt32LE(0, 0x04);
  bin.writeUInt32LE(BLOCK, 0x08);

  const root = cell(rootSize);
  root.write('nk', 4, 'latin1');
  root.writeUInt16LE(0x0004 | 0x0008 | 0x0020, 6); // hive entry, not deletable, ASCII name
  root.writeUInt32LE(0xffffffff, 4 + 0x10); // no parent
  root.writeUInt32LE(0xffffffff, 4 + 0x1c); // no subkeys
  root.writeUInt32LE(0xffffffff, 4 + 0x20);
  root.writeUInt32LE(0xffffffff, 4 + 0x28); // no values
  root.writeUInt32LE(SK_AT, 4 + 0x2c);
  root.writeUInt32LE(0xffffffff, 4 + 0x30); // no class name
  root.writeUInt16LE(rootName.length, 4 + 0x48);
  root.write(rootName, 4 + 0x4c, 'latin1');
  root.copy(bin, ROOT_AT);

  const sk = cell(skSize);
  sk.write('sk', 4, 'latin1');
  sk.writeUInt32LE(SK_AT, 8); // a ring of one
  sk.writeUInt32LE(SK_AT, 12);
  sk.writeUInt32LE(1, 16);
  sk.writeUInt32LE(descriptor.length, 20);
  descriptor.copy(sk, 24);
  sk.copy(bin, SK_AT);

  const freeAt = SK_AT + skSize;
  bin.writeInt32LE(BLOCK - freeAt, freeAt); // positive: free
  return hive;
}
