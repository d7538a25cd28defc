import { judgeSourceReadFailure } from '../../copy/source-fault-history';
import { SourceReadError } from '../../copy/source-reader';

const MiB = 1024 * 1024;
const failure = (offset: number) => new SourceReadError(offset, 2 * MiB, 5, 'NBD read failed: EIO (Input/output error)');

describe('when source read failures stop being worth retrying', () => {
  test('three attempts in a row that get no further are permanent; the message says where and why', () => {
    const first = judgeSourceReadFailure(undefined, failure(40 * MiB), 0, 40 * MiB, 'disk 2000 (db.vmdk)');
    expect(first).toMatchObject({ permanent: false, history: { attempts: 1, watermark: 40 * MiB, offset: 40 * MiB } });
    expect(first.message).toMatch(/^disk 2000 \(db\.vmdk\): source read at offset 41943040 .* \(attempt 1 of 3 without progress before giving up\)$/);
    const second = judgeSourceReadFailure(first.history, failure(40 * MiB), 40 * MiB, 40 * MiB, 'disk 2000 (db.vmdk)');
    expect(second).toMatchObject({ permanent: false, history: { attempts: 2 } });
    const third = judgeSourceReadFailure(second.history, failure(42 * MiB), 40 * MiB, 40 * MiB, 'disk 2000 (db.vmdk)');
    expect(third.permanent).toBe(true);
    expect(third.message).toBe(
      'disk 2000 (db.vmdk): the source failed the read at offset 44040192 on every try (5 per attempt) in 3 attempts that got no ' +
        'further than offset 41943040; the source says: NBD read failed: EIO (Input/output error). Check the source disk or ' +
        'datastore (a file or sectors that cannot be read), then retry the migration',
    );
  });

  test('a source that refuses every read from the start is permanent after three attempts too', () => {
    let history = judgeSourceReadFailure(undefined, failure(0), 0, 0, 'disk 1').history;
    history = judgeSourceReadFailure(history, failure(0), 0, 0, 'disk 1').history;
    expect(judgeSourceReadFailure(history, failure(0), 0, 0, 'disk 1').permanent).toBe(true);
  });

  test('an attempt that made progress starts the count again: a flaky source is never given up on', () => {
    const stuck = judgeSourceReadFailure(judgeSourceReadFailure(undefined, failure(8 * MiB), 0, 8 * MiB, 'd').history, failure(8 * MiB), 8 * MiB, 8 * MiB, 'd');
    expect(stuck.history.attempts).toBe(2);
    const moved = judgeSourceReadFailure(stuck.history, failure(300 * MiB), 8 * MiB, 298 * MiB, 'd');
    expect(moved).toMatchObject({ permanent: false, history: { attempts: 1, watermark: 298 * MiB } });
  });
});
