/**
 * Preflight of a request to migrate VMs: every rule, for every VM, before anything is touched. Reads only: the
 * source's inventory record of each VM, and the target's flavors, named resources, quotas and ports.
 */
import type { ColdOptions, GuestOptions, TargetSpec, VmSelector, WarmOptions } from '../shared/migration-input';
import { mappingsForVm } from '../targets/network-plan';
import { TargetAuthError, TargetNotFoundError } from '../targets/target-errors';
import type { Flavor, QuotaHeadroom, TargetProvider } from '../targets/target-provider';
import type { InventoryVm } from '../vsphere/vm-inventory';
import { judgeMacConflicts, judgeQuota, judgeTarget, quotaNeedOf, quotaUnreadable, unsupportedOptions, type QuotaNeed } from './target-rules';
import { fail, verdictOf, warn, type PreflightReason, type VmVerdict } from './verdict';
import { vmwareRules } from './vmware-rules';

export interface PreflightRequest {
  sourceId: string;
  kind: 'cold' | 'warm';
  vms: VmSelector[];
  /** With the target's name resolved (the configuration's default when the request named none). */
  target: TargetSpec & { name: string };
  guest?: GuestOptions;
  warm?: WarmOptions;
  cold?: ColdOptions;
}

export interface PreflightVmResult extends VmVerdict {
  /** The network mappings the migration is submitted with (keepIps resolved into fixedIps). */
  networks?: TargetSpec['networks'];
}

export interface PreflightAnswer {
  verdicts: PreflightVmResult[];
  assessedAt: string;
}

export interface PreflightSources {
  inventory: readonly InventoryVm[];
  transport: 'curl' | 'vddk';
  provider: TargetProvider;
}

function resolveVm(inventory: readonly InventoryVm[], want: VmSelector): { vm?: InventoryVm; reason?: PreflightReason } {
  if (want.moref) {
    const vm = inventory.find((v) => v.moref === want.moref);
    return vm ? { vm } : { reason: fail('vm.not_found', `no VM with moref ${want.moref} in the source`) };
  }
  const named = inventory.filter((v) => v.name === want.name);
  if (named.length === 0) return { reason: fail('vm.not_found', `no VM named '${want.name}' in the source`) };
  if (named.length > 1) return { reason: fail('vm.ambiguous', `${named.length} VMs are named '${want.name}' (${named.map((v) => v.moref).join(', ')}); name it by moref`) };
  return { vm: named[0] };
}

const add = (a: QuotaNeed, b: QuotaNeed): QuotaNeed => ({
  instances: a.instances + b.instances,
  cores: a.cores + b.cores,
  ramMB: a.ramMB + b.ramMB,
  volumes: a.volumes + b.volumes,
  gigabytes: a.gigabytes + b.gigabytes,
  ports: a.ports + b.ports,
});

/** Failures of the target as a whole (credentials, a missing volume type or network): every VM gets them. */
async function targetWide(req: PreflightRequest, provider: TargetProvider): Promise<{ reasons: PreflightReason[]; flavors: Flavor[]; quota?: QuotaHeadroom }> {
  const t = req.target;
  const reasons = unsupportedOptions(t, provider.capabilities.options, t.name);
  const asReason = (err: unknown): PreflightReason => {
    if (err instanceof TargetAuthError) return fail('target.auth', err.message);
    if (err instanceof TargetNotFoundError) return fail('target.not_found', err.message);
    throw err;
  };
  let flavors: Flavor[] = [];
  try {
    flavors = await provider.listFlavors(t.project);
    const warnings = await provider.checkPlacement({
      project: t.project,
      volumeType: t.volumeType,
      availabilityZone: t.availabilityZone,
      volumeAvailabilityZone: t.volumeAvailabilityZone,
      keyName: provider.capabilities.options.keyPairs ? t.keyName : undefined,
      nics: t.networks.map((m) => ({ sourceMac: m.sourceMac ?? '', network: m.targetNetwork, subnet: m.targetSubnet, preserveMac: false, securityGroups: m.securityGroups, floatingIpNetwork: m.floatingIpNetwork })),
    });
    reasons.push(...warnings.map((w) => warn('target.placement', w)));
    // Volume types of the storage mapping exist too (the networks were checked above).
    for (const volumeType of new Set((t.storageMap ?? []).map((m) => m.volumeType).filter((v) => v !== t.volumeType))) {
      await provider.checkPlacement({ project: t.project, volumeType, nics: [] });
    }
  } catch (err) {
    reasons.push(asReason(err));
    return { reasons, flavors };
  }
  let quota: QuotaHeadroom | undefined;
  if (provider.quotaHeadroom) {
    try {
      quota = await provider.quotaHeadroom(t.project);
    } catch (err) {
      reasons.push(quotaUnreadable(err instanceof Error ? err.message : String(err)));
    }
  }
  return { reasons, flavors, quota };
}

export async function assessMigrations(req: PreflightRequest, from: PreflightSources): Promise<PreflightAnswer> {
  const assessedAt = new Date().toISOString();
  const wide = await targetWide(req, from.provider);
  const ctx = { kind: req.kind, transport: from.transport, convert: req.guest?.convert ?? 'auto', shutdownSource: req.kind === 'warm' ? (req.warm?.shutdownSource ?? true) : req.cold?.shutdownSource === true } as const;
  const needs: Array<QuotaNeed | undefined> = [];
  const verdicts: PreflightVmResult[] = [];
  const resolved = req.vms.map((want) => ({ want, ...resolveVm(from.inventory, want) }));
  const requestNics = resolved.flatMap((r) => r.vm?.nics ?? []);
  for (const { want, vm, reason } of resolved) {
    if (!vm) {
      verdicts.push({ vm: want, verdict: 'Fail', reasons: [reason!, ...wide.reasons] });
      needs.push(undefined);
      continue;
    }
    const reasons = [...wide.reasons, ...vmwareRules(vm, ctx)];
    // Several VMs share the request's mappings: each is judged with those for its own NICs.
    const target = req.vms.length > 1 ? { ...req.target, networks: mappingsForVm(req.target.networks, vm.nics, requestNics) } : req.target;
    const judged = judgeTarget(vm, target, wide.flavors);
    // Without the target's flavors (it could not be asked) the flavor rules have nothing to judge.
    reasons.push(...(wide.flavors.length || !wide.reasons.some((r) => r.severity === 'fail') ? judged.reasons : judged.reasons.filter((r) => !r.code.startsWith('flavor.'))));
    const need = quotaNeedOf(vm, judged.flavor, judged.nics?.length ?? vm.nics.length);
    needs.push(need);
    if (wide.quota) reasons.push(...judgeQuota(need, wide.quota, req.target.volumeType, vm.name));
    const keep = (judged.nics ?? []).filter((n) => n.preserveMac).map((n) => ({ network: n.network, mac: n.sourceMac }));
    if (keep.length && from.provider.macConflicts && !wide.reasons.some((r) => r.code === 'target.not_found' || r.code === 'target.auth')) {
      reasons.push(...judgeMacConflicts(await from.provider.macConflicts(req.target.project, keep)));
    }
    verdicts.push({
      vm: { name: vm.name, moref: vm.moref },
      verdict: verdictOf(reasons),
      reasons,
      flavor: judged.flavor?.name,
      bytesToCopy: vm.disks.reduce((n, d) => n + d.capacityBytes, 0),
      disks: vm.disks.length,
      networks: judged.networks,
    });
  }
  // Each VM may fit on its own while all of them together do not.
  const counted = needs.filter((n): n is QuotaNeed => n !== undefined);
  if (wide.quota && counted.length > 1) {
    const together = judgeQuota(counted.reduce(add), wide.quota, req.target.volumeType, `together, the ${counted.length} VMs`);
    for (const v of verdicts) {
      if (v.verdict === 'Fail' || !together.length) continue;
      v.reasons.push(...together.map((r) => warn('quota.batch', `${r.message}; some of them will fail when they create their resources`)));
      v.verdict = verdictOf(v.reasons);
    }
  }
  return { verdicts, assessedAt };
}
