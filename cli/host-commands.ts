/**
 * `vmigrate live …` and `vmigrate drain …`: operations on a target's hosts (the API's /live-migrations and
 * /host-drains, admin only). With --wait a command follows the operation until it ends and exits non-zero when it
 * did not complete.
 */
import { Command, Option } from 'commander';
import type { ApiClient } from './api-client';
import { CliError } from './cli-errors';
import { printJson, printTable, type OutputFormat } from './output';

type ClientOf = () => Promise<{ api: ApiClient; flags: { output: OutputFormat } }>;

const MiB = 2 ** 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function liveLine(s: any): string {
  const p = s.progress;
  const mem = s.memory ? `, memory ${(s.memory.processedBytes / MiB).toFixed(0)} MiB sent, ${(s.memory.remainingBytes / MiB).toFixed(0)} MiB left` : '';
  const disk = s.disk?.totalBytes ? `, disk ${(s.disk.processedBytes / MiB).toFixed(0)} of ${(s.disk.totalBytes / MiB).toFixed(0)} MiB` : '';
  const downtime = p?.expectedDowntimeMs !== undefined && s.status === 'RUNNING' ? `, expected downtime ${p.expectedDowntimeMs} ms` : '';
  const where = `${s.source ?? '?'} → ${s.destination ?? s.requestedDestination ?? s.candidates?.[0] ?? '?'}`;
  const done = s.downtimeMs !== undefined ? `, downtime ${s.downtimeMs} ms` : '';
  return `${s.id}  ${s.stage}  ${s.serverName ?? s.serverId}  ${where}${s.mode ? ` (${s.mode})` : ''}${mem}${disk}${downtime}${done}${s.error ? `\n  error: ${s.error}` : ''}`;
}

function drainLine(s: any): string {
  const lines = [`${s.id}  ${s.stage}  host ${s.host} (${s.reason})${s.moved !== undefined ? `: ${s.moved} moved, ${s.notMoved} not moved` : ''}`];
  for (const server of s.servers ?? []) lines.push(`  ${server.name ?? server.serverId}: ${server.to ? `moved to ${server.to}${server.how === 'cold' ? ' (stopped: cold migration)' : ''}` : server.error ? `not moved: ${server.error}` : server.startedAt ? 'moving' : 'waiting'}`);
  if (s.error) lines.push(`  error: ${s.error}`);
  return lines.join('\n');
}

/** Polls `path` until it is no longer RUNNING, printing each new line; the exit code says how it ended. */
async function follow(api: ApiClient, path: string, line: (s: any) => string, output: OutputFormat): Promise<void> {
  let last = '';
  for (;;) {
    const s = await api.get(path);
    const text = line(s);
    if (output !== 'json' && text !== last) process.stdout.write(`${text}\n`);
    last = text;
    if (s.status !== 'RUNNING') {
      if (output === 'json') printJson(s);
      if (s.status !== 'COMPLETED') process.exitCode = 4;
      return;
    }
    await sleep(1000);
  }
}

const convergenceOf = (opts: { limit?: number; onLimit?: string }) => {
  if (opts.limit === undefined && opts.onLimit === undefined) return undefined;
  if (opts.limit === undefined) throw new CliError('--on-limit needs --limit <seconds>', 2);
  return { limitSeconds: opts.limit, onLimit: opts.onLimit ?? 'force-complete' };
};

export function hostCommands(program: Command, client: ClientOf): void {
  const live = program.command('live').description("live migration of a running server to another host of its target (admin)");
  live
    .command('migrate <target> <server>')
    .description('live-migrate a server (OpenStack: its id; libvirt: the domain name or UUID)')
    .option('--destination <host>', 'a host of the target (default: the scheduler, or the host with the most free memory)')
    .addOption(new Option('--block', 'copy local disks with it (default: decided from its storage)'))
    .addOption(new Option('--no-block', 'shared storage: move memory only'))
    .option('--limit <seconds>', 'let it run this long before the --on-limit policy acts', (v) => Number(v))
    .addOption(new Option('--on-limit <policy>', 'past --limit').choices(['force-complete', 'abort']))
    .option('--wait', 'follow it until it ends')
    .action(async (target: string, server: string, opts: { destination?: string; block?: boolean; limit?: number; onLimit?: string; wait?: boolean }) => {
      const { api, flags } = await client();
      const convergence = convergenceOf(opts);
      const s = await api.post('/live-migrations', { target, server, ...(opts.destination ? { destination: opts.destination } : {}), ...(opts.block !== undefined ? { blockMigration: opts.block } : {}), ...(convergence ? { convergence } : {}) });
      if (!opts.wait) return flags.output === 'json' ? printJson(s) : void process.stdout.write(`${liveLine(s)}\n`);
      await follow(api, `/live-migrations/${encodeURIComponent(s.id)}`, liveLine, flags.output);
    });
  live
    .command('list')
    .description('live migrations, newest first')
    .action(async () => {
      const { api, flags } = await client();
      const answer = await api.get('/live-migrations');
      if (flags.output === 'json') return printJson(answer);
      printTable(answer.liveMigrations, ['id', 'stage', 'status', 'startedAt']);
    });
  live
    .command('status <id>')
    .description("a live migration's stage, progress and outcome")
    .option('--wait', 'follow it until it ends')
    .action(async (id: string, opts: { wait?: boolean }) => {
      const { api, flags } = await client();
      if (opts.wait) return follow(api, `/live-migrations/${encodeURIComponent(id)}`, liveLine, flags.output);
      const s = await api.get(`/live-migrations/${encodeURIComponent(id)}`);
      if (flags.output === 'json') return printJson(s);
      process.stdout.write(`${liveLine(s)}\n`);
    });
  live
    .command('cancel <id>')
    .description('abort a live migration: the server stays running on its source')
    .action(async (id: string) => {
      const { api, flags } = await client();
      const s = await api.post(`/live-migrations/${encodeURIComponent(id)}/cancel`, {});
      if (flags.output === 'json') return printJson(s);
      process.stdout.write(`cancel of ${id} requested\n`);
    });

  const drain = program.command('drain').description('empty a compute host for maintenance (admin)');
  drain
    .command('start <target> <host>')
    .description('disable the host with a reason and live-migrate every server off it')
    .requiredOption('--reason <text>', "recorded as the compute service's disabled reason")
    .option('--max-in-flight <n>', 'live migrations at once (default 1)', (v) => Number(v))
    .option('--reenable', 'enable the host again once it is empty')
    .option('--wait', 'follow it until it ends')
    .action(async (target: string, host: string, opts: { reason: string; maxInFlight?: number; reenable?: boolean; wait?: boolean }) => {
      const { api, flags } = await client();
      const s = await api.post('/host-drains', { target, host, reason: opts.reason, ...(opts.maxInFlight ? { maxInFlight: opts.maxInFlight } : {}), ...(opts.reenable ? { reenable: true } : {}) });
      if (!opts.wait) return flags.output === 'json' ? printJson(s) : void process.stdout.write(`${drainLine(s)}\n`);
      await follow(api, `/host-drains/${encodeURIComponent(s.id)}`, drainLine, flags.output);
    });
  drain
    .command('list')
    .description('host drains, newest first')
    .action(async () => {
      const { api, flags } = await client();
      const answer = await api.get('/host-drains');
      if (flags.output === 'json') return printJson(answer);
      printTable(answer.hostDrains, ['id', 'stage', 'status', 'startedAt']);
    });
  drain
    .command('status <id>')
    .description("a drain's stage and each server's move (live, or cold for a stopped one)")
    .option('--wait', 'follow it until it ends')
    .action(async (id: string, opts: { wait?: boolean }) => {
      const { api, flags } = await client();
      if (opts.wait) return follow(api, `/host-drains/${encodeURIComponent(id)}`, drainLine, flags.output);
      const s = await api.get(`/host-drains/${encodeURIComponent(id)}`);
      if (flags.output === 'json') return printJson(s);
      process.stdout.write(`${drainLine(s)}\n`);
    });
  drain
    .command('cancel <id>')
    .description('stop a drain: its running live migrations are aborted, the host stays disabled')
    .action(async (id: string) => {
      const { api, flags } = await client();
      const s = await api.post(`/host-drains/${encodeURIComponent(id)}/cancel`, {});
      if (flags.output === 'json') return printJson(s);
      process.stdout.write(`cancel of ${id} requested\n`);
    });
}
