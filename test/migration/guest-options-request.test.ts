import { createMigrationRequest } from '../../api/migration-request';
import { fieldErrors } from '../../api/problem';

const valid = {
  sourceId: 'sim',
  vm: { name: 'web01' },
  target: { project: 'proj1', flavor: 'm1.small', volumeType: 'standard', networks: [] },
};

/** POST /migrations's `guest` options: what a 400 says for each bad value (field + reason, like every other field). */
describe('guest options in a migration request', () => {
  test.each([
    [{ convert: 'auto' }],
    [{ convert: 'force', virtioWinIso: '/srv/iso/virtio-win-0.1.240.iso' }],
    [{ convert: 'skip', bootCheck: true }],
    [{ bootCheck: { timeoutSeconds: 600 } }],
  ])('accepts %j', (guest) => {
    const parsed = createMigrationRequest.safeParse({ ...valid, guest });
    expect(parsed.success).toBe(true);
    expect(parsed.data?.guest).toEqual(guest);
  });

  test.each([
    ['unknown mode', { convert: 'always' }, 'guest.convert', /auto|force|skip/],
    ['relative ISO path', { virtioWinIso: 'virtio-win.iso' }, 'guest.virtioWinIso', /absolute path/],
    ['ISO path climbing out', { virtioWinIso: '/srv/../etc/shadow' }, 'guest.virtioWinIso', /must not contain "\.\."/],
    ['boot check too short', { bootCheck: { timeoutSeconds: 1 } }, 'guest.bootCheck.timeoutSeconds', /must be at least 10 seconds/],
    ['boot check of the wrong type', { bootCheck: 'yes' }, 'guest.bootCheck', /must be true, false or \{"timeoutSeconds": n\}/],
    ['unknown guest option', { convertt: 'auto' }, 'guest', /unrecognized key/i],
  ])('refuses %s', (_label, guest, field, reason) => {
    const parsed = createMigrationRequest.safeParse({ ...valid, guest });
    expect(parsed.success).toBe(false);
    const issues = fieldErrors(parsed.error!);
    expect(issues).toEqual(expect.arrayContaining([expect.objectContaining({ field: expect.stringMatching(new RegExp(`^${field.replace('.', '\\.')}`)) })]));
    expect(issues.find((i) => i.field.startsWith(field))!.reason).toMatch(reason);
  });
});
