import { defaultPayloadConverter, msToTs } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { WorkflowExecutionDescription } from '@temporalio/client';
import { migrationStatus } from '../../api/migration-view';
import { buildRecord } from '../../api/workflow-history';

/**
 * How a disk whose copy is being retried reads: a failed attempt that is waiting for its retry is `retrying`; once
 * the next attempt has started it is `copying` again, with progress from its heartbeat. The record is built from a
 * history and a pending-activity view in the server's own wire form.
 */
const MiB = 1024 * 1024;
const p = (v: unknown) => ({ payloads: [defaultPayloadConverter.toPayload(v)] });
const ts = (ms: number) => msToTs(ms);
const t0 = Date.parse('2026-12-01T10:00:00Z');

function recordWith(state: temporal.api.enums.v1.PendingActivityState) {
  // Event ids as plain numbers (the wire form has Longs; the record only compares them).
  const history = [
    { eventId: 1, eventTime: ts(t0), workflowExecutionStartedEventAttributes: { input: p({ migrationId: 'm1', sourceId: 'sim', vm: { name: 'web01' }, target: { project: 'p1', volumeType: 'std', networks: [] } }) } },
    {
      eventId: 5,
      eventTime: ts(t0 + 100),
      activityTaskScheduledEventAttributes: { activityId: '1', activityType: { name: 'preflight' }, input: p({}) },
    },
    {
      eventId: 7,
      eventTime: ts(t0 + 200),
      activityTaskCompletedEventAttributes: { scheduledEventId: 5, result: p({ moref: 'vm-1', name: 'web01', disks: [{ key: 2000, label: 'Hard disk 1', capacityBytes: 64 * MiB, fileName: 'x' }], nics: [], warnings: [] }) },
    },
    {
      eventId: 9,
      eventTime: ts(t0 + 300),
      activityTaskScheduledEventAttributes: { activityId: '2', activityType: { name: 'exportDisk' }, input: p({ migrationId: 'm1', diskKey: 2000, target: { volumeName: 'm1-disk0' } }) },
    },
  ] as unknown as temporal.api.history.v1.IHistoryEvent[];
  const description = {
    workflowId: 'm1',
    runId: 'r1',
    type: 'coldMigration',
    status: { name: 'RUNNING' },
    startTime: new Date(t0),
    typedSearchAttributes: { getAll: () => [] },
    raw: {
      pendingActivities: [
        {
          activityId: '2',
          state,
          attempt: 2,
          lastStartedTime: ts(t0 + 10_000),
          lastHeartbeatTime: ts(t0 + 14_000),
          heartbeatDetails: p({ disk: 2000, bytesDone: 32 * MiB, bytesTotal: 64 * MiB, bytesRead: 16 * MiB, bytesWritten: 16 * MiB }),
          lastFailure: { message: 'connection reset by the source' },
        },
      ],
    },
  } as unknown as WorkflowExecutionDescription;
  return buildRecord(description, [history], defaultPayloadConverter);
}

describe('a disk whose copy is being retried', () => {
  it('is copying, with progress, rate and ETA, once the next attempt has started', () => {
    const rec = recordWith(temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED);
    expect(rec.activities.find((a) => a.type === 'exportDisk')!.pending!.state).toBe('STARTED');
    const [disk] = migrationStatus(rec).disks;
    expect(disk).toMatchObject({ state: 'copying', attempt: 2, bytesDone: 32 * MiB, lastError: 'connection reset by the source' });
    expect(disk.progress).toEqual({ total: 64 * MiB, processed: 32 * MiB, remaining: 32 * MiB });
    // 16 MiB read in the 4 s since this attempt started: 4 MiB/s, 8 s left.
    expect(disk.rateBytesPerSecond).toBe(4 * MiB);
    expect(disk.etaSeconds).toBe(8);
  });

  it('is retrying while the failed attempt waits for the next one', () => {
    const [disk] = migrationStatus(recordWith(temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED)).disks;
    expect(disk).toMatchObject({ state: 'retrying', lastError: 'connection reset by the source' });
    expect(disk.rateBytesPerSecond).toBeUndefined();
  });
});
