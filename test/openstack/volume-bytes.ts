import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

const MiB = 1024 * 1024;

/**
 * sha256 of the first `length` bytes of a volume's file (the source disk's size), and whether everything after them
 * reads as zeros (Cinder allocates whole GiB).
 */
export async function leadingSha(file: string, length: number): Promise<{ sha: string; tailZero: boolean }> {
  const fh = await open(file, 'r');
  try {
    const hash = createHash('sha256');
    const buf = Buffer.alloc(4 * MiB);
    let tailZero = true;
    for (let off = 0; ; ) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, off);
      if (bytesRead === 0) break;
      const head = Math.max(0, Math.min(bytesRead, length - off));
      hash.update(buf.subarray(0, head));
      if (head < bytesRead && buf.subarray(head, bytesRead).some((b) => b !== 0)) tailZero = false;
      off += bytesRead;
    }
    return { sha: hash.digest('hex'), tailZero };
  } finally {
    await fh.close();
  }
}
