import {
  addClaim,
  GIB,
  grantSlots,
  markStarted,
  queuePlaces,
  refusal,
  releaseClaim,
  releaseCopies,
  releaseHold,
  type AdmissionLimits,
  type ClaimedVm,
  type LedgerState,
} from '../../workflows/admission-ledger';

/** The admission rules on their own (the workflow around them is tested end to end in admission.test.ts). */

const vm = (moref: string, o: Partial<ClaimedVm> = {}): ClaimedVm => ({ sourceId: 'vc1', moref, name: `name-${moref}`, host: 'host-1', datastores: ['ds1'], disks: 1, capacityBytes: 10 * GIB, ...o });
const claim = (s: LedgerState, id: string, v: ClaimedVm, project = 'p1') => {
  const c = addClaim(s, { migrationId: id, project, vm: v, submittedAt: 0, submittedBy: 'alice' });
  markStarted(s, id);
  return c;
};

describe('admission ledger', () => {
  it('keeps a migration created to be started later out of the line, holding its VM, until it is started', () => {
    const s: LedgerState = { claims: [] };
    const limits: AdmissionLimits = { copiesPerSourceHost: 1 };
    addClaim(s, { migrationId: 'held', project: 'p1', vm: vm('vm-1'), submittedAt: 0, submittedBy: 'alice', held: true });
    markStarted(s, 'held');
    claim(s, 'm2', vm('vm-2'));
    claim(s, 'm3', vm('vm-3'));
    // Not granted, not in line: the first waiting one gets the host's only slot.
    expect(grantSlots(s, limits)).toEqual([{ migrationId: 'm2', copySlots: 1 }]);
    expect(queuePlaces(s, limits).map((q) => q.migrationId)).toEqual(['m3']);
    expect(refusal(s, limits, 'p1', vm('vm-1'))?.holder).toBe('held');
    // Started: it joins the end of the line, behind m3.
    expect(releaseHold(s, 'held', 5)).toBe(true);
    expect(releaseHold(s, 'held', 6)).toBe(false);
    expect(queuePlaces(s, limits).map((q) => q.migrationId)).toEqual(['m3', 'held']);
    releaseCopies(s, 'm2');
    expect(grantSlots(s, limits)).toEqual([{ migrationId: 'm3', copySlots: 1 }]);
  });


  it('refuses a second live migration of a VM, naming the holder, and frees it when that one ends', () => {
    const s: LedgerState = { claims: [] };
    claim(s, 'm1', vm('vm-1'));
    expect(refusal(s, {}, 'p2', vm('vm-1'))).toEqual({ conflict: 'vm', holder: 'm1', reason: 'VM name-vm-1 (vm-1) of source vc1 is already being migrated by m1; cancel it or wait for it to end' });
    // The same moref in another source is another VM.
    expect(refusal(s, {}, 'p1', vm('vm-1', { sourceId: 'vc2' }))).toBeUndefined();
    expect(releaseClaim(s, 'm1')).toBe(true);
    expect(refusal(s, {}, 'p1', vm('vm-1'))).toBeUndefined();
  });

  it("refuses what would take a project's live disks over its volume quota", () => {
    const s: LedgerState = { claims: [] };
    const limits: AdmissionLimits = { projects: { p1: { volumeGiB: 25 } } };
    claim(s, 'm1', vm('vm-1'));
    claim(s, 'm2', vm('vm-2'));
    expect(refusal(s, limits, 'p1', vm('vm-3'))?.reason).toBe('project p1 would have 30.0 GiB of disks in live migrations, over its quota of 25 GiB (20.0 GiB now)');
    expect(refusal(s, limits, 'p1', vm('vm-3', { capacityBytes: 5 * GIB }))).toBeUndefined();
    expect(refusal(s, limits, 'p2', vm('vm-3'))).toBeUndefined();
  });

  it('grants copy slots per source host first come first served, without a busy host holding up a free one', () => {
    const s: LedgerState = { claims: [] };
    const limits: AdmissionLimits = { copiesPerSourceHost: 2 };
    claim(s, 'big', vm('vm-1', { disks: 3 }));
    claim(s, 'next', vm('vm-2'));
    claim(s, 'elsewhere', vm('vm-3', { host: 'host-2', datastores: ['ds2'] }));
    // `big` has 3 disks and gets the host's 2 slots; `next` waits; `elsewhere` is on a free host.
    expect(grantSlots(s, limits)).toEqual([
      { migrationId: 'big', copySlots: 2 },
      { migrationId: 'elsewhere', copySlots: 1 },
    ]);
    expect(queuePlaces(s, limits)).toEqual([{ migrationId: 'next', project: 'p1', position: 1, waiting: 1, waitingFor: ['source host host-1: 2 of 2 disk copies in use'] }]);
    releaseCopies(s, 'big');
    expect(grantSlots(s, limits)).toEqual([{ migrationId: 'next', copySlots: 1 }]);
    expect(grantSlots(s, limits)).toEqual([]);
  });

  it("counts a copy against every datastore of the VM, and waits for a project's concurrent-migration quota", () => {
    const s: LedgerState = { claims: [] };
    const limits: AdmissionLimits = { copiesPerDatastore: 1, defaultProjectQuota: { concurrentMigrations: 1 } };
    claim(s, 'a', vm('vm-1', { host: 'h1', datastores: ['ds1', 'ds2'] }), 'p1');
    claim(s, 'b', vm('vm-2', { host: 'h2', datastores: ['ds2'] }), 'p2');
    claim(s, 'c', vm('vm-3', { host: 'h3', datastores: ['ds3'] }), 'p1');
    expect(grantSlots(s, limits)).toEqual([{ migrationId: 'a', copySlots: 1 }]);
    expect(queuePlaces(s, limits)).toEqual([
      { migrationId: 'b', project: 'p2', position: 1, waiting: 2, waitingFor: ['datastore ds2: 1 of 1 disk copies in use'] },
      { migrationId: 'c', project: 'p1', position: 2, waiting: 2, waitingFor: ['project p1: 1 of 1 concurrent migrations running'] },
    ]);
    // Copies done: the datastore is free, but `a` still runs, so p1 stays at its quota.
    releaseCopies(s, 'a');
    expect(grantSlots(s, limits)).toEqual([{ migrationId: 'b', copySlots: 1 }]);
    releaseClaim(s, 'a');
    expect(grantSlots(s, limits)).toEqual([{ migrationId: 'c', copySlots: 1 }]);
  });

  it('grants nothing to a claim whose workflow has not started yet, though it already holds its VM', () => {
    const s: LedgerState = { claims: [] };
    addClaim(s, { migrationId: 'm', project: 'p1', vm: vm('vm-1'), submittedAt: 0, submittedBy: 'alice' });
    expect(grantSlots(s, {})).toEqual([]);
    expect(queuePlaces(s, {})).toEqual([]);
    expect(refusal(s, {}, 'p1', vm('vm-1'))?.holder).toBe('m');
    markStarted(s, 'm');
    expect(grantSlots(s, {})).toEqual([{ migrationId: 'm', copySlots: 1 }]);
  });

  it('gives a migration all its disks at once when nothing caps it', () => {
    const s: LedgerState = { claims: [] };
    claim(s, 'm', vm('vm-1', { disks: 4, host: undefined }));
    expect(grantSlots(s, { copiesPerSourceHost: 1 })).toEqual([{ migrationId: 'm', copySlots: 4 }]);
  });
});
