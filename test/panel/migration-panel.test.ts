/**
 * The Migration Panel in a real browser (Debian's Chromium through playwright-core) against the real API, Temporal
 * dev server, worker and vSphere simulator: sign in with a token, the source and its inventory with verdicts, the
 * wizard (a Fail VM cannot be picked; the API's field reasons appear at the field), submit, and the job's page
 * following the event stream to Completed with every disk's bar at 100 %; a warm migration cut over from its page;
 * another project's migration not reachable by URL. Screenshots of the main pages are taken on the way
 * (VMIGRATE_PANEL_SCREENSHOTS=<dir> keeps them; the README's come from docs/panel).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { MIGRATION_EVENTS } from '../../shared/migration-stages';
import { startApi, waitForMigration, type TestApi } from '../harness/api-server';
import { createMigrationEnv, type MigrationEnv } from '../harness/migration-env';
import { launchUiBrowser, type UiBrowser } from '../harness/temporal-web-ui';

const MiB = 1024 * 1024;
const DISK = 48 * MiB;
const vm = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  guestId: 'debian11_64Guest',
  firmware: 'bios' as const,
  numCPUs: 1,
  memoryMB: 1024,
  powerState: 'poweredOff' as const,
  disks: [{ capacityMiB: DISK / MiB }, { capacityMiB: 16 }],
  nics: [{ network: 'VM Network' }],
  ...extra,
});

describe('the Migration Panel in a browser', () => {
  let env: MigrationEnv;
  let api: TestApi;
  let browser: UiBrowser;
  let page: Page;
  const problems: string[] = [];
  const shots = process.env.VMIGRATE_PANEL_SCREENSHOTS ?? mkdtempSync(path.join(os.tmpdir(), 'vmigrate-panel-'));
  const shoot = (name: string) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    // The panel as its sources are now (its API types from this API's OpenAPI document), built by its own script.
    execFileSync(process.execPath, ['--import', 'tsx', path.join(__dirname, '..', '..', 'tools', 'panel', 'build-panel.ts')], { stdio: 'pipe' });
    env = await createMigrationEnv('panel', { cbtWindowMiB: 16, vms: [vm('app-01'), vm('db-snap', { snapshots: 1 }), vm('web-warm', { powerState: 'poweredOn', disks: [{ capacityMiB: 32 }] })] }, { diskImages: { 'app-01': DISK, 'web-warm': 32 * MiB } });
    await env.startWorker();
    api = await startApi(env, { users: [{ name: 'mem', projects: ['p-panel'], role: 'member' }, { name: 'other', projects: ['p-other'], role: 'member' }] });
    browser = await launchUiBrowser();
    page = browser.page;
    // The panel must run clean: any console error or uncaught exception fails the test at the end.
    page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()} ${m.location().url}`));
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await api?.close();
    await env?.close();
  });

  /** Form controls on the page without an accessible name (a label, aria-label or text): there should be none. */
  const unlabelled = () =>
    page.evaluate(`[...document.querySelectorAll('input, select, textarea, button')]
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
      .map((el) => el.outerHTML.slice(0, 120))`) as Promise<string[]>;

  async function signInAs(user: string) {
    await page.goto(`${api.url}/`);
    if (await page.getByRole('button', { name: 'Sign out' }).isVisible()) await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API token').fill(api.tokens[user]!);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Migrations' }).waitFor();
  }

  it('is served by the API at / under a strict content security policy, and a wrong token is refused with the API\'s reason', async () => {
    const res = await page.goto(`${api.url}/`);
    expect(res!.status()).toBe(200);
    expect(res!.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.getByLabel('API token').fill('not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toMatch(/Sign-in failed/);
    await shoot('sign-in');
  });

  it('sign in → the source and its inventory with verdicts → the wizard (a Fail VM cannot be picked) → submit → the job follows its events to Completed with every bar at 100 %', async () => {
    await signInAs('mem');
    await expect(page.locator('header .project').textContent()).resolves.toBe('p-panel');

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Sources' }).click();
    const card = page.locator('[data-source="sim"]');
    await card.getByText('reachable').waitFor();
    await card.getByRole('link', { name: 'Inventory' }).click();
    await page.getByLabel('Volume type').fill('standard');
    const snapRow = page.locator('tr[data-vm="db-snap"]');
    await snapRow.getByText('Fail').waitFor();
    await expect(unlabelled()).resolves.toEqual([]);
    await expect(snapRow.textContent()).resolves.toContain('snapshots.exist');
    await shoot('inventory');

    await page.getByRole('link', { name: 'New Migration' }).first().click();
    // Step 1: cold from sim into p-panel, as chosen on the inventory page (kept for the tab).
    await expect(page.getByLabel('Volume type').inputValue()).resolves.toBe('standard');
    await page.getByRole('button', { name: 'Next', exact: true }).click();
    // Step 2: the Fail VM's box is disabled; app-01 is picked.
    await page.locator('tr[data-vm="db-snap"]').getByText('Fail').waitFor();
    await expect(page.getByLabel('Select db-snap').isDisabled()).resolves.toBe(true);
    await page.getByLabel('Select app-01').check();
    await expect(unlabelled()).resolves.toEqual([]);
    await shoot('wizard-vms');
    await page.getByRole('button', { name: 'Next', exact: true }).click();
    // Step 3: a bad instance name is the API's to refuse; it is shown at the field and the step is marked.
    // The target's flavors are offered (GET /targets/:name/choices); left empty, the smallest that fits.
    await expect(page.getByLabel('Flavor').locator('option').allTextContents()).resolves.toEqual(expect.arrayContaining(['the smallest that fits each VM', expect.stringMatching(/^m1\.small — 1 vCPU/)]));
    await page.getByLabel(/Instance name/).fill('bad name!');
    await expect(unlabelled()).resolves.toEqual([]);
    await page.getByRole('button', { name: 'Next', exact: true }).click();
    await page.locator('fieldset[data-vm="app-01"][data-source-network="VM Network"]').getByLabel('Target network').fill('tenant-net');
    await page.getByRole('button', { name: 'Next', exact: true }).click();
    await page.getByLabel('OS conversion').selectOption('skip');
    await expect(unlabelled()).resolves.toEqual([]);
    await page.getByRole('button', { name: 'Next', exact: true }).click();
    await expect(page.getByRole('alert').first().textContent()).resolves.toMatch(/must be 1-63 characters/);
    await page.getByRole('button', { name: 'Instance', exact: true }).click();
    await expect(page.locator('.field-error').textContent()).resolves.toMatch(/must be 1-63 characters/);
    // Back to fix it: nothing else was lost on the way.
    await page.getByLabel(/Instance name/).fill('app-01-kvm');
    await page.getByRole('button', { name: '6. Summary' }).click();
    const summary = page.locator('tr[data-vm="app-01"]');
    await summary.getByText('Pass').waitFor();
    await expect(summary.textContent()).resolves.toContain('VM Network → tenant-net');
    await expect(page.locator('.estimate').textContent()).resolves.toMatch(/\S/);
    await shoot('wizard-summary');
    await page.getByRole('button', { name: 'Submit' }).click();

    // The job's page: its id in the URL, events arriving, the bars at 100 %, Completed.
    await page.waitForURL(/#\/migrations\/mig-/);
    const id = decodeURIComponent(/#\/migrations\/([^/?]+)/.exec(page.url())![1]!);
    await page.locator('.badge', { hasText: 'Completed' }).waitFor({ timeout: 120_000 });
    await page.locator('[data-event="migration.completed"]').waitFor();
    const shown = await page.locator('[data-event]').evaluateAll((els) => els.map((e) => e.getAttribute('data-event')!));
    // The page shows the API's durable events, in the API's order.
    const fromApi = (await api.as('mem').get(`/migrations/${id}/events`)).data.events.filter((e: { live?: boolean }) => !e.live).map((e: { name: string }) => e.name);
    expect(shown).toEqual(fromApi);
    for (const name of ['migration.submitted', 'source.powered_off', 'export.started', 'write.started', 'finalize.completed', 'migration.completed']) expect(shown).toContain(name);
    expect(shown.indexOf('export.started')).toBeLessThan(shown.indexOf('finalize.completed'));
    expect(shown.every((n) => (MIGRATION_EVENTS as readonly string[]).includes(n))).toBe(true);
    const bars = await page.getByRole('progressbar').evaluateAll((els) => els.map((e) => e.getAttribute('aria-valuenow')));
    expect(bars).toEqual(['100', '100']);
    await expect(page.locator('.stage-done').count()).resolves.toBe(7);
    await expect(page.locator('.verified').count()).resolves.toBe(2);
    await shoot('migration-completed');

    // At a phone's width the page fits: nothing runs off to the side.
    await page.setViewportSize({ width: 390, height: 844 });
    await expect(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")).resolves.toBe(true);
    await shoot('migration-phone');
    await page.setViewportSize({ width: 1400, height: 900 });

    await page.getByRole('link', { name: '← Migrations' }).click();
    await page.locator(`a[href="#/migrations/${id}"]`).waitFor();
    await shoot('migrations');
  }, 300_000);

  it('a warm migration is cut over from its page: refused with the API\'s reason before Ready, accepted once Ready, then Completed', async () => {
    const submitted = await api.as('mem').post('/migrations', {
      kind: 'warm',
      warm: { syncIntervalSeconds: 2, syncsPerRun: 50 },
      // Held until started, so the page can be shown refusing a cutover before Ready.
      startReplication: false,
      guest: { convert: 'skip' },
      sourceId: 'sim',
      vm: { name: 'web-warm' },
      target: { project: 'p-panel', volumeType: 'standard', networks: [{ sourceNetwork: 'VM Network', targetNetwork: 'tenant-net' }] },
    });
    expect(submitted.status).toBe(202);
    const id = submitted.data.id as string;
    await page.goto(`${api.url}/#/migrations/${encodeURIComponent(id)}`);
    await page.getByRole('heading', { name: /web-warm/ }).waitFor();
    await page.getByRole('button', { name: 'Cut over' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toMatch(/Cut over failed.*cutover is possible only while it is Ready/);
    expect((await api.as('mem').post(`/migrations/${id}/start`, {})).status).toBe(202);
    // Ready, with at least one incremental sync after the full one: the chart has bars and a prediction.
    await waitForMigration(api.as('mem'), id, { done: (s) => s.stage === 'Ready' && (s.warm?.syncs?.length ?? 0) >= 3, timeoutMs: 120_000 });
    await page.locator('.sync-chart tbody tr').nth(2).waitFor({ timeout: 30_000 });
    await page.locator('.sync-chart polyline.predicted').waitFor();
    await shoot('warm-ready');
    await page.getByRole('button', { name: 'Cut over' }).click();
    await page.getByRole('status').filter({ hasText: 'Cut over: accepted' }).waitFor();
    await page.locator('.badge', { hasText: 'Completed' }).waitFor({ timeout: 120_000 });
    const cutover = (await api.as('mem').get(`/migrations/${id}/events`)).data.events.find((e: { name: string }) => e.name === 'cutover.requested');
    expect(cutover.data).toMatchObject({ via: 'update', actor: 'mem' });
    // Ended: nothing is left to cut over or cancel.
    await expect(page.getByRole('button', { name: 'Cut over' }).count()).resolves.toBe(0);
    await expect(page.getByRole('button', { name: 'Cancel' }).count()).resolves.toBe(0);
  }, 300_000);

  it("another project's migration is not reachable by URL: the API's 404 is shown as not found", async () => {
    const mine = (await api.as('mem').get('/migrations', { params: { project: 'p-panel' } })).data.migrations[0].id as string;
    await signInAs('other');
    await page.goto(`${api.url}/#/migrations/${encodeURIComponent(mine)}`);
    await page.getByRole('alert').getByText('Not found').waitFor();
    await expect(page.locator('main').textContent()).resolves.toContain(`No migration ${mine} in the projects you can see`);
    await expect(page.locator(`a[href="#/migrations/${mine}"]`).count()).resolves.toBe(0);
  });

  it('ran without console errors', () => {
    // The browser logs each answer of 400 and above as an error; those this test provoked are the API's answers the
    // panel showed (the refused token, the bad instance name, the cutover before Ready, another project's
    // migration), not the panel's errors.
    const provoked = [/status of 401 .*\/whoami$/, /status of 409 .*\/cutover$/, /status of 404 .*\/migrations\/[^/]+(\/events)?$/];
    const badRequests = problems.filter((p) => /status of 400 .*\/preflight$/.test(p));
    expect(badRequests).toHaveLength(1);
    expect(problems.filter((p) => !provoked.some((r) => r.test(p)) && !badRequests.includes(p))).toEqual([]);
  });
});
