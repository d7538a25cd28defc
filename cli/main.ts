/**
 * `vmigrate`: the command line of the vmigrate API. Every command is one or a few API calls with the caller's
 * token; nothing here decides what the API decides (scoping, validation, preflight).
 */
import { randomUUID } from 'node:crypto';
import { Command, Option } from 'commander';
import { ApiClient } from './api-client';
import { CliError } from './cli-errors';
import { resolveSettings, saveSettings } from './cli-settings';
import { followEvents } from './event-stream';
import { hostCommands } from './host-commands';
import { requestFromFlags, requestsFromPlan, type PlanFlags, type RequestBody } from './migration-plan';
import { printJson, printTable, type OutputFormat } from './output';
import { ProgressView } from './progress-view';

interface GlobalFlags {
  apiUrl?: string;
  token?: string;
  output: OutputFormat;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

function requestOptions(cmd: Command): Command {
  return cmd
    .option('--plan <file>', 'a YAML or JSON plan: {defaults?, migrations: [POST /migrations bodies]}, a list of bodies, or one body')
    .option('--source <id>', 'the source (see `vmigrate sources`)')
    .option('--vm <name>', 'a VM by name (repeatable)', collect)
    .option('--moref <id>', 'a VM by moref, e.g. vm-42 (repeatable)', collect)
    .addOption(new Option('--kind <kind>', 'cold or warm').choices(['cold', 'warm']))
    .option('--target <name>', 'a configured target (default: the deployment’s default)')
    .option('--project <name>', 'the target project')
    .option('--flavor <name>', 'the flavor (default: the smallest that fits)')
    .option('--volume-type <name>', 'the volume type')
    .option('--availability-zone <name>', 'the compute availability zone')
    .option('--network <mapping>', '<source network or MAC>=<target network>[/<subnet>][,keep-mac][,keep-ips] (repeatable)', collect)
    .option('--instance-name <name>', 'the instance name (default: the VM name)')
    .addOption(new Option('--disk-bus <bus>', 'disk bus').choices(['virtio', 'scsi', 'sata', 'ide']))
    .addOption(new Option('--machine-type <type>', 'machine type').choices(['pc-i440fx', 'pc-q35']))
    .option('--key-name <name>', 'a key pair the cloud injects')
    .addOption(new Option('--convert <mode>', 'guest conversion').choices(['auto', 'force', 'skip']))
    .option('--start', 'start the instance when the migration completes')
    .option('--keep-on-failure', 'keep the target volumes of a failed or cancelled migration')
    .option('--delete-volumes-on-termination', 'delete the volumes with the instance')
    .option('--sync-interval <seconds>', 'warm: seconds between syncs', (v) => Number(v));
}

async function requestsOf(opts: PlanFlags & { plan?: string }): Promise<RequestBody[]> {
  if (opts.plan) {
    if (opts.source || opts.vm || opts.moref) throw new CliError('give either --plan or --source/--vm flags, not both', 2);
    return requestsFromPlan(opts.plan);
  }
  return [requestFromFlags(opts)];
}

const fmtBytes = (n: number | undefined) => (n === undefined ? '' : n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`);
const fmtSeconds = (s: number | undefined) => (s === undefined ? '' : s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${Math.round(s / 60)} min` : `${s} s`);

export function buildProgram(): Command {
  const program = new Command('vmigrate')
    .description('Migrate VMs from vSphere into KVM/OpenStack clouds through the vmigrate API.')
    .option('--api-url <url>', 'the API (default: $VMIGRATE_API_URL, the saved login, or http://127.0.0.1:8080)')
    .option('--token <token>', 'an API or Keystone token (default: $VMIGRATE_TOKEN or the saved login)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .configureOutput({ outputError: (str, write) => write(str.split('\n')[0] + '\n') });

  const client = async (): Promise<{ api: ApiClient; flags: GlobalFlags }> => {
    const flags = program.opts<GlobalFlags>();
    const settings = await resolveSettings(flags);
    return { api: new ApiClient(settings), flags };
  };

  program
    .command('login')
    .description('check a token against the API and save the URL and token for later commands (file mode 0600)')
    .action(async () => {
      const { api, flags } = await client();
      const settings = await resolveSettings(flags);
      if (!settings.token) throw new CliError('give the token with --token or $VMIGRATE_TOKEN', 2);
      const me = await api.get('/whoami');
      const file = await saveSettings(settings);
      if (flags.output === 'json') printJson({ ...me, savedTo: file });
      else process.stdout.write(`logged in to ${settings.url} as ${me.user} (${me.role}; projects: ${me.projects === '*' ? 'all' : me.projects.join(', ')}); saved to ${file}\n`);
    });

  program
    .command('sources')
    .description('the sources you may migrate from, each checked live')
    .option('--no-check', 'do not log in to each source')
    .action(async (opts: { check: boolean }) => {
      const { api, flags } = await client();
      const answer = await api.get('/sources', { check: opts.check ? 'true' : 'false' });
      if (flags.output === 'json') return printJson(answer);
      printTable(
        answer.sources.map((s: any) => ({ id: s.id, kind: s.kind ?? '', url: s.url ?? '', reachable: s.connectivity ? (s.connectivity.reachable ? 'yes' : 'no') : '', version: s.connectivity?.apiVersion ?? '', error: s.connectivity?.error ?? (s.lab ? 'lab simulator' : '') })),
        ['id', 'kind', 'url', 'reachable', 'version', 'error'],
      );
    });

  program
    .command('vms <source>')
    .description("a source's inventory (every page with --all)")
    .option('--name <part>', 'VM names containing this')
    .option('--folder <path>', 'this folder and below')
    .addOption(new Option('--power-state <state>').choices(['poweredOn', 'poweredOff', 'suspended']))
    .option('--host <host>', 'host name or moref')
    .option('--limit <n>', 'VMs per page', (v) => Number(v), 50)
    .option('--page-token <token>', 'the page after this one')
    .option('--all', 'follow the pages to the end')
    .action(async (source: string, opts: { name?: string; folder?: string; powerState?: string; host?: string; limit: number; pageToken?: string; all?: boolean }) => {
      const { api, flags } = await client();
      const vms: any[] = [];
      let pageToken = opts.pageToken;
      let last: any;
      do {
        last = await api.get(`/sources/${encodeURIComponent(source)}/vms`, { name: opts.name, folder: opts.folder, powerState: opts.powerState, host: opts.host, limit: opts.limit, pageToken });
        vms.push(...last.vms);
        pageToken = last.nextPageToken;
      } while (opts.all && pageToken);
      if (flags.output === 'json') return printJson({ ...last, vms });
      printTable(
        vms.map((v) => ({ name: v.name, moref: v.moref, power: v.powerState, folder: v.folder, host: v.host?.name, cpus: v.cpus, memoryMB: v.memoryMB, disks: `${v.disks.length} (${fmtBytes(v.disks.reduce((n: number, d: any) => n + d.capacityBytes, 0))})`, nics: v.nics.length, cbt: v.changeTracking ? 'on' : 'off', snapshots: v.snapshotCount, tools: v.tools.runningStatus.replace(/^guestTools/, '') })),
        ['name', 'moref', 'power', 'folder', 'host', 'cpus', 'memoryMB', 'disks', 'nics', 'cbt', 'snapshots', 'tools'],
      );
      if (!opts.all && last.nextPageToken) process.stdout.write(`(${last.total} in all; next page: --page-token ${last.nextPageToken})\n`);
    });

  requestOptions(program.command('preflight').description('Pass, Warn or Fail for each VM, with the reasons and the estimated runtime; starts nothing')).action(async (opts: PlanFlags & { plan?: string }) => {
    const { api, flags } = await client();
    const answers = [];
    for (const body of await requestsOf(opts)) answers.push(await api.post('/preflight', body));
    if (flags.output === 'json') return printJson(answers.length === 1 ? answers[0] : { preflights: answers });
    for (const a of answers) {
      for (const v of a.verdicts) {
        const est = v.estimate?.basis === 'measured' ? `about ${fmtSeconds(v.estimate.seconds)}` : 'no estimate yet';
        process.stdout.write(`${v.verdict.padEnd(4)}  ${v.vm.name ?? v.vm.moref}${v.flavor ? `  flavor ${v.flavor}` : ''}  ${fmtBytes(v.bytesToCopy)}  ${est}\n`);
        for (const r of v.reasons) process.stdout.write(`      ${r.severity === 'fail' ? 'FAIL' : 'warn'} ${r.code}: ${r.message}\n`);
      }
    }
    // Any Fail is an answer scripts should not miss.
    if (answers.some((a) => a.verdicts.some((v: any) => v.verdict === 'Fail'))) process.exitCode = 3;
  });

  requestOptions(program.command('submit').description('submit migrations (from flags, or every request of a plan); each VM passes preflight first'))
    .option('--idempotency-key <key>', 'makes retrying the submission safe (default: a fresh key per request)')
    .option('--later', 'create the migrations (holding their VMs) without starting them; `vmigrate start <id>` starts one')
    .action(async (opts: PlanFlags & { plan?: string; idempotencyKey?: string; later?: boolean }) => {
      const { api, flags } = await client();
      const results: any[] = [];
      for (const request of await requestsOf(opts)) {
        const body = opts.later ? { ...request, startReplication: false } : request;
        const answer = await api.post('/migrations', body, { 'idempotency-key': opts.idempotencyKey ?? randomUUID() });
        results.push(...(answer.migrations ?? [{ status: 202, ...answer }]));
      }
      if (flags.output === 'json') return printJson({ migrations: results });
      printTable(
        results.map((m) => ({ vm: m.vm?.name ?? m.vm?.moref ?? m.sourceVm, status: m.status, id: m.id ?? '', stage: m.stage ?? '', problem: m.problem?.detail ?? '' })),
        ['vm', 'status', 'id', 'stage', 'problem'],
      );
      if (results.some((m) => m.status >= 400)) process.exitCode = 1;
    });

  program
    .command('list')
    .description('migrations of your projects')
    .option('--project <name>')
    .option('--state <stage>', 'e.g. Queued, WriteVolume, Ready, Completed, Failed')
    .addOption(new Option('--kind <kind>').choices(['cold', 'warm']))
    .addOption(new Option('--status <status>').choices(['running', 'closed']))
    .option('--limit <n>', 'migrations per page', (v) => Number(v))
    .option('--page-token <token>')
    .action(async (opts: Record<string, string | number | undefined>) => {
      const { api, flags } = await client();
      const answer = await api.get('/migrations', { project: opts.project, state: opts.state, kind: opts.kind, status: opts.status, limit: opts.limit, pageToken: opts.pageToken });
      if (flags.output === 'json') return printJson(answer);
      printTable(answer.migrations.map((m: any) => ({ id: m.id, kind: m.kind, stage: m.stage, status: m.status, project: m.project, vm: m.sourceVm, started: m.startedAt })), ['id', 'kind', 'stage', 'status', 'project', 'vm', 'started']);
      if (answer.nextPageToken) process.stdout.write(`(more: --page-token ${answer.nextPageToken})\n`);
    });

  program
    .command('status <id>')
    .description("a migration's stage, disks and verdict")
    .action(async (id: string) => {
      const { api, flags } = await client();
      const s = await api.get(`/migrations/${encodeURIComponent(id)}`);
      if (flags.output === 'json') return printJson(s);
      process.stdout.write(`${s.id}  ${s.kind}  ${s.stage}  ${s.status}${s.preflight ? `  preflight ${s.preflight.verdict}` : ''}\n`);
      for (const d of s.disks ?? []) process.stdout.write(`  ${d.label || `disk ${d.key}`}: ${d.state} ${fmtBytes(d.progress.processed)} of ${fmtBytes(d.progress.total)}${d.etaSeconds !== undefined ? `, ETA ${fmtSeconds(d.etaSeconds)}` : ''}\n`);
      for (const w of s.warnings ?? []) process.stdout.write(`  warning: ${w}\n`);
      if (s.error) process.stdout.write(`  error: ${s.error}\n`);
    });

  program
    .command('events <id>')
    .description("a migration's events; with --follow, live until it ends, with a progress bar per disk")
    .option('-f, --follow', 'stream the events (Server-Sent Events) until the migration ends')
    .action(async (id: string, opts: { follow?: boolean }) => {
      const { api, flags } = await client();
      if (!opts.follow) {
        const answer = await api.get(`/migrations/${encodeURIComponent(id)}/events`);
        if (flags.output === 'json') return printJson(answer);
        for (const e of answer.events) process.stdout.write(`${e.time} ${e.name} [${e.stage}]${e.disk !== undefined ? ` disk ${e.disk}` : ''}\n`);
        return;
      }
      const view = flags.output === 'json' ? undefined : new ProgressView();
      let status: string | undefined;
      try {
        for await (const ev of followEvents(api, id)) {
          if (view) view.onEvent(ev);
          else process.stdout.write(`${JSON.stringify({ id: ev.id, event: ev.event, data: ev.data })}\n`);
          if (ev.event === 'end') status = (ev.data as { status?: string })?.status;
        }
      } finally {
        view?.stop();
      }
      // A migration that did not complete is a failure for a script that waited for it.
      if (status && status !== 'COMPLETED') process.exitCode = 4;
    });

  program
    .command('cutover <id>')
    .description('warm migrations: cut over now, or at a time')
    .option('--at <time>', 'ISO 8601 time of a scheduled cutover')
    .action(async (id: string, opts: { at?: string }) => {
      const { api, flags } = await client();
      const answer = await api.post(`/migrations/${encodeURIComponent(id)}/cutover`, opts.at ? { at: opts.at } : {});
      if (flags.output === 'json') return printJson(answer);
      process.stdout.write(`cutover of ${id} accepted (by ${answer.actor}${answer.at ? `, at ${answer.at}` : ''}; predicted final sync ${fmtSeconds(answer.predictedFinalSyncSeconds)})\n`);
    });

  program
    .command('start <id>')
    .description('start a migration that was submitted with --later')
    .action(async (id: string) => {
      const { api, flags } = await client();
      const answer = await api.post(`/migrations/${encodeURIComponent(id)}/start`, {});
      if (flags.output === 'json') return printJson(answer);
      process.stdout.write(`${id} started (by ${answer.actor}); it waits in Queued for a copy slot\n`);
    });

  program
    .command('cancel <id>')
    .description('cancel a running migration')
    .action(async (id: string) => {
      const { api, flags } = await client();
      const answer = await api.post(`/migrations/${encodeURIComponent(id)}/cancel`, {});
      if (flags.output === 'json') return printJson(answer);
      process.stdout.write(`cancel of ${id} requested\n`);
    });

  program
    .command('retry <id>')
    .description('start a failed or cancelled migration again, from what it left durable')
    .action(async (id: string) => {
      const { api, flags } = await client();
      const answer = await api.post(`/migrations/${encodeURIComponent(id)}/retry`, {});
      if (flags.output === 'json') return printJson(answer);
      process.stdout.write(`${id} admitted again (${answer.stage}; reusing ${answer.retry?.reusedDisks ?? 0} disk(s), resuming ${answer.retry?.resumedDisks ?? 0})\n`);
    });

  hostCommands(program, client);

  return program;
}

export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram().exitOverride();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help') return 0;
    if (typeof code === 'string' && code.startsWith('commander.')) return 2; // commander printed the one line already
    if (err instanceof CliError) {
      process.stderr.write(`vmigrate: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`vmigrate: ${(err as Error).message ?? String(err)}\n`);
    return 1;
  }
}
