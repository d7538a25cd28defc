import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ResolvedSource } from '../config/source-credentials';
import { NbdClient } from '../nbd/nbd-client';
import { startNbdkit, type NbdkitFilter, type NbdkitProcess } from '../nbd/nbdkit';
import type { VimClient } from '../vsphere/vim-client';
import type { VmHardware } from '../vsphere/vm-hardware';

/**
 * An export session for one source disk: an nbdkit process (read-only) serving the disk, and NBD connections to it.
 * The plugin depends on the source's transport: `curl` reads the datastore's `-flat.vmdk` over HTTPS with the
 * session cookie (works for cold migration against vCenter/ESXi and against the simulator); `vddk` uses VMware's
 * library where it is installed. Secrets go to nbdkit as `+FILE` parameters, never on its command line.
 */
export interface DiskExport {
  readonly size: number;
  /** The current connections; reconnect() replaces entries in place. */
  readonly connections: NbdClient[];
  /** nbdkit's Unix socket, for other NBD clients (libguestfs inspection opens nbd://?socket=…). */
  readonly socketPath: string;
  /**
   * A new connection in place of connection `index` (which broke). If nbdkit itself is gone (crashed, killed), it is
   * started again first, on the same socket, with fresh secret files. Concurrent calls share one restart.
   */
  reconnect(index: number): Promise<NbdClient>;
  close(): Promise<void>;
}

export type SourceDisk = VmHardware['disks'][number];

export interface OpenDiskExportOptions {
  source: ResolvedSource;
  session: VimClient;
  vm: VmHardware;
  disk: SourceDisk;
  /** Scratch directory for the socket and secret files; removed on close. */
  workDir: string;
  /** Overrides the configured number of NBD connections. */
  connections?: number;
  /**
   * Read a snapshot's frozen view of the disk instead of the live one (warm syncs). `disk` must then come from the
   * snapshot's own device list (VimClient.getSnapshotDisks), whose backing file is the frozen one.
   */
  snapshotMoref?: string;
}

export async function openDiskExport(opts: OpenDiskExportOptions): Promise<DiskExport> {
  const { source, session, vm, disk } = opts;
  const scratch = await mkdtemp(path.join(opts.workDir, 'export-'));
  const plugin = pluginFor(source, session, vm, disk, scratch, opts.snapshotMoref);
  let nbdkit: NbdkitProcess | undefined;
  let exited = false;
  let closed = false;
  const connections: NbdClient[] = [];
  const start = async (): Promise<NbdkitProcess> => {
    const params = await plugin.params();
    try {
      const server = await startNbdkit({
        plugin: plugin.name,
        params,
        filters: source.transport.filters as NbdkitFilter[],
        readOnly: true,
        socketDir: scratch,
      });
      exited = false;
      void server.exited.then(() => (exited = true));
      return server;
    } finally {
      // nbdkit reads `+FILE` parameters once, at start-up: the secrets need not outlive that.
      await Promise.all(plugin.secretFiles.map((f) => rm(f, { force: true })));
    }
  };
  let restarting: Promise<NbdkitProcess> | undefined;
  const running = async (): Promise<NbdkitProcess> => {
    if (!exited && nbdkit) return nbdkit;
    restarting ??= (async () => {
      await nbdkit?.stop().catch(() => undefined);
      nbdkit = await start();
      return nbdkit;
    })().finally(() => (restarting = undefined));
    return restarting;
  };
  try {
    nbdkit = await start();
    const count = opts.connections ?? source.transport.connections;
    for (let i = 0; i < count; i++) connections.push(await NbdClient.connect({ socketPath: nbdkit.socketPath }));
    const size = connections[0].size;
    if (size !== disk.capacityBytes) {
      throw new ExportSizeMismatchError(
        `export of ${disk.fileName} is ${size} bytes but vSphere reports a capacity of ${disk.capacityBytes} bytes`,
      );
    }
    return {
      size,
      connections,
      get socketPath() {
        return (nbdkit as NbdkitProcess).socketPath;
      },
      async reconnect(index) {
        if (closed) throw new Error(`export of ${disk.fileName} is closed`);
        const server = await running();
        const fresh = await NbdClient.connect({ socketPath: server.socketPath });
        if (fresh.size !== size) {
          await fresh.close();
          throw new ExportSizeMismatchError(`export of ${disk.fileName} came back with ${fresh.size} bytes instead of ${size}`);
        }
        const old = connections[index];
        connections[index] = fresh;
        void old?.close().catch(() => undefined);
        return fresh;
      },
      async close() {
        closed = true;
        await Promise.allSettled(connections.map((c) => c.close()));
        try {
          await restarting?.catch(() => undefined);
          await nbdkit?.stop();
        } finally {
          await rm(scratch, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    await Promise.allSettled(connections.map((c) => c.close()));
    await nbdkit?.stop().catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
    throw err;
  }
}

interface PluginChoice {
  name: string;
  params(): Promise<Record<string, string>>;
  /** Files holding secrets that params() wrote, removed as soon as nbdkit has read them. */
  secretFiles: string[];
}

function pluginFor(source: ResolvedSource, session: VimClient, vm: VmHardware, disk: SourceDisk, scratch: string, snapshotMoref?: string): PluginChoice {
  switch (source.transport.plugin) {
    case 'curl': {
      const cookieFile = path.join(scratch, 'cookie');
      return {
        name: 'curl',
        secretFiles: [cookieFile],
        async params() {
          await writeFile(cookieFile, `vmware_soap_session=${session.sessionCookie}`, { mode: 0o600 });
          const params: Record<string, string> = {
            url: session.datastoreFileUrl(disk.flatFileName, vm.datacenterPath),
            cookie: `+${cookieFile}`,
          };
          // The datastore is the same server as the SDK: nbdkit trusts what the session trusts.
          if (session.trust.ca) {
            const caFile = path.join(scratch, 'source-ca.pem');
            await writeFile(caFile, session.trust.ca, { mode: 0o600 });
            params.cainfo = caFile;
          } else if (source.insecure) params.sslverify = 'false';
          return params;
        },
      };
    }
    case 'vddk': {
      const passwordFile = path.join(scratch, 'password');
      return {
        name: 'vddk',
        secretFiles: [passwordFile],
        async params() {
          await writeFile(passwordFile, source.password, { mode: 0o600 });
          const params: Record<string, string> = {
            server: new URL(source.url).hostname,
            user: source.username,
            password: `+${passwordFile}`,
            vm: `moref=${vm.moref.value}`,
            file: disk.fileName,
          };
          // nbdkit-vddk opens the disk as of that snapshot (VDDK's documented way to read a running VM's disk).
          if (snapshotMoref) params.snapshot = snapshotMoref;
          if (source.transport.vddkLibdir) params.libdir = source.transport.vddkLibdir;
          if (source.transport.thumbprint) params.thumbprint = source.transport.thumbprint;
          return params;
        },
      };
    }
  }
}

/**
 * Scratch directories of exports whose worker died (SIGKILL skips close()). Removed at worker start once older than
 * `maxAgeMs`, so a live export of another worker sharing the directory is never touched.
 */
export async function removeStaleExportDirs(workDir: string, maxAgeMs = 60 * 60 * 1000): Promise<number> {
  let removed = 0;
  const entries = await readdir(workDir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isDirectory() || !e.name.startsWith('export-')) continue;
    const dir = path.join(workDir, e.name);
    const info = await stat(dir).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > maxAgeMs) {
      await rm(dir, { recursive: true, force: true });
      removed++;
    }
  }
  return removed;
}

/** The transport serves a different size than vSphere reports: reading it would copy the wrong thing. */
export class ExportSizeMismatchError extends Error {
  override name = 'ExportSizeMismatchError';
}
