/**
 * Source chunk digests, persisted so a resumed attempt can report the whole copy's verification without re-reading
 * what lies below its watermark. Record i (32 bytes) is the digest of the i-th planned chunk, at i*32; an all-zero
 * record means "not written" (BLAKE3 never yields that). A small JSON sidecar pins the geometry and the plan (a hash
 * of the areas): a log written for another chunk size, disk size or set of areas is discarded, which costs a copy
 * from zero but can never verify against the wrong digests.
 */
import { constants as fsConstants, promises as fs } from 'node:fs';
import { writeFileAtomically } from '../storage/durable-file';
import * as path from 'node:path';
import { DIGEST_LEAF_SIZE } from './copy-options';

export const DIGEST_RECORD_SIZE = 32;

export interface DigestLogPlan {
  chunkSize: number;
  diskSize: number;
  /** Identifies the areas (and what is zeroed outside them): see copy-areas.ts planId. */
  plan: string;
}

interface DigestLogGeometry extends DigestLogPlan {
  format: 'vmigrate-digest-log/2';
  algorithm: 'blake3-tree';
  leafSize: number;
}

export class DigestLog {
  private constructor(
    readonly filePath: string,
    private readonly file: fs.FileHandle,
  ) {}

  static async open(filePath: string, plan: DigestLogPlan): Promise<DigestLog> {
    const geometry: DigestLogGeometry = {
      format: 'vmigrate-digest-log/2',
      algorithm: 'blake3-tree',
      leafSize: DIGEST_LEAF_SIZE,
      chunkSize: plan.chunkSize,
      diskSize: plan.diskSize,
      plan: plan.plan,
    };
    const sidecar = `${filePath}.json`;
    await fs.mkdir(path.dirname(filePath), { recursive: true });
    const file = await fs.open(filePath, fsConstants.O_RDWR | fsConstants.O_CREAT);
    try {
      if ((await readGeometry(sidecar)) !== JSON.stringify(geometry)) {
        await file.truncate(0);
        await file.sync();
        await writeFileAtomically(sidecar, JSON.stringify(geometry));
      }
    } catch (err) {
      await file.close();
      throw err;
    }
    return new DigestLog(filePath, file);
  }

  /** How many leading records (up to `limit`) are present. */
  async presentPrefix(limit: number): Promise<number> {
    const batch = 4096;
    for (let index = 0; index < limit; index += batch) {
      const count = Math.min(batch, limit - index);
      const missing = firstMissingRecord(await this.read(index, count));
      if (missing < count) return index + missing;
    }
    return limit;
  }

  /** Records [firstIndex, firstIndex + count); missing ones read as zeros. */
  async read(firstIndex: number, count: number): Promise<Buffer> {
    const out = Buffer.alloc(count * DIGEST_RECORD_SIZE);
    let done = 0;
    while (done < out.length) {
      const { bytesRead } = await this.file.read(out, done, out.length - done, firstIndex * DIGEST_RECORD_SIZE + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return out;
  }

  async write(firstIndex: number, digests: readonly Buffer[]): Promise<void> {
    if (digests.length === 0) return;
    const data = Buffer.concat(digests as Buffer[]);
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.file.write(data, done, data.length - done, firstIndex * DIGEST_RECORD_SIZE + done);
      done += bytesWritten;
    }
  }

  sync(): Promise<void> {
    return this.file.datasync();
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

async function readGeometry(sidecar: string): Promise<string | undefined> {
  try {
    return JSON.stringify(JSON.parse(await fs.readFile(sidecar, 'utf8')));
  } catch {
    return undefined; // absent or torn: treat as a fresh log
  }
}


/** Index of the first all-zero ("not written") record in `records`, or their count if every one is present. */
export function firstMissingRecord(records: Buffer): number {
  const count = Math.floor(records.length / DIGEST_RECORD_SIZE);
  for (let i = 0; i < count; i++) {
    const record = records.subarray(i * DIGEST_RECORD_SIZE, (i + 1) * DIGEST_RECORD_SIZE);
    if (record.every((b) => b === 0)) return i;
  }
  return count;
}
