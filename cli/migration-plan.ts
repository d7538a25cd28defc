import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { CliError } from './cli-errors';

/**
 * What `vmigrate submit` and `vmigrate preflight` send: POST /migrations bodies, from flags for one request or from
 * a plan file (YAML or JSON) of many. A plan is `{migrations: [body, …]}`, a list of bodies, or one body; `defaults`
 * beside `migrations` are merged into each (targets deeply), so a wave of VMs shares its target settings. The API
 * validates every field and rejects unknown ones; the CLI does not second-guess it.
 */
export type RequestBody = Record<string, unknown>;

export interface PlanFlags {
  source?: string;
  vm?: string[];
  moref?: string[];
  kind?: string;
  target?: string;
  project?: string;
  flavor?: string;
  volumeType?: string;
  availabilityZone?: string;
  network?: string[];
  instanceName?: string;
  diskBus?: string;
  machineType?: string;
  keyName?: string;
  convert?: string;
  start?: boolean;
  keepOnFailure?: boolean;
  deleteVolumesOnTermination?: boolean;
  syncInterval?: number;
}

/** `--network "VM Network=lab-net"` or `--network "00:50:56:aa:bb:cc=lab-net/lab-subnet,keep-mac,keep-ips"`. */
export function parseNetworkFlag(v: string): Record<string, unknown> {
  const eq = v.lastIndexOf('=');
  if (eq <= 0) throw new CliError(`--network ${JSON.stringify(v)}: give it as <source network or MAC>=<target network>[/<subnet>][,keep-mac][,keep-ips]`, 2);
  const source = v.slice(0, eq);
  const [where, ...flags] = v.slice(eq + 1).split(',');
  const [network, subnet] = where.split('/');
  const out: Record<string, unknown> = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(source) ? { sourceMac: source } : { sourceNetwork: source };
  out.targetNetwork = network;
  if (subnet) out.targetSubnet = subnet;
  for (const f of flags) {
    if (f === 'keep-mac') out.preserveMac = true;
    else if (f === 'keep-ips') out.keepIps = true;
    else throw new CliError(`--network ${JSON.stringify(v)}: unknown flag ${JSON.stringify(f)} (keep-mac, keep-ips)`, 2);
  }
  return out;
}

export function requestFromFlags(f: PlanFlags): RequestBody {
  const vms = [...(f.vm ?? []).map((name) => ({ name })), ...(f.moref ?? []).map((moref) => ({ moref }))];
  if (!f.source) throw new CliError('give --source <id> (see `vmigrate sources`), or a plan file with --plan', 2);
  if (!vms.length) throw new CliError('give --vm <name> or --moref <vm-id> (several allowed), or a plan file with --plan', 2);
  if (!f.project || !f.volumeType) throw new CliError('give --project and --volume-type (and --network for each source network)', 2);
  const target: Record<string, unknown> = { project: f.project, volumeType: f.volumeType, networks: (f.network ?? []).map(parseNetworkFlag) };
  for (const [k, v] of Object.entries({ name: f.target, flavor: f.flavor, availabilityZone: f.availabilityZone, instanceName: f.instanceName, diskBus: f.diskBus, machineType: f.machineType, keyName: f.keyName, start: f.start, keepOnFailure: f.keepOnFailure, deleteVolumesOnTermination: f.deleteVolumesOnTermination })) {
    if (v !== undefined) target[k] = v;
  }
  return {
    ...(f.kind ? { kind: f.kind } : {}),
    ...(f.kind === 'warm' && f.syncInterval ? { warm: { syncIntervalSeconds: f.syncInterval } } : {}),
    sourceId: f.source,
    ...(vms.length === 1 ? { vm: vms[0] } : { vms }),
    target,
    ...(f.convert ? { guest: { convert: f.convert } } : {}),
  };
}

function merge(base: RequestBody, over: RequestBody): RequestBody {
  const out: RequestBody = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = b && v && typeof b === 'object' && typeof v === 'object' && !Array.isArray(b) && !Array.isArray(v) ? merge(b as RequestBody, v as RequestBody) : v;
  }
  return out;
}

export async function requestsFromPlan(file: string): Promise<RequestBody[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read the plan ${file}: ${(err as Error).message}`, 2);
  }
  let plan: unknown;
  try {
    plan = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new CliError(`the plan ${file} is not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`, 2);
  }
  const isObject = (v: unknown): v is RequestBody => !!v && typeof v === 'object' && !Array.isArray(v);
  let bodies: unknown[];
  let defaults: RequestBody = {};
  if (Array.isArray(plan)) bodies = plan;
  else if (isObject(plan) && Array.isArray(plan.migrations)) {
    bodies = plan.migrations;
    if (plan.defaults !== undefined) {
      if (!isObject(plan.defaults)) throw new CliError(`the plan ${file}: defaults must be an object`, 2);
      defaults = plan.defaults;
    }
  } else if (isObject(plan)) bodies = [plan];
  else throw new CliError(`the plan ${file} holds no migrations: give {migrations: [...]}, a list, or one request`, 2);
  return bodies.map((b, i) => {
    if (!isObject(b)) throw new CliError(`the plan ${file}: migrations[${i}] is not an object`, 2);
    return merge(defaults, b);
  });
}
