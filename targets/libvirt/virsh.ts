import { execFile } from 'node:child_process';

/**
 * libvirt as its own client speaks it: `virsh -c <uri>` per call. Every argument is passed as its own argv entry (no
 * shell), so a domain or volume name is never parsed as an option or a command. A failure carries virsh's own
 * "error: …" lines, which the typed errors of the callers match.
 */
export class VirshError extends Error {
  override name = 'VirshError';
  constructor(
    readonly args: string[],
    /** libvirt's words, without virsh's "error: " prefixes. */
    readonly libvirtMessage: string,
  ) {
    super(`virsh ${args[0]}: ${libvirtMessage}`);
  }
}

/** No such domain on that host (libvirt's VIR_ERR_NO_DOMAIN text). */
export const isNoDomain = (err: unknown): boolean => err instanceof VirshError && /failed to get domain|Domain not found|no domain with matching/i.test(err.libvirtMessage);

/** No such storage volume in that pool (libvirt's VIR_ERR_NO_STORAGE_VOL text). */
export const isNoStorageVolume = (err: unknown): boolean => err instanceof VirshError && /no storage vol|Storage volume not found/i.test(err.libvirtMessage);

export class Virsh {
  constructor(
    readonly uri: string,
    private readonly timeoutMs = 120_000,
  ) {}

  run(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = execFile(
        'virsh',
        ['-q', '-c', this.uri, ...args],
        { timeout: opts.timeoutMs ?? this.timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } },
        (err, stdout, stderr) => {
          if (!err) return resolve(stdout);
          const text = stderr
            .split('\n')
            .map((l) => l.replace(/^error:\s*/, '').trim())
            .filter(Boolean)
            .join(': ');
          reject(new VirshError(args, text || err.message));
        },
      );
      if (opts.input !== undefined) child.stdin?.end(opts.input);
    });
  }

  /** `key: value` lines (domjobinfo, dominfo, nodeinfo) as a map; keys as virsh prints them. */
  async fields(args: string[]): Promise<Map<string, string>> {
    const out = await this.run(args);
    const map = new Map<string, string>();
    for (const line of out.split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) map.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
    }
    return map;
  }
}
