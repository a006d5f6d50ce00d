import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Orchestrator } from '../../actors/orchestrator/orchestrator.ts';
import { startWorker, type ToolWorker } from '../../actors/worker/toolWorker.ts';
import { assistantAgent } from '../../agents/assistant.ts';
import { refundDeskAgent } from '../../agents/refundDesk.ts';
import { interruptSession, startSession, type SessionRun } from '../../client/sessionClient.ts';
import { startConsoleServer, type ConsoleServer } from '../../console/server/consoleServer.ts';
import { exampleDomains } from '../../domains/exampleDomains.ts';
import { filesTools } from '../../domains/files/filesTools.ts';
import { silentLogger } from '../../observability/logger.ts';
import type { NatsServerProcess } from '../../testing/natsServer.ts';
import { ensureConsoleAppBuilt } from '../fixtures/consoleApp.ts';
import { startInProcessStack, type InProcessStack } from '../fixtures/inProcessStack.ts';
import { gatedLedgerAppend, slowWait, vaultTool } from '../fixtures/testTools.ts';

// Where to keep screenshots of the pages (the README's come from here): set to a folder to keep them.
const screenshotsDir = process.env.TROUPE_CONSOLE_SCREENSHOTS;
// The default assistant for the other sessions, and the refund desk for one with a workflow.
const agents = [assistantAgent, refundDeskAgent];

/**
 * The operator console in a real browser (Debian's Chromium through playwright-core) against a real
 * stack: a person sees sessions appear, opens one, watches its statechart, and steers it.
 */
describe('the operator console in a browser', () => {
  let stack: InProcessStack;
  let nc: NatsConnection;
  let orchestrator: Orchestrator;
  let server: ConsoleServer;
  let browser: Browser;
  let natsAfterRestart: NatsServerProcess | undefined;
  const workers: ToolWorker[] = [];
  // Holds turn 3 until the person's interrupt is in, so the session cannot finish before it lands.
  const { tool: ledgerAppend, open: openLedger } = gatedLedgerAppend();

  beforeAll(async () => {
    ensureConsoleAppBuilt();
    stack = await startInProcessStack();
    nc = await stack.connection('person');
    await writeFile(join(stack.workspace, 'existing.bin'), 'the original');
    const { workspace } = stack;
    // The refund desk's pools too (db, calc, refunds; files above), for the session with a workflow.
    for (const [domain, tools] of [
      ['vault', [vaultTool()]], ['slow', [slowWait]], ['files', filesTools({ workspace })], ['ledger', [ledgerAppend]],
      ['db', exampleDomains.db({ workspace })], ['calc', exampleDomains.calc({ workspace })], ['refunds', exampleDomains.refunds({ workspace })],
    ] as const) {
      workers.push(await startWorker({ namespace: stack.namespace, domain, tools: [...tools], nats: await stack.connection(`worker-${domain}`) }));
    }
    orchestrator = await stack.startOrchestrator({ agents });
    server = await startConsoleServer({ nc: await stack.connection('console'), namespace: stack.namespace, port: 0, logger: silentLogger(), jaegerUrl: 'http://localhost:16686' });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    for (const worker of workers) await worker.stop().catch(() => undefined);
    await stack?.stop();
    await natsAfterRestart?.stop();
  });

  async function openPage(hash = '#/'): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    // Anything the page logs as an error, or fails to load, fails the test where it is asserted.
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(String(error)));
    page.on('console', (message) => void (message.type() === 'error' && !/Failed to load resource|ERR_CONNECTION|EventSource/.test(message.text()) && problems.push(message.text())));
    (page as Page & { problems?: string[] }).problems = problems;
    await page.goto(new URL(hash, server.url).toString());
    return page;
  }
  const problemsOf = (page: Page) => (page as Page & { problems?: string[] }).problems ?? [];
  const screenshot = async (page: Page, name: string) => {
    if (screenshotsDir) await page.screenshot({ path: join(screenshotsDir, `${name}.png`), fullPage: false });
  };
  const untilEvent = async (run: SessionRun, type: string) => {
    for await (const event of run.events) if (event.type === type) return event;
    throw new Error(`the session ended without ${type}`);
  };

  it('shows a session waiting for approval, its statechart with awaiting approval lit, and completes it once approved on the page', async () => {
    const page = await openPage();
    const run = await startSession(nc, { namespace: stack.namespace, task: 'Please open the vault.' });
    const row = page.locator(`[data-testid="session-row"][data-session-id="${run.sessionId}"]`);
    await row.waitFor();
    await expect.poll(() => row.locator('[data-testid="approval-badge"]').count(), { timeout: 30_000 }).toBe(1);
    await screenshot(page, 'sessions');
    await row.click();
    await page.locator('[data-testid="statechart"]').waitFor();
    const active = page.locator('[data-testid="active-state"][data-state-id="session.awaiting_approval"]');
    await active.waitFor({ timeout: 30_000 });
    await expect.poll(() => page.locator('[data-testid="timeline-event"][data-event-type="approval.requested"]').count()).toBe(1);
    await expect.poll(() => page.locator('[data-testid="waiting-call"]').textContent()).toContain('vault_open');
    await screenshot(page, 'session-awaiting-approval');
    expect(await page.locator('[data-testid="workflow"]').count()).toBe(0);

    await page.locator('[data-testid="operator-name"]').fill('ada');
    await page.locator('[data-testid="approve-button"]').click();
    await expect.poll(() => page.locator('[data-testid="control-result"]').textContent(), { timeout: 15_000 }).toMatch(/applied/i);
    expect(await run.finished).toMatchObject({ status: 'completed' });
    await expect.poll(() => page.locator('[data-testid="session-status"]').textContent(), { timeout: 30_000 }).toMatch(/completed/);
    await page.locator('[data-testid="active-state"][data-state-id="session.completed"]').waitFor({ timeout: 30_000 });
    // Its cost, and who approved it.
    expect(await page.locator('main').textContent()).toMatch(/\$0\.\d{4}/);
    await expect.poll(() => page.locator('[data-testid="timeline-event"][data-event-type="approval.decided"]').textContent()).toMatch(/ada \(console\)/);
    await expect.poll(() => page.locator('[data-testid="timeline-event"][data-event-type="session.finished"]').count()).toBe(1);
    await screenshot(page, 'session-completed');
    expect(await page.locator('[data-testid="approve-button"]').count()).toBe(0);
    expect(problemsOf(page)).toEqual([]);
    await page.close();
  }, 120_000);

  it('draws a refund-desk session’s workflow with propose lit and the path taken, and completes it once the waiting move is approved on the page', async () => {
    const reason = 'The proposal is in proposals/order-1002.md: refund 5900 cents for one broken speaker.';
    const run = await startSession(nc, { namespace: stack.namespace, task: 'Refund request from Diego Lopez for order 1002: one of the two portable speakers arrived broken.', agent: 'refund_desk' });
    await untilEvent(run, 'approval.requested');
    const page = await openPage(`#/sessions/${run.sessionId}`);
    const workflow = page.locator('[data-testid="workflow-statechart"]');
    const phase = (state: string, id: string) => workflow.locator(`[data-testid="${state}"][data-state-id="${id}"]`);
    const arrows = async (kind: string) => (await workflow.locator(`[data-testid="${kind}"]`).evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-transition')))).sort();

    await phase('active-state', 'propose').waitFor({ timeout: 30_000 });
    await page.locator('[data-testid="statechart"] [data-testid="active-state"][data-state-id="session.awaiting_phase_approval"]').waitFor();
    expect(await phase('visited-state', 'triage').count()).toBe(1);
    expect(await phase('visited-state', 'investigate').count()).toBe(1);
    expect(await arrows('taken-transition')).toEqual(['investigate -> propose', 'triage -> investigate']);
    expect(await arrows('waiting-transition')).toEqual(['propose -> execute']);
    expect(await page.locator('[data-testid="phase-move"]').allTextContents()).toEqual([
      expect.stringMatching(/triage → investigate.*the model's choice.*Order 1002 exists/),
      expect.stringMatching(/investigate → propose.*the model's choice/),
    ]);
    expect(await page.locator('[data-testid="phase-move-waiting"]').textContent()).toContain(`propose → execute`);
    expect(await page.locator('[data-testid="workflow-waiting"]').textContent()).toMatch(/move to execute waits for approval/);
    // What waits, with where it goes and why; and the moves on the timeline.
    const card = page.locator('[data-testid="waiting-call"][data-call-id="next_phase:execute"]');
    await expect.poll(() => card.textContent()).toContain(reason);
    expect(await card.locator('[data-testid="waiting-exit-to"]').textContent()).toBe('execute');
    await expect.poll(() => page.locator('[data-testid="timeline-event"][data-event-type="workflow.transitioned"]').allTextContents()).toEqual([
      expect.stringContaining('triage → investigate'), expect.stringContaining('investigate → propose'),
    ]);
    expect(await page.locator('[data-testid="timeline-event"][data-event-type="session.started"]').textContent()).toMatch(/in phase triage of its workflow/);
    await screenshot(page, 'session-workflow');

    await page.locator('[data-testid="operator-name"]').fill('ana');
    await card.locator('[data-testid="approve-button"]').click();
    await expect.poll(() => page.locator('[data-testid="control-result"]').textContent(), { timeout: 15_000 }).toMatch(/applied/i);
    expect(await run.finished).toMatchObject({ status: 'completed' });
    await phase('active-state', 'report').waitFor({ timeout: 30_000 });
    await expect.poll(() => arrows('taken-transition')).toEqual(['execute -> report', 'investigate -> propose', 'propose -> execute', 'triage -> investigate']);
    expect(await arrows('waiting-transition')).toEqual([]);
    await expect.poll(() => page.locator('[data-testid="timeline-event"][data-event-type="workflow.transitioned"]').allTextContents()).toEqual([
      expect.stringContaining('triage → investigate'), expect.stringContaining('investigate → propose'),
      expect.stringMatching(/propose → execute.*approved by ana \(console\)/), expect.stringMatching(/execute → report.*refunds_issue succeeded/),
    ]);
    expect(JSON.parse(await readFile(join(stack.workspace, 'refunds', 'order-1002.json'), 'utf8'))).toMatchObject({ orderId: 1002, amountCents: 5900 });
    await screenshot(page, 'session-workflow-completed');
    expect(problemsOf(page)).toEqual([]);
    await page.close();
  }, 120_000);

  it('cancels a running session from the page, after asking', async () => {
    const run = await startSession(nc, { namespace: stack.namespace, task: 'Please take a very long step.' });
    await untilEvent(run, 'tool.call.started');
    const page = await openPage(`#/sessions/${run.sessionId}`);
    await page.locator('[data-testid="cancel-button"]').click();
    await page.locator('[data-testid="cancel-confirmation"]').waitFor();
    await page.locator('[data-testid="cancel-reason"]').fill('taking too long');
    await page.locator('[data-testid="confirm-cancel-button"]').click();
    expect(await run.finished).toMatchObject({ status: 'cancelled' });
    await expect.poll(() => page.locator('[data-testid="session-status"]').textContent(), { timeout: 30_000 }).toMatch(/cancelled/);
    await page.locator('[data-testid="active-state"][data-state-id="session.cancelled"]').waitFor({ timeout: 30_000 });
    expect(problemsOf(page)).toEqual([]);
    await page.close();
  }, 120_000);

  it('rolls a paused session back from the page, showing the plan first', async () => {
    const run = await startSession(nc, { namespace: stack.namespace, task: 'Please edit some files.' });
    for await (const event of run.events) {
      if (event.type === 'turn.started' && event.turn === 3) {
        expect(await interruptSession(nc, run.sessionId, { namespace: stack.namespace })).toMatchObject({ accepted: true });
        openLedger();
      }
      if (event.type === 'session.interrupted') break;
    }
    expect(await readFile(join(stack.workspace, 'existing.bin'), 'utf8')).toBe('overwritten');
    const page = await openPage(`#/sessions/${run.sessionId}`);
    await page.locator('[data-testid="active-state"][data-state-id="session.interrupted"]').waitFor({ timeout: 30_000 });
    await page.locator('[data-testid="rollback-turn"]').fill('0');
    await page.locator('[data-testid="rollback-plan-button"]').click();
    await page.locator('[data-testid="rollback-plan"]').waitFor();
    const steps = await page.locator('[data-testid="rollback-step"]').allTextContents();
    expect(steps).toHaveLength(4);
    expect(steps[0]).toMatch(/ledger_append/);
    expect(steps.join('\n')).toMatch(/files_write/);
    // Nothing is undone by looking at the plan.
    expect(await readFile(join(stack.workspace, 'existing.bin'), 'utf8')).toBe('overwritten');
    await screenshot(page, 'session-rollback-plan');
    await page.locator('[data-testid="rollback-confirm-button"]').click();
    await expect.poll(() => page.locator('[data-testid="rollback-result"]').textContent(), { timeout: 30_000 }).toMatch(/undone/);
    expect(await readFile(join(stack.workspace, 'existing.bin'), 'utf8')).toBe('the original');
    expect(existsSync(join(stack.workspace, 'notes/new.txt'))).toBe(false);
    await expect.poll(() => page.locator('[data-testid="timeline-event"][data-event-type="session.rolled_back"]').count(), { timeout: 15_000 }).toBe(1);
    expect(problemsOf(page)).toEqual([]);
    await page.close();
    await interruptSession(nc, run.sessionId, { namespace: stack.namespace });
  }, 120_000);

  it('keeps working across an orchestrator restart: the session waits again and is approved from the same page', async () => {
    const run = await startSession(nc, { namespace: stack.namespace, task: 'Please open the vault.' });
    await untilEvent(run, 'approval.requested');
    const page = await openPage(`#/sessions/${run.sessionId}`);
    await page.locator('[data-testid="active-state"][data-state-id="session.awaiting_approval"]').waitFor({ timeout: 30_000 });
    await orchestrator.stop({ graceMs: 0 });
    orchestrator = await stack.startOrchestrator({ agents });
    await expect.poll(() => page.locator('[data-testid="timeline-event"][data-event-type="session.resumed"]').count(), { timeout: 60_000 }).toBe(1);
    await page.locator('[data-testid="approve-button"]').click();
    expect(await run.finished).toMatchObject({ status: 'completed' });
    await expect.poll(() => page.locator('[data-testid="session-status"]').textContent(), { timeout: 30_000 }).toMatch(/completed/);
    expect(problemsOf(page)).toEqual([]);
    await page.close();
  }, 120_000);

  it('says so on the page for an unknown session, for a finished one, and lists the pools', async () => {
    const page = await openPage('#/sessions/no-such-session');
    await expect.poll(() => page.locator('main').textContent(), { timeout: 15_000 }).toMatch(/no session no-such-session/i);
    await page.goto(new URL('#/pools', server.url).toString());
    await expect.poll(() => page.locator('[data-testid="pool-row"]').allTextContents(), { timeout: 15_000 }).toEqual(expect.arrayContaining([expect.stringContaining('vault_open')]));
    await screenshot(page, 'pools');
    await page.close();
  }, 120_000);

  it('shows a dropped NATS connection on the page, and recovers when NATS is back', async () => {
    const page = await openPage();
    await expect.poll(() => page.locator('[data-testid="nats-state"]').textContent(), { timeout: 15_000 }).toMatch(/connected/);
    // Stopped and started again on the same port and store, as after a NATS restart.
    const restarting = stack.natsServer.restart();
    await expect.poll(() => page.locator('[data-testid="nats-state"]').textContent(), { timeout: 30_000 }).toMatch(/reconnecting|lost|closed/i);
    natsAfterRestart = await restarting;
    await expect.poll(() => page.locator('[data-testid="nats-state"]').textContent(), { timeout: 60_000 }).toMatch(/^\s*(NATS\s*)?connected/i);
    expect(await page.locator('[data-testid="session-row"]').count()).toBeGreaterThan(0);
    await page.close();
  }, 120_000);
});
