/** The nbdkit launcher: readiness, stop, error reporting, and never leaking secrets. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NbdClient } from '../../nbd/nbd-client';
import { NbdkitError, startNbdkit } from '../../nbd/nbdkit';
import { isAlive, makeSparseFile, MiB, sha256, tempDir, type SparseFile } from './helpers';

let dir: string;
let disk: SparseFile;
const SECRET = 'vmware_soap_session="52a01262-SuperSecret-d379"';

beforeAll(() => {
  dir = tempDir('nbdkit');
  disk = makeSparseFile(dir, 'disk.img', 8 * MiB, [{ offset: MiB, length: 2 * MiB }]);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('file plugin: ready when started, serves reads, stop() ends the process and removes its files', async () => {
  const p = await startNbdkit({ plugin: 'file', params: { file: disk.path } });
  expect(fs.statSync(p.socketPath).isSocket()).toBe(true);
  expect(isAlive(p.pid)).toBe(true);
  expect(p.uri).toBe(`nbd+unix:///?socket=${p.socketPath}`);
  expect(p.commandLine).toContain('--exit-with-parent');
  expect(p.commandLine).toContain(' -r ');
  const c = await NbdClient.connect({ socketPath: p.socketPath });
  expect(c.readOnly).toBe(true);
  expect(sha256(await c.read(0, c.size))).toBe(sha256(disk.data));
  await c.close();

  await p.stop();
  expect(isAlive(p.pid)).toBe(false);
  expect(await p.exited).toEqual({ code: 0, signal: null });
  expect(fs.existsSync(path.dirname(p.socketPath))).toBe(false); // our mkdtemp dir is gone
  await p.stop(); // idempotent
});

test('socketDir, writable exports and filters are passed through', async () => {
  const rw = path.join(dir, 'rw.img');
  fs.copyFileSync(disk.path, rw);
  const p = await startNbdkit({
    plugin: 'file',
    params: { file: rw },
    readOnly: false,
    socketDir: dir,
    filters: [{ name: 'blocksize-policy', params: { 'blocksize-maximum': '64K' } }],
  });
  try {
    expect(path.dirname(p.socketPath)).toBe(dir);
    const c = await NbdClient.connect({ socketPath: p.socketPath });
    expect(c.readOnly).toBe(false);
    expect(c.blockSize?.maximum).toBe(64 * 1024);
    await c.close();
  } finally {
    await p.stop();
  }
  expect(fs.existsSync(p.socketPath)).toBe(false);
  expect(fs.existsSync(dir)).toBe(true); // a caller's socketDir is left alone
});

test('a bad plugin parameter rejects with nbdkit stderr', async () => {
  const missing = path.join(dir, 'no-such-disk.img');
  const err = await startNbdkit({ plugin: 'file', params: { file: missing } }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(NbdkitError);
  expect((err as NbdkitError).code).toBe('NBDKIT_EXIT');
  expect((err as Error).message).toContain(missing);
  expect((err as Error).message).toMatch(/No such file or directory/);
  expect((err as NbdkitError).stderrTail).toMatch(/No such file or directory/);
});

test('an unknown plugin and a missing nbdkit binary are reported', async () => {
  const err1 = await startNbdkit({ plugin: 'no-such-plugin', params: {} }).catch((e: unknown) => e);
  expect(err1).toBeInstanceOf(NbdkitError);
  expect((err1 as Error).message).toMatch(/no-such-plugin/);
  const err2 = await startNbdkit({ plugin: 'memory', params: { size: '1M' }, nbdkitPath: '/nonexistent/nbdkit' }).catch((e: unknown) => e);
  expect(err2).toMatchObject({ code: 'ENOENT' });
});

test('a literal cookie never reaches the command line, stderr tail or errors', async () => {
  const lines: string[] = [];
  const p = await startNbdkit({
    plugin: 'curl',
    // Nothing listens on port 9: connections fail, which makes nbdkit log.
    params: { url: 'http://127.0.0.1:9/disk.vmdk', cookie: SECRET, sslverify: 'false' },
    extraArgs: ['-v'], // verbose: nbdkit echoes every config key=value
    onStderr: (l) => lines.push(l),
  });
  try {
    const cmdline = fs.readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0');
    const cookieArg = cmdline.find((a) => a.startsWith('cookie='))!;
    expect(cookieArg).toMatch(/^cookie=\+\//); // handed over as +FILE
    const cookieFile = cookieArg.slice('cookie=+'.length);
    expect(fs.readFileSync(cookieFile, 'utf8')).toBe(SECRET);
    expect(fs.statSync(cookieFile).mode & 0o077).toBe(0);
    expect(cmdline.join(' ')).not.toContain('SuperSecret');

    const err = await NbdClient.connect({ socketPath: p.socketPath, connectTimeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(err).toBeTruthy();
    await new Promise((r) => setTimeout(r, 100));
    expect(p.stderrTail.length).toBeGreaterThan(0);
    expect(p.stderrTail).not.toContain('SuperSecret');
    expect(p.commandLine).not.toContain('SuperSecret');
    expect(lines.join('\n')).not.toContain('SuperSecret');
    await p.stop();
    expect(fs.existsSync(cookieFile)).toBe(false);
  } finally {
    await p.stop();
  }
});

test('secrets stay out of startup errors too, even when nbdkit echoes them', async () => {
  const cookieFile = path.join(dir, 'cookie.txt');
  fs.writeFileSync(cookieFile, SECRET, { mode: 0o600 });
  // 'password' given literally (bad practice) plus an unknown param that makes nbdkit fail at startup.
  const err = await startNbdkit({
    plugin: 'curl',
    params: { url: 'http://127.0.0.1:9/x', cookie: `+${cookieFile}`, password: 'Hunter2Password', 'no-such-key': '1' },
    extraArgs: ['-v'],
  }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(NbdkitError);
  const text = `${(err as Error).message}\n${(err as NbdkitError).stderrTail}`;
  expect(text).toMatch(/no-such-key/);
  expect(text).not.toContain('Hunter2Password');
  expect(text).not.toContain('SuperSecret');
});

test('secret-looking params that cannot be +FILE are redacted from nbdkit -v output', async () => {
  const lines: string[] = [];
  const p = await startNbdkit({
    plugin: 'curl',
    params: { url: 'http://127.0.0.1:9/x', header: 'Authorization: Bearer Tok3nXYZ' },
    extraArgs: ['-v'],
    onStderr: (l) => lines.push(l),
  });
  try {
    expect(p.stderrTail).toMatch(/config key=header, value=\*\*\*/);
    expect(p.stderrTail).not.toContain('Tok3nXYZ');
    expect(lines.join('\n')).not.toContain('Tok3nXYZ');
    expect(p.commandLine).not.toContain('Tok3nXYZ');
  } finally {
    await p.stop();
  }
});

test('early exit after readiness is visible through exited', async () => {
  const p = await startNbdkit({ plugin: 'memory', params: { size: '1M' } });
  process.kill(p.pid, 'SIGKILL');
  const ex = await p.exited;
  expect(ex.signal).toBe('SIGKILL');
  await p.stop();
});
