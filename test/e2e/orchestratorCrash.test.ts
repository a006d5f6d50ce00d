import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { DiscardPolicy, jetstreamManager } from '@nats-io/jetstream';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CheckpointStore, checkpointSchemaVersion } from '../../actors/durability/checkpointStore.ts';
import { SessionLeases } from '../../actors/durability/sessionLeases.ts';
import { approveSession, attachSession, SessionRejectedError, startSession } from '../../client/sessionClient.ts';
import { decodeSessionEvents, type SessionEvent } from '../../transport/messages.ts';
import { executions, startProcessStack, type ProcessStack } from '../fixtures/processStack.ts';
import { eventually, processStartTimeoutMs, startTroupe, type TroupeProcess } from '../fixtures/troupeProcess.ts';
import { orchestratorAnswers } from '../../client/orchestratorProbe.ts';
import { wireNames } from '../../transport/subjects.ts';
import { ofType } from '../fixtures/eventsOfType.ts';

// Each test's deployment, and the second orchestrator it may start: stopped after it whatever happened.
let stack: ProcessStack | undefined;
let standby: TroupeProcess | undefined;
afterEach(async () => {
  await standby?.stop();
  await stack?.stop();
  stack = undefined;
  standby = undefined;
});

describe('an orchestrator killed with SIGKILL mid-session', () => {
  async function crashDuring(trigger: (event: SessionEvent) => boolean, workerEnv: NodeJS.ProcessEnv) {
    stack = await startProcessStack({ env: { TROUPE_TOOL_TIMEOUT_MS: '3000' } });
    const worker = await stack.startWorker('files', workerEnv);
    const first = stack.orchestrator;
    const run = await startSession(stack.client, { namespace: stack.namespace, task: 'Please survive an orchestrator crash.' });
    const events: SessionEvent[] = [];
    for await (const event of run.events) {
      events.push(event);
      if (trigger(event) && !standby) {
        // The session is checkpointed by now; kill its host and start another orchestrator.
        await new Promise((r) => setTimeout(r, 200));
        first.child.kill('SIGKILL');
        standby = startTroupe(['orchestrator'], stack.env);
      }
    }
    return { events, finished: await run.finished, worker, first };
  }

  it('while the model is being called: another orchestrator resumes it and it completes', async () => {
    const { events, finished, worker, first } = await crashDuring((e) => e.type === 'turn.started', {});
    expect(await first.exited).toBe('SIGKILL');
    expect(finished).toMatchObject({ status: 'completed', output: 'wrote 4 bytes' });
    expect(ofType(events, 'session.resumed')).toHaveLength(1);
    expect(executions(stack!.logsOf(worker), 'files_write')).toBe(1);
    expect(new Set(events.map((e) => e.seq)).size).toBe(events.length);
  }, 60_000);

  it('while a side-effecting tool runs: the call is re-sent with the same id and runs exactly once', async () => {
    const { events, finished, worker } = await crashDuring(
      (e) => e.type === 'tool.call.started',
      { TROUPE_FAULTS: JSON.stringify({ files_write: [{ kind: 'delay', delayMs: 1_500, times: 1 }] }) },
    );
    expect(finished).toMatchObject({ status: 'completed', output: 'wrote 4 bytes' });
    const [resumed] = ofType(events, 'session.resumed');
    const [started] = ofType(events, 'tool.call.started');
    expect(resumed?.resentToolCalls).toEqual([{ callId: started?.callId, tool: 'files_write' }]);
    expect(executions(stack!.logsOf(worker), 'files_write')).toBe(1);
    expect(await readFile(join(stack!.workspace, 'crash.txt'), 'utf8')).toBe('once');
    // The trace survives the crash: the resumed part reports the same trace id.
    expect(finished.traceId).toBe(ofType(events, 'session.started')[0]?.traceId);
  }, 60_000);
});

describe('an orchestrator killed while another runs', () => {
  // Issue 14: hand-over used to wait for each session's lease to lapse (6 s by default, plus a scan).
  it('hands its parked session to the other when its heartbeat lapses, long before the session\'s lease would', async () => {
    stack = await startProcessStack({ env: { TROUPE_REQUIRE_APPROVAL: 'files_write', TROUPE_LEASE_TTL_MS: '60000' } });
    await stack.startWorker('files');
    standby = startTroupe(['orchestrator'], stack.env);
    await eventually('the second orchestrator ready', () => standby!.output().includes('orchestrator ready'), processStartTimeoutMs, [standby]);
    const checkpoints = await CheckpointStore.open(stack.client, wireNames(stack.namespace));
    const run = await startSession(stack.client, { namespace: stack.namespace, task: '[parked-write] hand over' });
    await eventually('the session parked', async () => (await checkpoints.read(run.sessionId))?.checkpoint.status === 'parked', 30_000);
    const host = (await checkpoints.read(run.sessionId))!.checkpoint.owner;
    // Whichever orchestrator took it is killed; the other takes it over.
    const victim = stack.orchestrator.child.pid !== undefined && host.includes(`:${stack.orchestrator.child.pid}:`) ? stack.orchestrator : standby;
    const killedAt = Date.now();
    victim.child.kill('SIGKILL');
    await eventually('another orchestrator owning the session', async () => (await checkpoints.read(run.sessionId))?.checkpoint.owner !== host, 30_000);
    const handOverMs = Date.now() - killedAt;
    console.log(`hand-over after kill -9: ${handOverMs} ms (session lease 60 s)`);
    // Far inside the lease: the heartbeat freed it, not the lease's expiry.
    expect(handOverMs).toBeLessThan(20_000);
    expect(await approveSession(stack.client, run.sessionId, { namespace: stack.namespace, by: 'ops' })).toMatchObject({ status: 'applied' });
    expect(await run.finished).toMatchObject({ status: 'completed', output: 'finished' });
  }, 120_000);
});

describe('an orchestrator killed before it accepted a start', () => {
  // Regression (chaos run): a session was accepted before its first checkpoint was stored, and its
  // orchestrator died in between: the client had been told it started, and it ended `rejected`.
  it('never accepted it: the same start sent again runs once, its events numbered past the dead try\'s', async () => {
    stack = await startProcessStack({ env: { TROUPE_LEASE_TTL_MS: '1000', TROUPE_TOOL_TIMEOUT_MS: '3000' } });
    const worker = await stack.startWorker('files', {});
    const names = wireNames(stack.namespace);
    const jsm = await jetstreamManager(stack.client);
    // The checkpoint bucket takes no writes: the first orchestrator can never store the session.
    const bucket = `KV_${names.buckets.checkpoints}`;
    const { config } = await jsm.streams.info(bucket);
    await jsm.streams.update(bucket, { ...config, max_bytes: 1, discard: DiscardPolicy.New });
    const sessionId = randomUUID();
    const start = (acceptTimeoutMs = 2_000) => startSession(stack!.client, { namespace: stack!.namespace, sessionId, task: 'Please survive an orchestrator crash.', acceptTimeoutMs });

    const unanswered = await start().then(() => undefined, (error: unknown) => error);
    expect(unanswered).toBeInstanceOf(Error);
    expect(unanswered).not.toBeInstanceOf(SessionRejectedError);
    // Its orchestrator holds the id, unaccepted: the same start is told to come back, not that the session exists.
    await expect(start()).rejects.toMatchObject({ code: 'starting' });
    // It ran meanwhile (the model was asked), and said so on the session's stream; its call waits for the checkpoint.
    const deadTry = await jsm.streams.getMessage(names.streams.sessionEvents, { last_by_subj: names.subjects.sessionEvents(sessionId) });
    const deadTrySeq = deadTry ? (decodeSessionEvents(deadTry.data, 'the last event').events.at(-1)?.seq ?? -1) : -1;
    expect(deadTrySeq).toBeGreaterThanOrEqual(0);

    stack.orchestrator.child.kill('SIGKILL');
    await jsm.streams.update(bucket, config);
    standby = startTroupe(['orchestrator'], stack.env);
    await eventually('the standby orchestrator answering', () => orchestratorAnswers(stack!.client, { namespace: stack!.namespace }), processStartTimeoutMs, [standby]);
    // The client sends it again by itself while the dead orchestrator's lease lasts (`starting`), until it is accepted.
    const run = await start(30_000);
    expect(run.queued).toBe(false);
    const events: SessionEvent[] = [];
    for await (const event of run.events) events.push(event);
    expect(await run.finished).toMatchObject({ status: 'completed', output: 'wrote 4 bytes' });
    // Both tries are on the stream, the second numbered past the first: a follower drops neither.
    expect(ofType(events, 'session.started')).toHaveLength(2);
    expect(ofType(events, 'session.finished')[0]?.seq).toBeGreaterThan(deadTrySeq);
    expect(executions(stack.logsOf(worker), 'files_write')).toBe(1);
  }, 120_000);
});

describe('checkpoints that cannot be read', () => {
  it('refuses a checkpoint of an unknown schema version with a clear error, never misreading it', async () => {
    stack = await startProcessStack();
    const checkpoints = await CheckpointStore.open(stack.client, wireNames(stack.namespace));
    const leases = await SessionLeases.open(stack.client, wireNames(stack.namespace), { ttlMs: 1_000 });
    const future = checkpointSchemaVersion + 1;
    await checkpoints.putRaw('from-the-future', JSON.stringify({ schemaVersion: future, sessionId: 'from-the-future', snapshot: {} }));
    // An abandoned lease makes the session a candidate for resume.
    const lease = await leases.acquire('from-the-future', 'a-crashed-orchestrator');
    await lease?.release();
    const feed = await attachSession(stack.client, 'from-the-future', { namespace: stack.namespace });
    const finished = await feed.finished;
    expect(finished).toMatchObject({ status: 'failed', stopReason: 'rejected' });
    expect(finished.error).toBe(
      `The checkpoint of session from-the-future cannot be used: it was written in schema version ${future} by a newer Troupe; this one reads versions up to ${checkpointSchemaVersion}. Upgrade this orchestrator.`,
    );
  }, 60_000);
});

describe('an orchestrator killed while a session waits for approval', () => {
  it('is approved on the orchestrator that took over, and the call runs once', async () => {
    stack = await startProcessStack({ env: { TROUPE_REQUIRE_APPROVAL: 'files_write' } });
    const worker = await stack.startWorker('files');
    const run = await startSession(stack.client, { namespace: stack.namespace, task: 'Please survive an orchestrator crash.' });
    let requests = 0;
    for await (const event of run.events) {
      if (event.type !== 'approval.requested') continue;
      requests += 1;
      if (requests === 1) {
        stack.orchestrator.child.kill('SIGKILL');
        standby = startTroupe(['orchestrator'], stack.env);
      } else {
        expect(await approveSession(stack.client, run.sessionId, { namespace: stack.namespace, by: 'ops' })).toMatchObject({ accepted: true });
      }
    }
    expect(await run.finished).toMatchObject({ status: 'completed', output: 'wrote 4 bytes' });
    expect(requests).toBe(2);
    expect(executions(stack.logsOf(worker), 'files_write')).toBe(1);
  }, 60_000);
});
