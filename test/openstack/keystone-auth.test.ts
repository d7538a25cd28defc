import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../config/vmigrate-config';
import { KeystoneSession } from '../../targets/openstack/keystone-session';
import { OpenStackApi } from '../../targets/openstack/openstack-api';
import { OpenStackTargetProvider } from '../../targets/openstack/openstack-target-provider';
import type { OpenStackTargetConfig } from '../../targets/target-config';
import { TargetAuthError } from '../../targets/target-errors';
import { call, issueToken } from '../../tools/openstack-lab/rest';
import { createLabProject, type LabProject } from '../harness/openstack-lab';

/** Keystone v3 against the lab: project-scoped tokens, renewal before expiry, revocation, application credentials. */
describe('Keystone sessions of an OpenStack target', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-os-keystone-'));
  let p: LabProject;
  let other: LabProject;
  const configOf = (target: Record<string, unknown>) => parseConfig({ sources: {}, targets: { lab: target } }, dir).targets.lab as OpenStackTargetConfig;

  beforeAll(async () => {
    p = await createLabProject('keystone', dir);
    other = await createLabProject('keystone-other', dir);
  }, 600_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('a token scoped to the project, renewed before it expires, and issued again when revoked early', async () => {
    let clock = Date.now();
    const session = new KeystoneSession(configOf(p.targetConfig()), () => clock);
    const first = await session.token(p.projectName);
    expect(first.projectId).toBe(p.projectId);
    expect((await session.token(p.projectName)).token).toBe(first.token);

    // Five minutes before expiry (or later) a call gets a new token, before the old one can fail it.
    clock = first.expiresAt - 4 * 60_000;
    const renewed = await session.token(p.projectName);
    expect(renewed.token).not.toBe(first.token);
    expect(renewed.expiresAt).toBeGreaterThan(first.expiresAt - 60_000);

    // Revoked by Keystone (an admin, a password change): the next call is refused once, then issued a new token.
    const admin = await issueToken(p.lab.authUrl, p.lab.admin);
    await call(admin.id, 'DELETE', `${p.lab.authUrl}/auth/tokens`, undefined, { expect: [204], headers: { 'x-subject-token': renewed.token } });
    const api = new OpenStackApi(session, p.projectName, 'compute');
    const { body } = await api.call<{ flavors: unknown[] }>('GET', '/flavors', { what: 'listing flavors' });
    expect(body.flavors.length).toBeGreaterThan(0);
    expect((await session.token(p.projectName)).token).not.toBe(renewed.token);

    // A project the user has no role in: refused, saying what to check.
    await expect(session.token(other.projectName)).rejects.toThrow(
      new RegExp(`refused the target's credentials for project '${other.projectName}'.*that the user has a role in that project`),
    );
  }, 120_000);

  test('an application credential serves its own project and refuses any other', async () => {
    const member = await issueToken(p.lab.authUrl, { username: p.username, password: p.password, projectName: p.projectName });
    const userId = member.body.token.user.id;
    const cred = await call<{ application_credential: { id: string; secret: string } }>(member.id, 'POST', `${p.lab.authUrl}/users/${userId}/application_credentials`, {
      application_credential: { name: `vmigrate-${Date.now()}` },
    });
    const secretFile = path.join(dir, 'appcred.secret');
    writeFileSync(secretFile, cred.application_credential.secret, { mode: 0o600 });
    const target = { ...p.targetConfig(), auth: { method: 'application-credential', id: cred.application_credential.id, secret: { file: secretFile } } };
    const provider = new OpenStackTargetProvider({ name: 'lab', config: configOf(target), workDir: dir });

    expect((await provider.listFlavors(p.projectName)).map((f) => f.name)).toEqual(expect.arrayContaining(['m1.tiny', 'm1.small']));
    // By id as well as by name.
    expect((await provider.listFlavors(p.projectId)).length).toBeGreaterThan(0);
    const refused = provider.listFlavors(other.projectName);
    await expect(refused).rejects.toBeInstanceOf(TargetAuthError);
    await expect(refused).rejects.toThrow(`the target's application credential is for project '${p.projectName}' (${p.projectId}), not '${other.projectName}'`);
  }, 120_000);
});
