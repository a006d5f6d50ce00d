import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointStore } from '../../actors/durability/checkpointStore.ts';
import { ToolCatalog } from '../../actors/toolCalls/toolCatalog.ts';
import { approveSession, startSession, type ControlResult } from '../../client/sessionClient.ts';
import type { SessionEvent, SessionFinished } from '../../transport/messages.ts';
import { wireNames } from '../../transport/subjects.ts';
import { EffectLedger } from '../fixtures/ledger/effectLedger.ts';
import { startProcessStack, type ProcessStack } from '../fixtures/processStack.ts';
import { eventually, processStartTimeoutMs, startTroupe, type TroupeProcess } from '../fixtures/troupeProcess.ts';
import { ofType } from '../fixtures/eventsOfType.ts';
import { scoreCase } from '../../evaluation/caseScore.ts';
import { runEvalCases } from '../../evaluation/evalRunner.ts';
import { loadedCase } from '../evaluation/evalFixtures.ts';

/**
 * Each window in which a crash used to run a side effect twice (or lose a delegation), reproduced
 * with real processes, a real nats-server and a ledger outside Troupe that counts the effects.
 */

const ledgerModule = fileURLToPath(new URL('../fixtures/ledger/ledgerTools.ts', import.meta.url));
const ledgerAgents = fileURLToPath(new URL('../fixtures/agents/ledgerAgents.ts', import.meta.url));

type Relayed = Extract<SessionEvent, { type: 'specialist.event' }>;
/** The bookkeeper's answer quotes its recording and the auditor's answer, which quotes the audit entry: both took effect. */
function expectRecordedAndAudited(finished: SessionFinished, task: string): void {
  expect(finished.status, JSON.stringify(finished)).toBe('completed');
  expect(finished.output).toContain(`recorded ${task} / record; the auditor says: audited`);
}

/** How many times the auditor's entry for `task` took effect (its reference quotes the task). */
const audits = (task: string) => [...ledger.counts()].filter(([ref]) => ref.includes(task) && ref.endsWith('/ audit')).map(([, n]) => n);
const relayed = (events: SessionEvent[]) => ofType(events, 'specialist.event') as Relayed[];

let stack: ProcessStack;
let ledgerPath: string;
let ledger: EffectLedger;
const started: TroupeProcess[] = [];

beforeAll(async () => {
  ledgerPath = join(mkdtempSync(join(tmpdir(), 'troupe-ledger-')), 'effects.sqlite');
  ledger = new EffectLedger(ledgerPath);
  // Leases that would hold for ten minutes: every hand-over here (an orchestrator's, a specialist member's) rides on heartbeats.
  stack = await startProcessStack({ env: { TROUPE_AGENTS: ledgerAgents, TROUPE_DEFAULT_AGENT: 'bookkeeper', TROUPE_LEASE_TTL_MS: '600000', TROUPE_TEST_LEDGER: ledgerPath } });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  ledger?.close();
});

afterEach(async () => {
  for (const p of started.splice(0)) await p.stop();
});

function start(args: string[], env: NodeJS.ProcessEnv = {}): TroupeProcess {
  const p = startTroupe(args, { ...stack.env, ...env });
  started.push(p);
  return p;
}

async function ledgerWorker(env: NodeJS.ProcessEnv = {}): Promise<TroupeProcess> {
  const worker = await stack.startWorker('ledger', env, ['--module', ledgerModule]);
  started.push(worker);
  return worker;
}

async function auditors(count: number, env: NodeJS.ProcessEnv = {}): Promise<TroupeProcess[]> {
  const catalog = new ToolCatalog({ nats: stack.client, namespace: stack.namespace, quietPeriodMs: 100 });
  const before = new Set(catalog.get('delegate_auditor')?.instances ?? []);
  const members = Array.from({ length: count }, () => start(['worker', '--agent', 'auditor'], env));
  await eventually(`${count} auditor(s) discovered`, async () => {
    await catalog.refresh();
    return [...(catalog.get('delegate_auditor')?.instances ?? [])].filter((id) => !before.has(id)).length >= count;
  }, processStartTimeoutMs, members);
  catalog.stop();
  return members;
}

/** Runs a session, calling `onEvent` with each event as it arrives, and returns them all with the end. */
async function run(task: string, onEvent: (event: SessionEvent) => void | Promise<void> = () => {}): Promise<{ events: SessionEvent[]; finished: SessionFinished }> {
  const session = await startSession(stack.client, { namespace: stack.namespace, task });
  const events: SessionEvent[] = [];
  for await (const event of session.events) {
    events.push(event);
    await onEvent(event);
  }
  return { events, finished: await session.finished };
}

/** The process hosting a session, from the owner its checkpoint names (`<host>:<pid>:<id>`). */
async function hostOf(bucket: string | undefined, sessionId: string, among: TroupeProcess[]): Promise<TroupeProcess> {
  const store = await CheckpointStore.open(stack.client, wireNames(stack.namespace), bucket ? { bucket } : {});
  let host: TroupeProcess | undefined;
  await eventually(`the host of ${sessionId}`, async () => {
    const owner = (await store.read(sessionId))?.checkpoint.owner;
    const pid = Number(owner?.split(':').at(-2));
    host = among.find((p) => p.child.pid === pid);
    return host !== undefined;
  }, 30_000);
  return host as TroupeProcess;
}

describe('a tool worker killed with SIGKILL mid-call', () => {
  it('after its effect and before recording it, with a tool that cannot look it up: the call is in doubt, not run again, and the session waits for a person with the evidence', async () => {
    const doomed = await ledgerWorker({ TROUPE_FAULTS: JSON.stringify({ ledger_post: [{ kind: 'crash', at: 'after_effect', times: 1 }] }) });
    const task = `[ledger-post] after-effect ${Date.now()}`;
    let replacement: Promise<TroupeProcess> | undefined;
    const { events, finished } = await run(task, (event) => {
      if (event.type === 'tool.call.started') replacement ??= doomed.exited.then(() => ledgerWorker());
    });
    expect(await doomed.exited).toBe('SIGKILL');
    await replacement;
    expect(finished).toMatchObject({ status: 'escalated', stopReason: expect.stringContaining('in doubt: ledger_post') });
    const [inDoubt] = ofType(events, 'tool.call.in_doubt');
    expect(inDoubt).toMatchObject({ tool: 'ledger_post', arguments: { ref: `${task} / post`, amount: 7 }, evidence: { heldBy: expect.any(String), startedAt: expect.any(String), fencingToken: expect.any(Number) } });
    expect(ledger.counts().get(`${task} / post`)).toBe(1);
  }, 120_000);

  it('after its effect and before recording it, with a tool that can look it up: reconcile settles it and the session completes', async () => {
    const doomed = await ledgerWorker({ TROUPE_FAULTS: JSON.stringify({ ledger_record: [{ kind: 'crash', at: 'after_effect', times: 1 }] }) });
    await auditors(1);
    const task = `[ledger-book] reconciled ${Date.now()}`;
    let replacement: Promise<TroupeProcess> | undefined;
    const { finished } = await run(task, (event) => {
      if (event.type === 'tool.call.started') replacement ??= doomed.exited.then(() => ledgerWorker());
    });
    await replacement;
    expectRecordedAndAudited(finished, task);
    expect(ledger.counts().get(`${task} / record`)).toBe(1);
    expect(audits(task)).toEqual([1]);
  }, 120_000);

  it('after claiming and before starting the handler: the claim is free once it expires, and the call runs exactly once elsewhere', async () => {
    const doomed = await ledgerWorker({ TROUPE_FAULTS: JSON.stringify({ ledger_post: [{ kind: 'crash', at: 'before_handler', times: 1 }] }) });
    const task = `[ledger-post] before-handler ${Date.now()}`;
    let replacement: Promise<TroupeProcess> | undefined;
    const { finished } = await run(task, (event) => {
      if (event.type === 'tool.call.started') replacement ??= doomed.exited.then(() => ledgerWorker());
    });
    await replacement;
    expect(await doomed.exited).toBe('SIGKILL');
    expect(finished).toMatchObject({ status: 'completed', output: `posted ${task} / post` });
    expect(ledger.counts().get(`${task} / post`)).toBe(1);
  }, 120_000);
});

describe('an eval of side-effecting calls whose worker was killed mid-call', () => {
  /** Runs `evalCase` as an eval would, with `crash` injected into a ledger worker that a fresh one replaces once it died; its one run, judged. */
  async function evalAfterCrash(crash: Record<string, unknown>, evalCase: ReturnType<typeof loadedCase>) {
    const doomed = await ledgerWorker({ TROUPE_FAULTS: JSON.stringify(crash) });
    let replacement: Promise<TroupeProcess> | undefined;
    const runs = await runEvalCases({
      nats: stack.client, namespace: stack.namespace, cases: [evalCase], concurrency: 1, sessionTimeoutMs: 90_000,
      onProgress: (progress) => {
        if (progress.kind === 'started') replacement ??= doomed.exited.then(() => ledgerWorker());
      },
    });
    await replacement;
    return scoreCase(evalCase, runs.get(evalCase.id) ?? []).runs[0];
  }

  it('reads how often each handler ran from the idempotency records: a reconcile that cannot find the effect runs the call twice, and `sideEffects: once` fails the case', async () => {
    const task = `[ledger-enter] twice ${Date.now()}`;
    const run = await evalAfterCrash({ ledger_enter: [{ kind: 'crash', at: 'after_effect', times: 1 }] }, loadedCase({ id: 'ledger-enter', task, expect: { output: { contains: 'entered' }, sideEffects: 'once' } }));
    expect(ledger.counts().get(`${task} / enter`)).toBe(2);
    expect(run).toMatchObject({ status: 'completed', toolCalls: [{ tool: 'ledger_enter', status: 'ok', handlerRuns: 2 }] });
    expect(run?.failures).toEqual(['sideEffects: ledger_enter ran 2 times for one call']);
  }, 120_000);

  it('counts a call taken over before its handler started as run once, and the case passes', async () => {
    const task = `[ledger-post] eval once ${Date.now()}`;
    const run = await evalAfterCrash({ ledger_post: [{ kind: 'crash', at: 'before_handler', times: 1 }] }, loadedCase({ id: 'ledger-post', task, expect: { output: { contains: 'posted' }, sideEffects: 'once' } }));
    expect(ledger.counts().get(`${task} / post`)).toBe(1);
    expect(run).toMatchObject({ passed: true, toolCalls: [{ tool: 'ledger_post', status: 'ok', handlerRuns: 1 }] });
  }, 120_000);
});

describe('a delegation whose processes die', () => {
  it('a specialist killed mid-session: another member of its pool resumes the same session, and the delegating session gets its answer', async () => {
    await ledgerWorker();
    const members = await auditors(2);
    const task = `[ledger-book-slow] specialist-killed ${Date.now()}`;
    let killed: TroupeProcess | undefined;
    const { events, finished } = await run(task, async (event) => {
      if (!killed && event.type === 'specialist.event' && event.event.type === 'tool.call.finished') {
        killed = await hostOf(wireNames(stack.namespace).buckets.specialistCheckpoints('auditor'), event.event.sessionId, members);
        killed.child.kill('SIGKILL');
      }
    });
    expect(await killed?.exited, JSON.stringify({ finished, events: events.map((e) => e.type === "specialist.event" ? `s:${e.event.type}` : e.type === "tool.call.rejected" ? JSON.stringify(e.failure) : e.type) })).toBe("SIGKILL");
    expectRecordedAndAudited(finished, task);
    const fromAuditor = relayed(events).map((e) => e.event);
    expect(new Set(fromAuditor.map((e) => e.sessionId)).size).toBe(1);
    expect(fromAuditor.filter((e) => e.type === 'session.started')).toHaveLength(1);
    expect(fromAuditor.filter((e) => e.type === 'session.resumed')).toHaveLength(1);
    expect(ledger.counts().get(`${task} / record`)).toBe(1);
    expect(audits(task)).toEqual([1]);
  }, 180_000);

  it('a specialist member killed while its session waits for approval: the approval sent at once is recorded, and the member that resumes the session applies it once', async () => {
    await ledgerWorker();
    const members = await auditors(2, { TROUPE_REQUIRE_APPROVAL: 'ledger_record' });
    const checkpoints = await CheckpointStore.open(stack.client, wireNames(stack.namespace), { bucket: wireNames(stack.namespace).buckets.specialistCheckpoints('auditor') });
    const task = `[ledger-book] specialist-approval ${Date.now()}`;
    let approval: Promise<ControlResult> | undefined;
    const { events, finished } = await run(task, async (event) => {
      if (approval || event.type !== 'specialist.event' || event.event.type !== 'approval.requested') return;
      const { sessionId } = event.event;
      await eventually('the specialist session parked, and its checkpoint saying so', async () => (await checkpoints.read(sessionId))?.checkpoint.status === 'parked', 30_000);
      (await hostOf(wireNames(stack.namespace).buckets.specialistCheckpoints('auditor'), sessionId, members)).child.kill('SIGKILL');
      approval = approveSession(stack.client, sessionId, { namespace: stack.namespace, by: 'audit lead', controlId: `approve-${sessionId}`, applyWithinMs: 0 });
    });
    expect(await approval).toMatchObject({ accepted: true });
    expectRecordedAndAudited(finished, task);
    const fromAuditor = relayed(events).map((e) => e.event);
    expect(fromAuditor.filter((e) => e.type === 'session.resumed')).toHaveLength(1);
    expect(fromAuditor.filter((e) => e.type === 'approval.decided')).toEqual([expect.objectContaining({ decision: 'approved', by: 'audit lead' })]);
    expect(fromAuditor.filter((e) => e.type === 'control.applied')).toEqual([expect.objectContaining({ accepted: true, control: 'session.approve' })]);
    expect(audits(task)).toEqual([1]);
  }, 180_000);

  it('the delegating orchestrator killed mid-delegation: the resumed session re-attaches to the same specialist session and rolls its spending up once', async () => {
    await ledgerWorker();
    await auditors(1);
    const standby = start(['orchestrator']);
    const task = `[ledger-book-slow] parent-killed ${Date.now()}`;
    let killed: TroupeProcess | undefined;
    const { events, finished } = await run(task, async (event) => {
      if (!killed && event.type === 'specialist.event' && event.event.type === 'tool.call.finished') {
        killed = await hostOf(undefined, event.sessionId, [stack.orchestrator, standby]);
        killed.child.kill('SIGKILL');
      }
    });
    expect(await killed?.exited, JSON.stringify({ finished, events: events.map((e) => e.type === "specialist.event" ? `s:${e.event.type}` : e.type === "tool.call.rejected" ? JSON.stringify(e.failure) : e.type) })).toBe("SIGKILL");
    expectRecordedAndAudited(finished, task);
    expect(ofType(events, 'session.resumed')).toHaveLength(1);
    const fromAuditor = relayed(events).map((e) => e.event);
    expect(fromAuditor.filter((e) => e.type === 'session.started')).toHaveLength(1);
    // The auditor's two model calls, counted once: its session is the only one the delegation ran.
    expect(finished.delegated).toMatchObject({ steps: 2, toolCalls: 1 });
    expect(ledger.counts().get(`${task} / record`)).toBe(1);
    expect(audits(task)).toEqual([1]);
  }, 180_000);
});
