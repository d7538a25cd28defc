/**
 * The admission ledger: which migrations are live, which source VM each one holds, and who may copy now. Pure data
 * and functions (no Temporal calls), so the admission workflow stays a thin shell around it and the rules are tested
 * on their own.
 *
 * Rules:
 * - One live migration per source VM, keyed by the VM's moref in its source (a name and a moref of the same VM are
 *   the same key). A second submission of a VM that is live is refused, naming the migration that holds it.
 * - A project's volume quota (GiB of disks in its live migrations) refuses a submission that would exceed it.
 * - Waiting for a slot (the Queued stage): a migration starts once its project is below its concurrent-migration
 *   quota and its source host and datastores have a free disk-copy slot. It is granted between one and its disk
 *   count of copy slots, the most that fit, and copies that many disks at a time. Each slot counts against the VM's
 *   host and against every datastore its disks are on (conservative: a copy reads one datastore).
 * - A machine booted from the agent's ISO is its own source: keyed by its machine id under source "agent", with no
 *   host or datastore shared with others, so only its project's quotas can keep it waiting.
 * - First come, first served among those that can start: a migration waiting for a busy host does not hold up one
 *   whose host is free. Its place in line is its rank among all migrations waiting.
 */

export interface ProjectQuota {
  /** Migrations of the project that may run (past Queued) at once. */
  concurrentMigrations?: number;
  /** GiB of source disks the project's live migrations may add up to. */
  volumeGiB?: number;
}

export interface AdmissionLimits {
  /** Disk copies that may read through one source (ESXi) host at once. */
  copiesPerSourceHost?: number;
  /** Disk copies that may read one datastore at once. */
  copiesPerDatastore?: number;
  /** Quotas by project name; `defaultProjectQuota` for the others. */
  projects?: Record<string, ProjectQuota>;
  defaultProjectQuota?: ProjectQuota;
}

export interface ClaimedVm {
  sourceId: string;
  moref: string;
  name: string;
  /** The VM's host moref in its source, when known. */
  host?: string;
  datastores: string[];
  disks: number;
  capacityBytes: number;
}

export interface Claim {
  migrationId: string;
  project: string;
  vm: ClaimedVm;
  submittedAt: number;
  submittedBy: string;
  /**
   * starting: claimed, its workflow not yet started (nothing may be granted to it: the grant would find no one).
   * waiting: Queued for a slot. running: granted (copySlots held until its copies are done).
   */
  state: 'starting' | 'waiting' | 'running';
  /** Created to be started later: it holds its VM but is not in line for slots until it is started (releaseHold). */
  held?: boolean;
  copySlots: number;
  /** The run admission started (set once started): liveness checks and grants go to that run, not to a later one. */
  runId?: string;
}

export interface LedgerState {
  claims: Claim[];
}

export const GIB = 1024 ** 3;

export const vmKey = (vm: { sourceId: string; moref: string }) => `${vm.sourceId}/${vm.moref}`;

/** What an agent's machine claims: itself, with the disks the agent found. */
export function agentMachineClaim(input: { machineId: string; machine: { guest: { name: string }; disks: Array<{ sizeBytes: number }> } }): ClaimedVm {
  return {
    sourceId: 'agent',
    moref: input.machineId,
    name: input.machine.guest.name || input.machineId,
    datastores: [],
    disks: input.machine.disks.length,
    capacityBytes: input.machine.disks.reduce((s, d) => s + d.sizeBytes, 0),
  };
}
const hostKey = (vm: ClaimedVm) => (vm.host ? `${vm.sourceId}/${vm.host}` : undefined);
const datastoreKeys = (vm: ClaimedVm) => vm.datastores.map((d) => `${vm.sourceId}/${d}`);

export function claimOfVm(state: LedgerState, vm: { sourceId: string; moref: string }): Claim | undefined {
  const key = vmKey(vm);
  return state.claims.find((c) => vmKey(c.vm) === key);
}

export function claimOf(state: LedgerState, migrationId: string): Claim | undefined {
  return state.claims.find((c) => c.migrationId === migrationId);
}

export function quotaOf(limits: AdmissionLimits, project: string): ProjectQuota {
  // Own keys only: a project named like an Object.prototype member must not pick that up as its quota.
  const own = limits.projects && Object.prototype.hasOwnProperty.call(limits.projects, project) ? limits.projects[project] : undefined;
  return own ?? limits.defaultProjectQuota ?? {};
}

/** Why this VM cannot be admitted now (undefined: it can). Call after making sure the holders are still live. */
export function refusal(state: LedgerState, limits: AdmissionLimits, project: string, vm: ClaimedVm): { reason: string; conflict: 'vm' | 'quota'; holder?: string } | undefined {
  const holder = claimOfVm(state, vm);
  if (holder) {
    return {
      conflict: 'vm',
      holder: holder.migrationId,
      reason: `VM ${vm.name} (${vm.moref}) of source ${vm.sourceId} is already being migrated by ${holder.migrationId}; cancel it or wait for it to end`,
    };
  }
  const quota = quotaOf(limits, project).volumeGiB;
  if (quota !== undefined) {
    const live = state.claims.filter((c) => c.project === project).reduce((s, c) => s + c.vm.capacityBytes, 0);
    const after = (live + vm.capacityBytes) / GIB;
    if (after > quota) {
      return {
        conflict: 'quota',
        reason: `project ${project} would have ${after.toFixed(1)} GiB of disks in live migrations, over its quota of ${quota} GiB (${(live / GIB).toFixed(1)} GiB now)`,
      };
    }
  }
  return undefined;
}

export function addClaim(state: LedgerState, claim: Omit<Claim, 'state' | 'copySlots'>): Claim {
  const c: Claim = { ...claim, state: 'starting', copySlots: 0 };
  state.claims.push(c);
  return c;
}

/** Its workflow has started (as `runId`): from now on it waits in line for a grant. */
export function markStarted(state: LedgerState, migrationId: string, runId?: string): void {
  const c = claimOf(state, migrationId);
  if (c?.state !== 'starting') return;
  c.state = 'waiting';
  if (runId) c.runId = runId;
}

/**
 * A held migration was started: it joins the end of the line (started now, it waits behind those already waiting).
 * Returns whether there was a hold to release.
 */
export function releaseHold(state: LedgerState, migrationId: string, at: number): boolean {
  const c = claimOf(state, migrationId);
  if (!c?.held) return false;
  delete c.held;
  c.submittedAt = at;
  state.claims = [...state.claims.filter((x) => x !== c), c];
  return true;
}

/** The migration's copies are done: its copy slots go back (it stays live, and keeps its VM and project slot). */
export function releaseCopies(state: LedgerState, migrationId: string): void {
  const c = claimOf(state, migrationId);
  if (c) c.copySlots = 0;
}

/** The migration ended (any way): its VM, project slot and copy slots go back. */
export function releaseClaim(state: LedgerState, migrationId: string): boolean {
  const before = state.claims.length;
  state.claims = state.claims.filter((c) => c.migrationId !== migrationId);
  return state.claims.length !== before;
}

function usage(state: LedgerState) {
  const copies = new Map<string, number>();
  const running = new Map<string, number>();
  for (const c of state.claims) {
    if (c.state !== 'running') continue;
    running.set(c.project, (running.get(c.project) ?? 0) + 1);
    if (!c.copySlots) continue;
    for (const k of [hostKey(c.vm), ...datastoreKeys(c.vm)]) if (k) copies.set(k, (copies.get(k) ?? 0) + c.copySlots);
  }
  return { copies, running };
}

/** What keeps a waiting migration waiting, or the number of copy slots it can have now. */
function fit(limits: AdmissionLimits, use: ReturnType<typeof usage>, c: Claim): { slots: number } | { waitingFor: string[] } {
  const waitingFor: string[] = [];
  const quota = quotaOf(limits, c.project).concurrentMigrations;
  const running = use.running.get(c.project) ?? 0;
  if (quota !== undefined && running >= quota) waitingFor.push(`project ${c.project}: ${running} of ${quota} concurrent migrations running`);
  let slots = Math.max(1, c.vm.disks);
  const host = hostKey(c.vm);
  if (host && limits.copiesPerSourceHost !== undefined) {
    const free = limits.copiesPerSourceHost - (use.copies.get(host) ?? 0);
    if (free < 1) waitingFor.push(`source host ${c.vm.host}: ${use.copies.get(host)} of ${limits.copiesPerSourceHost} disk copies in use`);
    slots = Math.min(slots, free);
  }
  if (limits.copiesPerDatastore !== undefined) {
    for (const [i, ds] of datastoreKeys(c.vm).entries()) {
      const free = limits.copiesPerDatastore - (use.copies.get(ds) ?? 0);
      if (free < 1) waitingFor.push(`datastore ${c.vm.datastores[i]}: ${use.copies.get(ds)} of ${limits.copiesPerDatastore} disk copies in use`);
      slots = Math.min(slots, free);
    }
  }
  return waitingFor.length ? { waitingFor } : { slots };
}

/** Grants every waiting migration that fits now, oldest first; returns the grants to send. */
export function grantSlots(state: LedgerState, limits: AdmissionLimits): Array<{ migrationId: string; copySlots: number }> {
  const granted: Array<{ migrationId: string; copySlots: number }> = [];
  for (const c of state.claims) {
    if (c.state !== 'waiting' || c.held) continue;
    const f = fit(limits, usage(state), c);
    if (!('slots' in f)) continue;
    c.state = 'running';
    c.copySlots = f.slots;
    granted.push({ migrationId: c.migrationId, copySlots: f.slots });
  }
  return granted;
}

export interface QueuePlace {
  migrationId: string;
  project: string;
  /** 1 = next in line. */
  position: number;
  waiting: number;
  waitingFor: string[];
}

/** Every waiting migration's place in line and what it waits for. */
export function queuePlaces(state: LedgerState, limits: AdmissionLimits): QueuePlace[] {
  const use = usage(state);
  const waiting = state.claims.filter((c) => c.state === 'waiting' && !c.held);
  return waiting.map((c, i) => {
    const f = fit(limits, use, c);
    return { migrationId: c.migrationId, project: c.project, position: i + 1, waiting: waiting.length, waitingFor: 'waitingFor' in f ? f.waitingFor : [] };
  });
}
