/**
 * QEMU's migration job info as libvirt 9.0 prints it (`virsh domjobinfo --rawstats`), captured from a real
 * migration between the lab's two libvirt hosts (a 512 MiB guest, its 8 MiB disk copied, in its first memory pass).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseJobStats } from '../../live/libvirt-job-info';

describe('libvirt job info', () => {
  it('reads a running migration: memory and disk counters, its pass, the expected downtime', () => {
    const info = parseJobStats(readFileSync(path.join(__dirname, 'fixtures/domjobinfo-rawstats-running.txt'), 'utf8'));
    expect(info).toEqual({
      type: 'running',
      elapsedMs: 4221,
      data: { totalBytes: 545914880, processedBytes: 45526662, remainingBytes: 185073664 },
      memory: { totalBytes: 537526272, processedBytes: 37138054, remainingBytes: 185073664 },
      disk: { totalBytes: 8388608, processedBytes: 8388608, remainingBytes: 0 },
      dirtyRatePagesPerSecond: 0,
      pageSizeBytes: 4096,
      iteration: 1,
      expectedDowntimeMs: 300,
    });
  });

  it('reads an ended job: none, or a completed one with its total downtime and error', () => {
    expect(parseJobStats('Job type: 0\n\n')).toEqual({ type: 'none' });
    expect(parseJobStats('Job type: 3\n\ntime_elapsed: 612\ndowntime: 197\nmemory_total: 268435456\nmemory_processed: 84623360\nmemory_remaining: 0\n')).toEqual({
      type: 'completed',
      elapsedMs: 612,
      downtimeMs: 197,
      memory: { totalBytes: 268435456, processedBytes: 84623360, remainingBytes: 0 },
    });
    expect(parseJobStats('Job type: 4\n\nerrmsg: operation aborted: job \'migration out\' canceled by client\n')).toEqual({ type: 'failed', error: "operation aborted: job 'migration out' canceled by client" });
  });
});
