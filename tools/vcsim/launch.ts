/**
 * Starts our vSphere simulator (tools/vcsim, govmomi's vcsim with the VMs of a
 * spec) as a child process, for tests, the demo and benches.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';

/** Spec of the VMs to create (mirrors simSpec in spec.go; unknown fields are rejected there). */
export interface SimSpec {
  vms: SimVmSpec[];
  /** Changed Block Tracking block size: the granularity of QueryChangedDiskAreas areas (default 64). */
  cbtBlockSizeKiB?: number;
  /** Span one QueryChangedDiskAreas answer covers at most, so callers must loop (default 256). */
  cbtWindowMiB?: number;
  /** Datastores in the model (default 1: LocalDS_0); disks may name LocalDS_1, …. */
  datastores?: number;
}

export interface SimVmSpec {
  name: string;
  /** vim25 guest id, default otherGuest. */
  guestId?: string;
  firmware?: 'bios' | 'efi';
  /** EFI only: the VM's Secure Boot setting (config.bootOptions.efiSecureBootEnabled). */
  secureBoot?: boolean;
  numCPUs?: number;
  memoryMB?: number;
  /** Default poweredOn. */
  powerState?: 'poweredOn' | 'poweredOff';
  changeTrackingEnabled?: boolean;
  /**
   * What ShutdownGuest does (default 'works': the VM powers off at once). 'ignored': the call succeeds but the
   * guest never shuts down; 'tools-unavailable': the call fails with ToolsUnavailable.
   */
  guestShutdown?: 'works' | 'ignored' | 'tools-unavailable';
  disks?: SimDiskSpec[];
  nics?: SimNicSpec[];
  /** A host of the model (default DC0_H0; the cluster's hosts are DC0_C0_H0, DC0_C0_H1, DC0_C0_H2). */
  host?: string;
  /** Folder path under the datacenter's VM folder, e.g. "prod/web" (created as needed). */
  folder?: string;
  /** Snapshots taken once the VM exists (snap-1, snap-2, …). */
  snapshots?: number;
  /** VMware Tools as the guest reports them: running (default when on), notRunning (default when off), notInstalled, old. */
  tools?: 'running' | 'notRunning' | 'notInstalled' | 'old';
  /** Devices vcsim does not model, reported as vSphere would. */
  devices?: Array<'pciPassthrough' | 'sriovNic' | 'tpm' | 'usb'>;
  /** Fault tolerance protection on (runtime.faultToleranceState running). */
  faultTolerance?: boolean;
  /** A template (config.template). */
  template?: boolean;
}

export interface SimDiskSpec {
  capacityMiB: number;
  /** Thick-provisioned backing (default thin). The -flat.vmdk is sparse either way. */
  thick?: boolean;
  /** Datastore (default LocalDS_0). */
  datastore?: string;
  /** vSphere disk mode (default persistent). */
  mode?: 'persistent' | 'nonpersistent' | 'undoable' | 'independent_persistent' | 'independent_nonpersistent' | 'append';
  /** Default sharingNone. */
  sharing?: 'sharingNone' | 'sharingMultiWriter';
  /** A raw device mapping instead of a flat file. */
  rdm?: 'physicalMode' | 'virtualMode';
}

export interface SimNicSpec {
  /** Network name, e.g. "VM Network" (present in the default inventory). */
  network: string;
  adapterType?: 'vmxnet3' | 'e1000' | 'e1000e';
  /** Fixed MAC; vcsim generates one otherwise. */
  macAddress?: string;
  /** What the guest reports on this NIC through VMware Tools (guest.net[].ipAddress). */
  ipAddresses?: string[];
}

export interface SimDisk {
  key: number;
  datastore: string;
  /** "[LocalDS_0] vm/vm.vmdk" */
  fileName: string;
  /** Raw extent, relative to the datastore dir: "vm/vm-flat.vmdk". */
  flatPath: string;
  capacityBytes: number;
}

export interface SimNic {
  key: number;
  macAddress: string;
  network: string;
}

export interface SimVm {
  name: string;
  moref: string;
  disks: SimDisk[];
  nics: SimNic[];
}

export interface Simulator {
  /** SOAP endpoint, e.g. https://127.0.0.1:PORT/sdk */
  url: string;
  datacenter: string;
  datastore: string;
  /** Local directory backing the datastore. */
  datastoreDir: string;
  vms: SimVm[];
  /** Credentials that log in (the given ones, else defaults the simulator accepts). */
  username: string;
  password: string;
  /** Stops the simulator (SIGTERM, then SIGKILL after 5 s). Idempotent. */
  stop(): Promise<void>;
  /** Streams a local raw image over a disk's -flat.vmdk via HTTP PUT /folder (the file keeps the disk capacity). */
  uploadDiskImage(vmName: string, diskIndex: number, localFilePath: string): Promise<void>;
  /** /folder URL of a file given relative to the datastore root, e.g. "vm/vm-flat.vmdk". */
  datastoreUrl(relPath: string): string;
  /**
   * TEST FAULT INJECTION (needs `testHooks`, on by default): the next `count` (default 1)
   * QueryChangedDiskAreas calls for the VM misbehave. 'zero-length-window': a window of length 0 before the
   * end of the disk; 'area-outside-disk': an extra changed area past the capacity; 'query-fault': a SOAP
   * FileFault ("change tracking data invalid"); 'transient': HTTP 503 for the 1st, 3rd, ... affected call and
   * a dropped connection (TCP reset) for the 2nd, 4th, .... count 0 clears a pending injection.
   */
  injectCbtFault(vmName: string, kind: CbtFaultKind, count?: number): Promise<void>;
}

export type CbtFaultKind = 'zero-length-window' | 'area-outside-disk' | 'query-fault' | 'transient';

export interface StartSimulatorOptions {
  spec: SimSpec;
  username?: string;
  password?: string;
  /** https with a self-signed certificate (default true). */
  tls?: boolean;
  binaryPath?: string;
  /** Directory for the datastore files (default: a temp dir removed on stop). */
  datastoreDir?: string;
  /** Milliseconds to wait for the ready line (default 60 s). */
  startTimeoutMs?: number;
  /** Enable the simulator's test fault injection routes (-test-hooks; default true). */
  testHooks?: boolean;
}

interface ReadyLine {
  url: string;
  datacenter: string;
  datastore: string;
  datastoreDir: string;
  vms: SimVm[];
}

function repoRoot(): string {
  // Walk up from this file to the project's package.json (works from sources and from dist/).
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'vmigrate') return dir;
      } catch {
        /* not ours; keep walking */
      }
    }
    if (path.dirname(dir) === dir) return path.resolve(__dirname, '..', '..');
  }
}

export function simulatorBinaryPath(binaryPath?: string): string {
  return binaryPath ?? process.env.VCSIM_PATH ?? path.join(repoRoot(), '.tools', 'bin', 'vcsim');
}

export async function startSimulator(opts: StartSimulatorOptions): Promise<Simulator> {
  const binary = simulatorBinaryPath(opts.binaryPath);
  if (!existsSync(binary)) {
    throw new Error(`vSphere simulator binary not found at ${binary}: run \`npm run setup\` (builds tools/vcsim), or set VCSIM_PATH`);
  }
  if ((opts.username === undefined) !== (opts.password === undefined)) {
    throw new Error('startSimulator: give both username and password, or neither');
  }

  const scratch = await mkdtemp(path.join(os.tmpdir(), 'vmigrate-vcsim-'));
  const specFile = path.join(scratch, 'spec.json');
  await writeFile(specFile, JSON.stringify(opts.spec));

  const args = ['-listen', '127.0.0.1:0', '-spec', specFile, '-stdin-exit', `-tls=${opts.tls ?? true}`];
  if (opts.username !== undefined) args.push('-username', opts.username, '-password', opts.password ?? '');
  if (opts.datastoreDir) args.push('-datastore-dir', opts.datastoreDir);
  if (opts.testHooks ?? true) args.push('-test-hooks');

  // stdin stays open as a lifeline: the simulator exits if this process dies.
  const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr.push(chunk);
    if (stderr.length > 200) stderr.shift();
    if (process.env.VCSIM_DEBUG) process.stderr.write(chunk);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  let ready: ReadyLine;
  try {
    ready = await readReadyLine(child, opts.startTimeoutMs ?? 60_000, () => stderr.join('').slice(-4000));
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    await rm(scratch, { recursive: true, force: true });
    throw err;
  }

  let stopping: Promise<void> | undefined;
  const base = ready.url.replace(/\/sdk$/, '');
  const datastoreUrl = (relPath: string) =>
    `${base}/folder/${relPath.split('/').map(encodeURIComponent).join('/')}` +
    `?dcPath=${encodeURIComponent(ready.datacenter)}&dsName=${encodeURIComponent(ready.datastore)}`;

  return {
    ...ready,
    username: opts.username ?? 'vmigrate',
    password: opts.password ?? 'vmigrate',
    datastoreUrl,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }
        await rm(scratch, { recursive: true, force: true });
      })();
      return stopping;
    },
    async uploadDiskImage(vmName: string, diskIndex: number, localFilePath: string) {
      const vm = ready.vms.find((v) => v.name === vmName);
      const disk = vm?.disks[diskIndex];
      if (!disk) throw new Error(`simulator has no disk ${diskIndex} on VM ${vmName}`);
      const { size } = await stat(localFilePath);
      if (size > disk.capacityBytes) {
        throw new Error(`image ${localFilePath} (${size} bytes) is larger than disk ${disk.fileName} (${disk.capacityBytes} bytes)`);
      }
      await putFile(datastoreUrl(disk.flatPath), localFilePath, size);
    },
    async injectCbtFault(vmName: string, kind: CbtFaultKind, count = 1) {
      if (!(opts.testHooks ?? true)) throw new Error('injectCbtFault: the simulator was started with testHooks: false');
      const status = await postJson(`${base}/vmigrate-test/cbt-fault`, { vm: vmName, kind, count });
      if (status.code !== 204) throw new Error(`injectCbtFault(${vmName}, ${kind}): simulator answered HTTP ${status.code} ${status.body.trim()}`);
    },
  };
}

/** POSTs a JSON body; resolves with the status and the (short) answer. */
function postJson(url: string, body: unknown): Promise<{ code: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const data = Buffer.from(JSON.stringify(body));
    const request = mod.request(
      u,
      { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': data.length }, rejectUnauthorized: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ code: res.statusCode ?? 0, body: text }));
      },
    );
    request.on('error', reject);
    request.end(data);
  });
}

function readReadyLine(child: ChildProcess, timeoutMs: number, stderrTail: () => string): Promise<ReadyLine> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const fail = (why: string) => {
      cleanup();
      const tail = stderrTail();
      reject(new Error(`vSphere simulator ${why}${tail ? `\n--- simulator stderr ---\n${tail}` : ''}`));
    };
    const onData = (chunk: string) => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      cleanup();
      try {
        resolve(JSON.parse(buffered.slice(0, nl)) as ReadyLine);
      } catch {
        reject(new Error(`vSphere simulator printed an unexpected ready line: ${buffered.slice(0, nl).slice(0, 500)}`));
      }
    };
    const onExit = (code: number | null, signal: string | null) => fail(`exited before it was ready (code ${code}, signal ${signal})`);
    const onError = (err: Error) => fail(`could not be started: ${err.message}`);
    const timer = setTimeout(() => fail(`printed no ready line within ${timeoutMs} ms`), timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

/** Streams a file as the body of an HTTP PUT; the simulator's certificate is self-signed. */
function putFile(url: string, file: string, size: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const request = mod.request(
      u,
      { method: 'PUT', headers: { 'Content-Length': size, 'Content-Type': 'application/octet-stream' }, rejectUnauthorized: false },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode && res.statusCode >= 200 && res.statusCode < 300
            ? resolve()
            : reject(new Error(`PUT ${url} answered HTTP ${res.statusCode}`)),
        );
      },
    );
    request.on('error', reject);
    const body = createReadStream(file);
    body.on('error', (err) => {
      request.destroy(err);
      reject(err);
    });
    body.pipe(request);
  });
}
