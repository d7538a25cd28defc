import { ActivityFailure, ApplicationFailure, RetryState, TimeoutFailure } from '@temporalio/common';
import { hostTaskQueue } from '../../shared/task-queues';
import { hostUnavailableReason } from '../../workflows/worker-host';
import { sdkLogLevel } from '../../workers/sdk-log-levels';

const host = { hostId: 'host-a', taskQueue: 'vmigrate@host-a' };
const activityFailed = (cause: Error) => new ActivityFailure('activity failed', 'exportDisk', '7', RetryState.NON_RETRYABLE_FAILURE, 'wf', cause);

describe('worker host task queues', () => {
  test("a host's queue is the shared queue's name and the host id; bad ids are refused with the rule", () => {
    expect(hostTaskQueue('vmigrate', 'host-a')).toBe('vmigrate@host-a');
    expect(hostTaskQueue('vmigrate', 'worker-1.dc1.example.com')).toBe('vmigrate@worker-1.dc1.example.com');
    for (const bad of ['', '-lead', 'has space', 'a/b', 'x'.repeat(254)]) {
      expect(() => hostTaskQueue('vmigrate', bad)).toThrow(`a worker host id is 1-253 letters, digits, '.', '_' or '-' starting with a letter or digit (got '${bad}')`);
    }
  });

  test('a schedule-to-start timeout on the host queue becomes a reason naming the host and what to do', () => {
    const err = activityFailed(new TimeoutFailure('activity ScheduleToStart timeout', undefined, 'SCHEDULE_TO_START'));
    expect(hostUnavailableReason(err, host, { hostWaitSeconds: 90 })).toBe(
      "no worker on host host-a took the migration's volume work within 90 s; its volumes are on that host. " +
        'Start the worker there again (VMIGRATE_HOST_ID=host-a, task queue vmigrate@host-a), then retry the migration',
    );
    // Other failures keep their own message; without a claimed host there is nothing to say.
    expect(hostUnavailableReason(activityFailed(new TimeoutFailure('heartbeat', undefined, 'HEARTBEAT')), host, {})).toBeUndefined();
    expect(hostUnavailableReason(activityFailed(ApplicationFailure.create({ message: 'disk gone' })), host, {})).toBeUndefined();
    expect(hostUnavailableReason(err, undefined, {})).toBeUndefined();
  });

  test("the SDK's notices about roles with nothing to poll are debug lines; other warnings stay warnings", () => {
    expect(sdkLogLevel('WARN', 'No workflows registered, not polling for workflow tasks')).toBe('DEBUG');
    expect(sdkLogLevel('WARN', 'No activities registered, not polling for activity tasks')).toBe('DEBUG');
    expect(sdkLogLevel('WARN', 'gRPC call record_activity_task_heartbeat retried 5 times')).toBe('WARN');
  });
});
