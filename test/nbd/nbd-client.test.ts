/**
 * Interop tests of our NBD client against real servers: nbdkit 1.32 and qemu-nbd 7.2.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Extent } from '../../copy/block-device';
import { NbdClient, NbdError } from '../../nbd/nbd-client';
import { startNbdkit, type NbdkitProcess } from '../../nbd/nbdkit';
import {
  makeSparseFile,
  MiB,
  nbdinfoJson,
  nbdinfoMap,
  rng,
  sha256,
  startQemuNbd,
  tempDir,
  type ServerHandle,
  type SparseFile,
} from './helpers';

let dir: string;
let disk: SparseFile;

beforeAll(() => {
  dir = tempDir('nbd-client');
  // 48 MiB: larger than qemu-nbd's 32 MiB maximum request, so a whole-disk read must be split.
  disk = makeSparseFile(dir, 'disk.img', 48 * MiB, [
    { offset: 0, length: 64 * 1024 },
    { offset: 3 * MiB + 4096, length: 2 * MiB + 123 },
    { offset: 20 * MiB, length: 5 * MiB },
    { offset: 48 * MiB - 8192, length: 8192 },
  ]);
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Walk extents() across a range as the copy engine does, checking the contract, and merge the result. */
async function mergeWalk(c: NbdClient, offset: number, length: number): Promise<Extent[]> {
  const out: Extent[] = [];
  const end = offset + length;
  let pos = offset;
  while (pos < end) {
    const list = await c.extents(pos, end - pos);
    expect(list.length).toBeGreaterThan(0);
    for (const e of list) {
      expect(e.offset).toBe(pos); // contiguous, starting where asked
      expect(e.length).toBeGreaterThan(0);
      pos += e.length;
    }
    expect(pos).toBeLessThanOrEqual(end); // never more than asked
    out.push(...list);
  }
  return merge(out, []);
}

function merge(list: Extent[], acc: Extent[]): Extent[] {
  for (const e of list) {
    const last = acc[acc.length - 1];
    if (last && last.zero === e.zero && last.offset + last.length === e.offset) last.length += e.length;
    else acc.push({ ...e });
  }
  return acc;
}

type ServerKind = 'nbdkit' | 'qemu-nbd';

async function startServer(kind: ServerKind, file: string): Promise<{ socketPath: string; stop(): Promise<void> }> {
  if (kind === 'nbdkit') {
    const p: NbdkitProcess = await startNbdkit({ plugin: 'file', params: { file }, socketDir: dir });
    return p;
  }
  // -e 8: several clients at once (nbdinfo runs alongside our connection); qemu-nbd then offers multi-conn.
  const q: ServerHandle = await startQemuNbd(file, dir, ['-e', '8']);
  return q;
}

describe.each<[ServerKind, boolean]>([
  ['nbdkit', true],
  ['nbdkit', false],
  ['qemu-nbd', true],
  ['qemu-nbd', false],
])('%s, structured replies %s', (kind, structured) => {
  let server: { socketPath: string; stop(): Promise<void> };
  let client: NbdClient;

  beforeAll(async () => {
    server = await startServer(kind, disk.path);
    client = await NbdClient.connect({ socketPath: server.socketPath, structuredReplies: structured });
  });
  afterAll(async () => {
    await client?.close();
    await server?.stop();
  });

  test('negotiates what the server offers', async () => {
    expect(client.size).toBe(disk.size);
    expect(client.readOnly).toBe(true);
    expect(client.structuredReplies).toBe(structured);
    expect(client.canBlockStatus).toBe(structured);
    const info = await nbdinfoJson(server.socketPath);
    expect(client.canMultiConn).toBe(info.can_multi_conn);
    expect(info['export-size']).toBe(client.size);
  });

  test('a whole-disk read matches the file (sha256), split above the maximum request size', async () => {
    expect(client.maxRequestSize).toBeLessThan(disk.size + 1);
    const b = await client.read(0, client.size);
    expect(b.length).toBe(disk.size);
    expect(sha256(b)).toBe(sha256(disk.data));
  });

  test('300 random reads in flight at once all match', async () => {
    const r = rng(kind === 'nbdkit' ? 1 : 2);
    const reqs = Array.from({ length: 300 }, () => {
      const length = 1 + Math.floor(r() * (r() < 0.2 ? 3 * MiB : 70_000));
      const offset = Math.floor(r() * (disk.size - length));
      return { offset, length };
    });
    // Also the exact edges of the export and of the data regions.
    reqs.push({ offset: 0, length: 1 }, { offset: disk.size - 1, length: 1 }, { offset: 3 * MiB, length: 8192 }, { offset: 25 * MiB - 10, length: 20 });
    const results = await Promise.all(reqs.map((q) => client.read(q.offset, q.length)));
    results.forEach((b, i) => {
      const q = reqs[i];
      expect(b.length).toBe(q.length);
      if (!b.equals(disk.data.subarray(q.offset, q.offset + q.length))) {
        throw new Error(`mismatch at offset ${q.offset} length ${q.length}`);
      }
    });
  });

  test('block status matches the file holes (and nbdinfo --map)', async () => {
    const ours = await mergeWalk(client, 0, client.size);
    if (!structured) {
      expect(ours).toEqual([{ offset: 0, length: disk.size, zero: false }]);
      return;
    }
    const theirs = merge(
      (await nbdinfoMap(server.socketPath)).map((m) => ({ offset: m.offset, length: m.length, zero: (m.type & 2) !== 0 })),
      [],
    );
    expect(ours).toEqual(theirs);
    // Every written region is data, every zero extent really reads as zeros, and the big gaps are holes.
    for (const r of disk.regions) {
      for (const e of ours) {
        if (e.offset < r.offset + r.length && r.offset < e.offset + e.length) expect(e.zero).toBe(false);
      }
    }
    for (const e of ours.filter((x) => x.zero)) {
      expect(disk.data.subarray(e.offset, e.offset + e.length).equals(Buffer.alloc(e.length))).toBe(true);
    }
    const zeroAt = (off: number) => ours.find((e) => e.offset <= off && off < e.offset + e.length)!.zero;
    expect(zeroAt(1 * MiB)).toBe(true);
    expect(zeroAt(10 * MiB)).toBe(true);
    expect(zeroAt(30 * MiB)).toBe(true);
    expect(zeroAt(21 * MiB)).toBe(false);
  });

  test('extents of a sub-range start at the offset asked and stay inside it', async () => {
    const list = await client.extents(2 * MiB, 20 * MiB);
    expect(list[0].offset).toBe(2 * MiB);
    const last = list[list.length - 1];
    expect(last.offset + last.length).toBeLessThanOrEqual(22 * MiB);
    if (structured) {
      expect(list[0].zero).toBe(true);
      expect(list.some((e) => !e.zero)).toBe(true);
    }
    expect(await client.extents(client.size, 0)).toEqual([]);
  });

  test('out-of-range requests are refused locally with EINVAL', async () => {
    await expect(client.read(disk.size - 10, 11)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(client.read(-1, 1)).rejects.toBeInstanceOf(NbdError);
    expect((await client.read(5, 0)).length).toBe(0);
  });
});

describe('other nbdkit plugins', () => {
  test('memory plugin: size, zeros, all-zero extents', async () => {
    const p = await startNbdkit({ plugin: 'memory', params: { size: '100M' }, socketDir: dir });
    const c = await NbdClient.connect({ socketPath: p.socketPath });
    try {
      expect(c.size).toBe(100 * MiB);
      expect(c.canMultiConn).toBe(true);
      const b = await c.read(12345, 3 * MiB);
      expect(b.equals(Buffer.alloc(b.length))).toBe(true);
      expect(await mergeWalk(c, 0, c.size)).toEqual([{ offset: 0, length: 100 * MiB, zero: true }]);
    } finally {
      await c.close();
      await p.stop();
    }
  });

  test('pattern plugin: every 8 bytes hold their own offset (big-endian)', async () => {
    const p = await startNbdkit({ plugin: 'pattern', params: { size: '1G' }, socketDir: dir });
    const c = await NbdClient.connect({ socketPath: p.socketPath });
    try {
      expect(c.size).toBe(1024 * MiB);
      const offsets = [0, 8, 4096, 123 * MiB, c.size - 64 * 1024];
      const bufs = await Promise.all(offsets.map((o) => c.read(o, 64 * 1024)));
      bufs.forEach((b, i) => {
        const want = Buffer.alloc(b.length);
        for (let k = 0; k < b.length; k += 8) want.writeBigUInt64BE(BigInt(offsets[i] + k), k);
        expect(b.equals(want)).toBe(true);
      });
      // A misaligned read still carries the right bytes.
      const odd = await c.read(13, 16);
      const ref = await c.read(8, 32);
      expect(odd.equals(ref.subarray(5, 21))).toBe(true);
    } finally {
      await c.close();
      await p.stop();
    }
  });
});

test('qemu-nbd with a single client slot does not offer multi-conn', async () => {
  const q = await startQemuNbd(disk.path, dir);
  try {
    const info = await nbdinfoJson(q.socketPath); // before we take the only slot
    expect(info.can_multi_conn).toBe(false);
    const c = await NbdClient.connect({ socketPath: q.socketPath });
    expect(c.canMultiConn).toBe(false);
    await c.close();
  } finally {
    await q.stop();
  }
});

describe('handshake fallbacks (nbdkit protocol switches)', () => {
  test.each<[string, string[], { structured: boolean; blockStatus: boolean; note: RegExp | null }]>([
    ['--no-sr: structured replies refused', ['--no-sr'], { structured: false, blockStatus: false, note: /structured replies refused: NBD_REP_ERR_UNSUP/ }],
    ['--mask-handshake=0: plain newstyle, NBD_OPT_EXPORT_NAME with 124 zero bytes', ['--mask-handshake=0'], { structured: false, blockStatus: false, note: /fixed newstyle/ }],
    ['--mask-handshake=1: fixed newstyle without NO_ZEROES', ['--mask-handshake=1'], { structured: true, blockStatus: true, note: null }],
    ['-o: oldstyle', ['-o'], { structured: false, blockStatus: false, note: /oldstyle/ }],
  ])('%s', async (_name, extraArgs, want) => {
    const p = await startNbdkit({ plugin: 'file', params: { file: disk.path }, socketDir: dir, extraArgs });
    const c = await NbdClient.connect({ socketPath: p.socketPath });
    try {
      expect(c.size).toBe(disk.size);
      expect(c.structuredReplies).toBe(want.structured);
      expect(c.canBlockStatus).toBe(want.blockStatus);
      if (want.note) expect(c.handshakeNotes.join('\n')).toMatch(want.note);
      else expect(c.handshakeNotes).toEqual([]);
      expect(sha256(await c.read(0, c.size))).toBe(sha256(disk.data));
      const ext = await c.extents(0, c.size);
      if (!want.blockStatus) expect(ext).toEqual([{ offset: 0, length: disk.size, zero: false }]);
      else expect(ext.length).toBeGreaterThan(1);
    } finally {
      await c.close();
      await p.stop();
    }
  });
});

describe('block size constraints', () => {
  test('honours NBD_INFO_BLOCK_SIZE maximum (server rejects larger requests)', async () => {
    const p = await startNbdkit({
      plugin: 'file',
      params: { file: disk.path },
      filters: [{ name: 'blocksize-policy', params: { 'blocksize-maximum': '1M', 'blocksize-error-policy': 'error' } }],
      socketDir: dir,
    });
    const c = await NbdClient.connect({ socketPath: p.socketPath });
    try {
      expect(c.blockSize?.maximum).toBe(MiB);
      expect(c.maxRequestSize).toBe(MiB);
      const b = await c.read(3 * MiB + 17, 10 * MiB + 5);
      expect(b.equals(disk.data.subarray(3 * MiB + 17, 13 * MiB + 22))).toBe(true);
      expect(sha256(await c.read(0, c.size))).toBe(sha256(disk.data));
    } finally {
      await c.close();
      await p.stop();
    }
  });

  test('honours the minimum block size by widening unaligned reads', async () => {
    const p = await startNbdkit({
      plugin: 'file',
      params: { file: disk.path },
      filters: [{ name: 'blocksize-policy', params: { 'blocksize-minimum': '4096', 'blocksize-error-policy': 'error' } }],
      socketDir: dir,
    });
    const c = await NbdClient.connect({ socketPath: p.socketPath });
    try {
      expect(c.blockSize?.minimum).toBe(4096);
      for (const [o, l] of [
        [1000, 5000],
        [3 * MiB + 4000, 200],
        [disk.size - 100, 100],
      ]) {
        expect((await c.read(o, l)).equals(disk.data.subarray(o, o + l))).toBe(true);
      }
    } finally {
      await c.close();
      await p.stop();
    }
  });

  test('maxRequestSize option splits reads further (qemu-nbd, holes inside pieces)', async () => {
    const q = await startQemuNbd(disk.path, dir);
    const c = await NbdClient.connect({ socketPath: q.socketPath, maxRequestSize: 256 * 1024 });
    try {
      expect(c.maxRequestSize).toBe(256 * 1024);
      const b = await c.read(MiB + 3, 26 * MiB);
      expect(b.equals(disk.data.subarray(MiB + 3, 27 * MiB + 3))).toBe(true);
    } finally {
      await c.close();
      await q.stop();
    }
  });
});

describe('errors', () => {
  test.each([true, false])('server EIO (nbdkit error filter, structured %s) → NbdError EIO with the offset', async (structured) => {
    const trigger = path.join(dir, `eio-trigger-${structured}`);
    const p = await startNbdkit({
      plugin: 'file',
      params: { file: disk.path },
      filters: [{ name: 'error', params: { 'error-pread': 'EIO', 'error-pread-rate': '1', 'error-pread-file': trigger } }],
      socketDir: dir,
    });
    const c = await NbdClient.connect({ socketPath: p.socketPath, structuredReplies: structured });
    try {
      expect((await c.read(0, 4096)).equals(disk.data.subarray(0, 4096))).toBe(true);
      fs.writeFileSync(trigger, '');
      const err = await c.read(7 * MiB + 512, 65536).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(NbdError);
      expect(err).toMatchObject({ code: 'EIO', errno: 5, offset: 7 * MiB + 512, length: 65536 });
      expect((err as Error).message).toContain(String(7 * MiB + 512));
      // A split read fails as a whole.
      await expect(c.read(0, 40 * MiB)).rejects.toMatchObject({ code: 'EIO' });
      // The connection survives server-side errors.
      fs.unlinkSync(trigger);
      expect((await c.read(20 * MiB, 4096)).equals(disk.data.subarray(20 * MiB, 20 * MiB + 4096))).toBe(true);
    } finally {
      await c.close();
      await p.stop();
    }
  });

  test('connecting to a missing socket names the socket', async () => {
    const missing = path.join(dir, 'nobody-here.sock');
    const err = await NbdClient.connect({ socketPath: missing }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NbdError);
    expect((err as NbdError).message).toContain(missing);
    expect((err as NbdError).code).toBe('ENOENT');
  });

  test('connection refused on TCP names host and port', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const err = await NbdClient.connect({ host: '127.0.0.1', port }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ECONNREFUSED' });
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
  });

  test('TCP transport works (qemu-nbd -b 127.0.0.1 -p PORT)', async () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const child = spawn('qemu-nbd', ['-r', '-f', 'raw', '-b', '127.0.0.1', '-p', String(port), '-t', disk.path], { stdio: 'ignore' });
    try {
      let c: NbdClient | null = null;
      for (let i = 0; i < 200 && !c; i++) {
        c = await NbdClient.connect({ host: '127.0.0.1', port }).catch(() => null);
        if (!c) await new Promise((r) => setTimeout(r, 25));
      }
      expect(c).not.toBeNull();
      expect(c!.target).toBe(`tcp:127.0.0.1:${port}`);
      const b = await c!.read(20 * MiB - 100, 2 * MiB);
      expect(b.equals(disk.data.subarray(20 * MiB - 100, 22 * MiB - 100))).toBe(true);
      await c!.close();
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('a non-NBD peer gives a handshake error, not a hang', async () => {
    const sock = path.join(dir, 'garbage.sock');
    const srv = net.createServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n0123456789'));
    await new Promise<void>((r) => srv.listen(sock, () => r()));
    try {
      const err = await NbdClient.connect({ socketPath: sock, connectTimeoutMs: 5000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NbdError);
      expect((err as Error).message).toMatch(/handshake/);
    } finally {
      srv.close();
    }
  });

  test('handshake timeout', async () => {
    const sock = path.join(dir, 'silent.sock');
    const conns: net.Socket[] = [];
    const srv = net.createServer((s) => void conns.push(s));
    await new Promise<void>((r) => srv.listen(sock, () => r()));
    try {
      const t0 = Date.now();
      const err = await NbdClient.connect({ socketPath: sock, connectTimeoutMs: 300 }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ETIMEDOUT' });
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      conns.forEach((s) => s.destroy());
      srv.close();
    }
  });

  test('unknown export name → NBD_REP_ERR_UNKNOWN with the name', async () => {
    const q = await startQemuNbd(disk.path, dir, ['-x', 'disk0']);
    try {
      const err = await NbdClient.connect({ socketPath: q.socketPath, exportName: 'nope' }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'NBD_REP_ERR_UNKNOWN' });
      expect((err as Error).message).toContain('"nope"');
      const c = await NbdClient.connect({ socketPath: q.socketPath, exportName: 'disk0' });
      expect(c.size).toBe(disk.size);
      await c.close();
    } finally {
      await q.stop();
    }
  });

  test('AbortSignal rejects a slow read promptly; the late reply is discarded', async () => {
    const p = await startNbdkit({
      plugin: 'file',
      params: { file: disk.path },
      filters: [{ name: 'delay', params: { 'delay-read': '1' } }],
      socketDir: dir,
    });
    const c = await NbdClient.connect({ socketPath: p.socketPath });
    try {
      const ac = new AbortController();
      const t0 = Date.now();
      const pending = c.read(20 * MiB, MiB, ac.signal);
      setTimeout(() => ac.abort(), 50);
      const err = await pending.catch((e: unknown) => e);
      expect(Date.now() - t0).toBeLessThan(700);
      expect(err).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
      expect(err).toBeInstanceOf(NbdError);
      // Already-aborted signals reject without sending anything.
      await expect(c.read(0, 10, AbortSignal.abort())).rejects.toMatchObject({ name: 'AbortError' });
      // The connection stays in step: the late reply is dropped, the next read is right.
      const b = await c.read(20 * MiB + 100, 1000);
      expect(b.equals(disk.data.subarray(20 * MiB + 100, 20 * MiB + 1100))).toBe(true);
      expect(c.inFlight).toBe(0);
    } finally {
      await c.close();
      await p.stop();
    }
  });

  test.each<ServerKind>(['nbdkit', 'qemu-nbd'])('server killed mid-read (%s) → pending reads reject, later calls too', async (kind) => {
    let socketPath: string;
    let kill: () => void;
    let stop: () => Promise<void>;
    if (kind === 'nbdkit') {
      const p = await startNbdkit({
        plugin: 'file',
        params: { file: disk.path },
        filters: [{ name: 'delay', params: { 'delay-read': '5' } }],
        socketDir: dir,
      });
      socketPath = p.socketPath;
      kill = () => process.kill(p.pid, 'SIGKILL');
      stop = () => p.stop();
    } else {
      const q = await startQemuNbd(disk.path, dir);
      socketPath = q.socketPath;
      kill = () => q.child.kill('SIGKILL');
      stop = () => q.stop();
    }
    const c = await NbdClient.connect({ socketPath });
    try {
      // qemu-nbd answers fast, so keep a lot in flight and kill it while they stream.
      const reads = Array.from({ length: 64 }, (_, i) => c.read((i % 40) * MiB, 8 * MiB).then(() => 'ok', (e: unknown) => e));
      setTimeout(kill, kind === 'nbdkit' ? 100 : 1);
      const results = await Promise.all(reads);
      const errors = results.filter((r) => r !== 'ok') as NbdError[];
      expect(errors.length).toBeGreaterThan(0);
      for (const e of errors) {
        expect(e).toBeInstanceOf(NbdError);
        expect(e.code).toBe('ECONNRESET');
        expect(e.message).toMatch(/closed the connection/);
        expect(e.message).toMatch(/offset \d+ length \d+/);
      }
      await expect(c.read(0, 512)).rejects.toMatchObject({ code: 'ECONNRESET' });
      await expect(c.extents(0, 512)).rejects.toBeInstanceOf(NbdError);
    } finally {
      await c.close();
      await stop();
    }
  });

  test('close() sends NBD_CMD_DISC; later calls reject with NBD_CLOSED', async () => {
    const p = await startNbdkit({ plugin: 'memory', params: { size: '1M' }, socketDir: dir });
    const c = await NbdClient.connect({ socketPath: p.socketPath });
    try {
      await c.read(0, 512);
      await c.close();
      await c.close();
      await expect(c.read(0, 512)).rejects.toMatchObject({ code: 'NBD_CLOSED' });
      // nbdkit logged no error about an abrupt disconnect.
      expect(p.stderrTail).not.toMatch(/error/i);
    } finally {
      await p.stop();
    }
  });
});
