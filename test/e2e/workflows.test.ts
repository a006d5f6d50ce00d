import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { approveSession, denySession, startSession } from '../../client/sessionClient.ts';
import type { SessionEvent } from '../../transport/messages.ts';
import { ofType } from '../fixtures/eventsOfType.ts';
import { startOtlpReceiver } from '../fixtures/otlpReceiver.ts';
import { executions, startProcessStack, type ProcessStack } from '../fixtures/processStack.ts';
import { eventually, processStartTimeoutMs, startTroupe, type TroupeProcess } from '../fixtures/troupeProcess.ts';

/**
 * The refund desk (agents/refundDesk.ts) across processes: an orchestrator, the db, calc, files and
 * refunds pools and the scripted model, each its own process. Every step of its scripts
 * (scriptedModel/scripts/refundDesk*.json) checks the exact tools the request offers, so a phase
 * offering one tool too many or too few fails the session with the model's 400.
 */
const happyTask = 'Refund request from Diego Lopez for order 1002: one of the two portable speakers arrived broken.';
const hastyTask = 'Please refund order 1003 right away: the sourdough baking book arrived with torn pages.';
const deniedTask = 'Refund request from Elena Fischer for order 1001: she changed her mind about the four cast-iron skillets.';

const moves = (events: SessionEvent[]) => ofType(events, 'workflow.transitioned').map((m) => `${m.trigger}:${m.to.join(' › ')}`);

async function startDesk(env: NodeJS.ProcessEnv = {}): Promise<{ stack: ProcessStack; refunds: TroupeProcess }> {
  const stack = await startProcessStack({ env });
  await Promise.all([stack.startWorker('db'), stack.startWorker('calc'), stack.startWorker('files')]);
  const refunds = await stack.startWorker('refunds');
  return { stack, refunds };
}

/** Runs a refund-desk session to its end, deciding each approval it asks for with `decide`. */
async function runDesk(stack: ProcessStack, task: string, decide: (sessionId: string, waiting: Extract<SessionEvent, { type: 'approval.requested' }>) => Promise<unknown>) {
  const run = await startSession(stack.client, { namespace: stack.namespace, task, agent: 'refund_desk' });
  const events: SessionEvent[] = [];
  for await (const event of run.events) {
    events.push(event);
    if (event.type === 'approval.requested') await decide(run.sessionId, event);
  }
  return { events, finished: await run.finished, sessionId: run.sessionId };
}

describe('the refund desk, phase by phase across processes', () => {
  let desk: Awaited<ReturnType<typeof startDesk>>;
  let otlp: Awaited<ReturnType<typeof startOtlpReceiver>>;
  beforeAll(async () => {
    otlp = await startOtlpReceiver();
    desk = await startDesk({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' });
  }, 120_000);
  afterAll(async () => {
    await desk?.stack.stop();
    await otlp?.close();
  });

  it('goes triage → investigate → propose → (approved) execute → report, offered exactly each phase’s tools', async () => {
    const { stack } = desk;
    const { events, finished } = await runDesk(stack, happyTask, async (sessionId, waiting) => {
      expect(waiting.calls).toEqual([{
        callId: 'next_phase:execute', tool: 'next_phase',
        arguments: { to: 'execute', reason: 'The proposal is in proposals/order-1002.md: refund 5900 cents for one broken speaker.' },
      }]);
      await approveSession(stack.client, sessionId, { namespace: stack.namespace, by: 'ana' });
    });
    expect(finished).toMatchObject({ status: 'completed', steps: 9 });
    expect(finished.output).toMatch(/^Dear Diego, we refunded 59\.00 for the broken portable speaker of order 1002 \(refund rf_[0-9a-f]{16}, 5900 cents\)\.$/);
    expect(ofType(events, 'session.started')[0]?.phases).toEqual(['triage']);
    expect(moves(events)).toEqual(['choice:investigate', 'choice:propose', 'approval:execute', 'tool:report']);
    expect(ofType(events, 'workflow.transitioned')[2]).toMatchObject({ from: ['propose'], to: ['execute'], trigger: 'approval', by: 'ana', turn: 7 });
    expect(ofType(events, 'approval.decided')).toMatchObject([{ decision: 'approved', by: 'ana', callIds: ['next_phase:execute'] }]);
    // next_phase is the session's own: it never went to a worker.
    expect(ofType(events, 'tool.call.started').map((e) => e.tool)).toEqual(['db_query', 'db_query', 'calc_evaluate', 'files_write', 'refunds_issue']);
    expect(JSON.parse(await readFile(join(stack.workspace, 'refunds', 'order-1002.json'), 'utf8'))).toMatchObject({ orderId: 1002, amountCents: 5900 });
    expect(await readFile(join(stack.workspace, 'proposals', 'order-1002.md'), 'utf8')).toContain('5900 cents');
    // Each turn's span and its model call's span carry the phase; each move is an event on the session's span, with its turn.
    const turnSpans = () => otlp.spans.filter((s) => s.traceId === finished.traceId && s.name.startsWith('turn ')).sort((a, b) => Number(a.attributes['troupe.turn']) - Number(b.attributes['troupe.turn']));
    await eventually('the turn spans exported', () => turnSpans().length === 9, 15_000);
    expect(turnSpans().map((s) => s.attributes['troupe.workflow.state'])).toEqual(['triage', 'triage', 'investigate', 'investigate', 'investigate', 'propose', 'propose', 'execute', 'report']);
    expect(otlp.spans.filter((s) => s.traceId === finished.traceId && s.name.startsWith('chat ')).every((s) => typeof s.attributes['troupe.workflow.state'] === 'string')).toBe(true);
    const sessionSpans = otlp.spans.filter((s) => s.traceId === finished.traceId && s.name === 'invoke_agent refund_desk');
    const moved = sessionSpans.flatMap((s) => s.events.filter((e) => e.name === 'workflow.transitioned').map((e) => `${String(e.attributes['troupe.turn'])}:${String(e.attributes['troupe.workflow.to'])}:${String(e.attributes['troupe.workflow.trigger'])}`));
    expect(moved).toEqual(['2:investigate:choice', '5:propose:choice', '7:execute:approval', '8:report:tool']);
  }, 90_000);

  it('refuses a model that skips a phase before anything reaches a worker, and it then goes the right way', async () => {
    const { stack, refunds } = desk;
    const refundsBefore = executions(stack.logsOf(refunds), 'refunds_issue');
    const { events, finished } = await runDesk(stack, hastyTask, (sessionId) => approveSession(stack.client, sessionId, { namespace: stack.namespace, by: 'ana' }));
    expect(finished).toMatchObject({ status: 'completed' });
    // Both calls were screened by the session itself, before triage: the model's repairs say why.
    expect(ofType(events, 'model.responded').slice(0, 2).map((e) => e.toolCalls.map((c) => c.name))).toEqual([['refunds_issue'], ['next_phase']]);
    expect(ofType(events, 'session.repair').map((r) => [r.turn, r.reason])).toEqual([
      [1, 'refunds_issue: FORBIDDEN (workflow_phase)'],
      [2, 'next_phase: INVALID_INPUT (workflow_phase)'],
    ]);
    // The only refund the refunds pool ever ran is the approved one, from the execute phase.
    const started = ofType(events, 'tool.call.started').filter((e) => e.tool === 'refunds_issue');
    expect(started.map((e) => e.turn)).toEqual([9]);
    expect(executions(stack.logsOf(refunds), 'refunds_issue')).toBe(refundsBefore + 1);
    expect(moves(events)).toEqual(['choice:investigate', 'choice:propose', 'approval:execute', 'tool:report']);
  }, 90_000);

  it('stays in propose when the person denies the move, tells the model why, and `troupe run` shows every phase', async () => {
    const { stack } = desk;
    const cli = startTroupe(['run', '--agent', 'refund_desk', deniedTask], stack.env);
    await eventually('the move waiting for approval', () => cli.output().includes('waiting for approval'), 60_000, [cli]);
    const sessionId = /▶ session (\S+)/.exec(cli.output())?.[1] as string;
    expect((await denySession(stack.client, sessionId, { namespace: stack.namespace, by: 'ana', reason: 'a change of mind is not refunded after 30 days' })).accepted).toBe(true);
    expect(await cli.exited).toBe(0);
    const output = cli.output();
    expect(output).toContain('◆ phase triage\n');
    expect(output).toContain('◆ phase investigate (from triage: the model moved on: Order 1001 exists: Elena Fischer\'s, shipped.)');
    expect(output).toContain('waiting for approval until');
    expect(output).toContain('next_phase {"to":"execute","reason":"The proposal is in proposals/order-1001.md: refund 16800 cents."} [next_phase:execute]');
    expect(output).toContain('✘ denied by ana: a change of mind is not refunded after 30 days');
    // The model read the denial: its next reply quotes it.
    expect(output).toContain('The person in charge did not approve it: ana did not approve moving to the phase');
    expect(output).toContain('◆ phase report (from propose: the model moved on: The refund was not approved.)');
    expect(output).not.toContain('◆ phase execute');
    expect(output).toContain('Dear Elena, we cannot refund order 1001');
    expect(existsSync(join(stack.workspace, 'refunds', 'order-1001.json'))).toBe(false);
  }, 90_000);
});

describe('an orchestrator killed mid-phase', () => {
  let desk: Awaited<ReturnType<typeof startDesk>> | undefined;
  let standby: TroupeProcess | undefined;
  afterEach(async () => {
    await standby?.stop();
    await desk?.stack.stop();
  });

  it('is resumed by another in the phase it was in, waiting for the same approval, and the work goes on from there', async () => {
    desk = await startDesk();
    const { stack, refunds } = desk;
    const first = stack.orchestrator;
    const { events, finished } = await runDesk(stack, happyTask, async (sessionId) => {
      if (standby) return await approveSession(stack.client, sessionId, { namespace: stack.namespace, by: 'ana' });
      // Parked in propose, its checkpoint stored: its host dies, and another takes over.
      await new Promise((r) => setTimeout(r, 300));
      first.child.kill('SIGKILL');
      standby = startTroupe(['orchestrator'], stack.env);
      await eventually('the second orchestrator ready', () => standby!.output().includes('orchestrator ready'), processStartTimeoutMs, [standby]);
      return undefined;
    });
    expect(await first.exited).toBe('SIGKILL');
    expect(ofType(events, 'session.resumed')).toMatchObject([{ state: '"awaiting_phase_approval"' }]);
    // Asked once by each host; approved once.
    expect(ofType(events, 'approval.requested').map((e) => e.calls[0]?.callId)).toEqual(['next_phase:execute', 'next_phase:execute']);
    expect(finished).toMatchObject({ status: 'completed' });
    expect(moves(events)).toEqual(['choice:investigate', 'choice:propose', 'approval:execute', 'tool:report']);
    expect(executions(stack.logsOf(refunds), 'refunds_issue')).toBe(1);
  }, 120_000);
});
