import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';

/**
 * Drives the real Temporal Web UI (the one the Temporal CLI dev server embeds, UI v2.54.1 with CLI 1.9.1) in Debian's
 * headless Chromium through playwright-core, the way an operator would: workflow list → the workflow → More Actions →
 * Send a Signal. Playwright's own browser downloads are never used (they cannot work here): scripts/setup.sh
 * installs the `chromium` Debian package.
 *
 * Selectors were taken from the served DOM of that UI version and are, in order of preference, data-testid
 * attributes, ARIA roles with accessible names, and labels:
 *   list page      [data-testid=workflows-summary-configurable-table-row] → link named <workflowId>
 *   workflow page  [data-testid=workflow-id-heading], button "More Actions", menuitem "Send a Signal"
 *   signal dialog  dialog[open][data-testid=signal-confirmation-modal] (the page holds two copies; only one is open),
 *                  [data-testid=signal-select-button] → option "<name> <description>" or "Custom",
 *                  [data-testid=signal-name] (the custom name input), textbox "Data" (a CodeMirror editor),
 *                  [data-testid=confirm-modal-button] ("Submit")
 *   confirmation   the toast "Workflow signaled." in [data-testid=toast-live-region-polite]
 */

/** URL of the Web UI of the jest run's Temporal server (test/harness/global-setup.ts), or undefined if it has none. */
export function testTemporalUiUrl(): string | undefined {
  return process.env.VMIGRATE_TEST_TEMPORAL_UI_URL || undefined;
}

/** Debian's Chromium (VMIGRATE_CHROMIUM_PATH overrides). */
export function chromiumPath(): string {
  const p = process.env.VMIGRATE_CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(p)) throw new Error(`Chromium not found at ${p}; run \`npm run setup\` (it installs Debian's chromium) or set VMIGRATE_CHROMIUM_PATH`);
  return p;
}

/**
 * Without the background-networking switches Chromium keeps trying to reach Google services, and this closed network
 * refuses those connections. Playwright adds most of them itself; they are listed here so the intent does not depend
 * on Playwright's defaults.
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
] as const;

export interface UiBrowser {
  context: BrowserContext;
  page: Page;
  /** Closes the browser and removes its profile directory. */
  close(): Promise<void>;
}

/** Launches headless Chromium with a fresh profile (--user-data-dir, which Playwright sets from launchPersistentContext). */
export async function launchUiBrowser(): Promise<UiBrowser> {
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'vmigrate-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath(),
      headless: true,
      args: [...CHROMIUM_ARGS],
      viewport: { width: 1400, height: 900 },
      timeout: 30_000,
    });
  } catch (err) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw err;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close().catch(() => undefined);
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

export interface SignalFromWebUiOptions {
  /** Base URL of the Web UI, e.g. http://127.0.0.1:8233 (see testTemporalUiUrl()). */
  uiUrl: string;
  namespace: string;
  workflowId: string;
  signalName: string;
  /** The Signal's single argument, sent as JSON (json/plain); undefined sends no input. */
  input?: unknown;
  /** Where to save a screenshot: always on failure (a temp path if omitted), on success only when given. The page's
   * text goes beside it as .txt. */
  screenshotPath?: string;
  /**
   * How to pick the Signal name: 'list' requires it in the dialog's dropdown (signal definitions from the
   * `__temporal_workflow_metadata` query: needs a running worker and handlers with a `description`), 'custom' types
   * it in, 'auto' (default) uses the dropdown entry when it appears and types it in otherwise.
   */
  signalNameFrom?: 'auto' | 'list' | 'custom';
  /** Overall limit, default 90 s. */
  timeoutMs?: number;
  /** Called as each step starts, with the milliseconds since the call began (for timing and debugging). */
  onStep?: (step: string, elapsedMs: number) => void;
}

/**
 * Sends a Signal to the newest running execution of `workflowId` through the Web UI and waits for the UI to confirm
 * it ("Workflow signaled."). Throws, with a screenshot and the page's text saved, if any step fails.
 */
export async function signalFromWebUi(opts: SignalFromWebUiOptions): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 90_000;
  const deadline = Date.now() + timeoutMs;
  const remaining = () => Math.max(1, deadline - Date.now());
  const nameFrom = opts.signalNameFrom ?? 'auto';
  const base = opts.uiUrl.replace(/\/+$/, '');
  const ns = encodeURIComponent(opts.namespace);
  const began = Date.now();
  let step = '';
  const enter = (next: string) => {
    step = next;
    opts.onStep?.(next, Date.now() - began);
  };
  enter('launching Chromium');
  let browser: UiBrowser | undefined;
  try {
    browser = await launchUiBrowser();
    const { page } = browser;
    page.setDefaultTimeout(Math.min(30_000, timeoutMs));

    // 1. The workflow list, filtered to this workflow's running executions: what typing the filter does in the UI.
    enter('opening the workflow list');
    const query = `WorkflowId="${opts.workflowId.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}" AND ExecutionStatus="Running"`;
    await page.goto(`${base}/namespaces/${ns}/workflows?query=${encodeURIComponent(query)}`);
    const row = page
      .getByTestId('workflows-summary-configurable-table-row')
      .getByRole('link', { name: opts.workflowId, exact: true })
      .first();
    // Once the list has loaded (the count shows), refresh it like a user would until the row shows: the workflow may
    // have started after the page loaded, and visibility can lag a start by a moment.
    await page.getByTestId('workflow-count').waitFor({ timeout: remaining() });
    enter(`finding running workflow ${opts.workflowId} in the workflow list`);
    const refresh = page.getByRole('button', { name: 'Refresh' }).filter({ visible: true }).first();
    for (;;) {
      const shown = await row.waitFor({ timeout: Math.min(2_000, remaining()) }).then(
        () => true,
        () => false,
      );
      if (shown) break;
      if (remaining() < 3_000) throw new Error('the workflow is not listed as running (is it running, in this namespace?)');
      await refresh.click({ timeout: Math.min(5_000, remaining()) });
    }
    enter('opening the workflow');
    await row.click({ timeout: remaining() });
    await page.getByTestId('workflow-id-heading').filter({ hasText: opts.workflowId }).waitFor({ timeout: remaining() });

    // 2. More Actions → Send a Signal.
    enter('opening More Actions → Send a Signal');
    await page.getByRole('button', { name: 'More Actions' }).click({ timeout: remaining() });
    const item = page.getByRole('menuitem', { name: 'Send a Signal' });
    await item.waitFor({ timeout: remaining() });
    if ((await item.getAttribute('aria-disabled')) === 'true') {
      throw new Error('"Send a Signal" is disabled (workflow not running, or Signals/write actions disabled in the UI)');
    }
    await item.click({ timeout: remaining() });
    const dialog = page.locator('dialog[open][data-testid="signal-confirmation-modal"]');
    await dialog.waitFor({ timeout: remaining() });

    // 3. The Signal name: from the dropdown, or typed in as a custom name.
    enter(`choosing Signal ${opts.signalName}`);
    await chooseSignalName(dialog, opts.signalName, nameFrom, remaining);

    // 4. The input, as JSON in the "Data" editor.
    if (opts.input !== undefined) {
      enter('entering the JSON input');
      const json = JSON.stringify(opts.input);
      if (json === undefined) throw new Error('input is not JSON-serialisable');
      const editor = dialog.getByRole('textbox', { name: 'Data' });
      await editor.fill(json, { timeout: remaining() });
      const shown = await editor.innerText();
      let parsed: unknown;
      try {
        parsed = JSON.parse(shown);
      } catch {
        throw new Error(`the Data editor holds ${JSON.stringify(shown)}, not valid JSON`);
      }
      if (!isDeepStrictEqual(parsed, JSON.parse(json))) throw new Error(`the Data editor holds ${shown}, expected ${json}`);
      const plain = dialog.getByRole('radio', { name: 'json/plain' });
      if ((await plain.count()) > 0 && !(await plain.isChecked())) await plain.check({ timeout: remaining() });
    }

    // 5. Submit, and wait for the UI's verdict.
    enter('submitting');
    await dialog.getByTestId('confirm-modal-button').click({ timeout: remaining() });
    enter('waiting for the UI to confirm the Signal');
    await waitForSignalConfirmation(page, dialog, remaining);

    enter('done');
    if (opts.screenshotPath) await saveEvidence(page, opts.screenshotPath);
  } catch (err) {
    const shot = opts.screenshotPath ?? path.join(os.tmpdir(), 'vmigrate-web-ui', `signal-${safeName(opts.workflowId)}-${Date.now()}.png`);
    const saved = browser ? await saveEvidence(browser.page, shot).catch(() => undefined) : undefined;
    const where = saved ? `; screenshot ${saved.screenshot}, page text ${saved.text}` : '';
    const pageText = saved?.pageText ? `\n--- page text (start) ---\n${saved.pageText.slice(0, 1500)}` : '';
    throw new Error(
      `Sending Signal "${opts.signalName}" to workflow ${opts.workflowId} through the Web UI (${opts.uiUrl}) failed after ${Date.now() - began} ms while ${step}: ${
        err instanceof Error ? err.message.split('\n')[0] : String(err)
      }${where}${pageText}`,
      { cause: err },
    );
  } finally {
    await browser?.close();
  }
}

async function chooseSignalName(
  dialog: Locator,
  signalName: string,
  nameFrom: 'auto' | 'list' | 'custom',
  remaining: () => number,
): Promise<void> {
  const dropdown = dialog.getByTestId('signal-select-button');
  const nameInput = dialog.getByTestId('signal-name');
  // The dialog shows the dropdown when the workflow reported signal definitions, a plain name input otherwise (also
  // while the UI's metadata query is still out, so 'list' gives the dropdown a moment to replace the input).
  await dropdown.or(nameInput).first().waitFor({ timeout: remaining() });
  if (nameFrom === 'list') await dropdown.waitFor({ timeout: Math.min(10_000, remaining()) }).catch(() => undefined);
  if (await dropdown.isVisible()) {
    await dropdown.click({ timeout: remaining() });
    if (nameFrom !== 'custom') {
      // Each option reads "<name> <description>"; "Custom" is always first.
      const option = dialog.getByRole('option', { name: new RegExp(`^\\s*${escapeRegExp(signalName)}(\\s|$)`) });
      const listed = await option
        .first()
        .waitFor({ timeout: Math.min(nameFrom === 'list' ? 10_000 : 3_000, remaining()) })
        .then(() => true, () => false);
      if (listed) {
        await option.first().click({ timeout: remaining() });
        return;
      }
      if (nameFrom === 'list') {
        const offered = (await dialog.getByRole('option').allInnerTexts()).map((t) => t.split('\n')[0].trim());
        throw new Error(`the Signal dropdown does not list "${signalName}" (it offers: ${offered.join(', ') || 'nothing'})`);
      }
    }
    await dialog.getByRole('option', { name: /^\s*Custom/ }).click({ timeout: remaining() });
  } else if (nameFrom === 'list') {
    throw new Error('the dialog has no Signal dropdown (no signal definitions: is a worker running, do the handlers have descriptions?)');
  }
  await nameInput.fill(signalName, { timeout: remaining() });
}

async function waitForSignalConfirmation(page: Page, dialog: Locator, remaining: () => number): Promise<void> {
  const polite = page.getByTestId('toast-live-region-polite');
  const assertive = page.getByTestId('toast-live-region-assertive');
  // The dialog keeps itself open and shows a failed request's error in its alert paragraph (field errors in spans).
  const formError = dialog.locator('p[role="alert"], span[role="alert"]');
  for (;;) {
    const toasts = `${await polite.innerText().catch(() => '')}\n${await assertive.innerText().catch(() => '')}`;
    if (/workflow signaled/i.test(toasts)) return;
    const errors = (await formError.allInnerTexts().catch(() => [] as string[])).map((t) => t.trim()).filter(Boolean);
    if (errors.length) throw new Error(`the dialog reports: ${errors.join('; ')}`);
    if (remaining() <= 1) throw new Error(`no "Workflow signaled." toast appeared${toasts.trim() ? ` (toasts: ${toasts.trim()})` : ''}`);
    await page.waitForTimeout(Math.min(200, remaining()));
  }
}

async function saveEvidence(page: Page, screenshotPath: string): Promise<{ screenshot: string; text: string; pageText: string }> {
  mkdirSync(path.dirname(screenshotPath), { recursive: true });
  await page.screenshot({ path: screenshotPath, fullPage: true, timeout: 10_000 });
  const pageText = await page.locator('body').innerText({ timeout: 5_000 }).catch((e: Error) => `(page text unavailable: ${e.message})`);
  const text = screenshotPath.replace(/\.png$/i, '') + '.txt';
  writeFileSync(text, `${page.url()}\n\n${pageText}\n`);
  return { screenshot: screenshotPath, text, pageText };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80);
}
