import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import fc from 'fast-check';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrchestrator, type Orchestrator } from '../../actors/orchestrator/orchestrator.ts';
import { CheckpointStore, type Checkpoint } from '../../actors/durability/checkpointStore.ts';
import { startSpecialistPool } from '../../actors/worker/specialistPool.ts';
import { startWorker, type ToolWorker } from '../../actors/worker/toolWorker.ts';
import { analystAgent } from '../../agents/analyst.ts';
import { assistantAgent } from '../../agents/assistant.ts';
import { tightenBudgets } from '../../machines/budgets.ts';
import { followSessionEvents } from '../../client/sessionEventFeed.ts';
import { cancelSession, startSession } from '../../client/sessionClient.ts';
import { calcTools } from '../../domains/calc/calcTools.ts';
import { filesTools } from '../../domains/files/filesTools.ts';
import { defaultPriceTable } from '../../models/priceTable.ts';
import { toolInputJsonSchema, type ToolDefinition } from '../../tools/defineTool.ts';
import { ToolFailureCode } from '../../tools/toolFailure.ts';
import {
  decodeSessionEvents, SessionControl, SessionControlReply, SessionEvent, SessionStartReply, SessionStartRequest, ToolReply, ToolRequest, ToolUndoRequest,
} from '../../transport/messages.ts';
import { isNoResponders } from '../../transport/natsConnection.ts';
import { toolMetadataKeys, toolPoolKind } from '../../transport/serviceProtocol.ts';
import { startServiceResponder } from '../../transport/serviceResponder.ts';
import { serviceDiscoverySubject, wireNames } from '../../transport/subjects.ts';
import { startInProcessStack, type InProcessStack } from '../fixtures/inProcessStack.ts';
import { eventually, startTroupe } from '../fixtures/troupeProcess.ts';
import {
  anyJson, delegationRequest, fuzzedBody, idLike, infoResponse, nastyString, poolAnnouncement, sessionControl, sessionStartRequest, toolCallCancellation,
  toolRequest, toolUndoRequest,
} from '../fixtures/wireArbitraries.ts';

/**
 * Property-based fuzzing of every message type against the real subscriber that reads it, over a
 * real nats-server: each gets a structured answer where the protocol has one, nothing crashes (an
 * uncaught exception or unhandled rejection in this process is a crash of the component that threw
 * it), and a session still completes at the end. Seeds are fixed, so a failure replays exactly.
 */

const decoder = new TextDecoder();
const counts = new Map<string, number>();
const count = (target: string) => counts.set(target, (counts.get(target) ?? 0) + 1);
const failureCodes = new Set<string>(Object.values(ToolFailureCode));
const checkpointOutcomes = { resumed: 0, refused: 0 };
const callIdPlaceholder = 'CALL-ID-OF-THE-REQUEST';

function decodeJson<T>(schema: { safeParse(value: unknown): { success: true; data: T } | { success: false } }, data: Uint8Array): T | undefined {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(data));
  } catch {
    return undefined;
  }
  const parsed = schema.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}

/** Whether the fuzzed body is a valid message of `schema` (as the receiver will judge it). */
const isValid = (schema: { safeParse(value: unknown): { success: boolean } }, body: Uint8Array) => decodeJson(schema as never, body) !== undefined;

describe('the wire under fuzzing', () => {
  let stack: InProcessStack;
  let nc: NatsConnection;
  let orchestrator: Orchestrator;
  const workers: ToolWorker[] = [];
  const crashes: unknown[] = [];
  const onCrash = (error: unknown) => crashes.push(error);
  let names: ReturnType<typeof wireNames>;

  const request = async (subject: string, body: Uint8Array, timeout = 5_000): Promise<Msg> => await nc.request(subject, body, { timeout });

  beforeAll(async () => {
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
    stack = await startInProcessStack();
    names = wireNames(stack.namespace);
    nc = await stack.connection('fuzzer');
    workers.push(await startWorker({ namespace: stack.namespace, domain: 'files', tools: filesTools({ workspace: stack.workspace }), nats: await stack.connection('files') }));
    workers.push(await startWorker({ namespace: stack.namespace, domain: 'calc', tools: calcTools(), nats: await stack.connection('calc') }));
    orchestrator = await startOrchestrator({
      nats: await stack.connection('orchestrator'),
      namespace: stack.namespace,
      model: { client: new OpenAI({ baseURL: stack.modelUrl, apiKey: 'test', maxRetries: 0 }), providerName: 'openai', prices: defaultPriceTable },
      defaultModel: 'scripted',
      agents: [assistantAgent],
      // Writes wait for a person, so a session parks where every control message means something.
      approvalPolicy: ({ tool }) => tool === 'files_write',
      // Short leases, and the resumer looking for orphaned checkpoints twice a second (not every 5 s, as
      // with heartbeats): each planted checkpoint is settled within a second, not within a scan of 5 s.
      leaseTtlMs: 1_000,
      resumeScanMs: 500,
      discoveryIntervalMs: 60_000,
    });
    await orchestrator.catalog.waitFor(['calc_evaluate', 'files_write'], 10_000);
  });

  afterAll(async () => {
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    // The number README's Tests section quotes.
    console.log(`wire fuzzing: ${total} cases (${[...counts].map(([target, n]) => `${target} ${n}`).join(', ')}); checkpoints resumed ${checkpointOutcomes.resumed}, refused ${checkpointOutcomes.refused}`);
    for (const worker of workers) await worker.stop();
    await stack?.stop();
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
  });

  it('answers every tool request to a worker with a structured reply, and refuses every malformed one', async () => {
    const tools = {
      calc_evaluate: fc.record({ expression: fc.oneof(nastyString, fc.stringMatching(/^[0-9+\-*/^%(). a-z]{0,30}$/)) }),
      files_read: fc.record({ path: nastyString }),
      files_list: fc.record({ path: nastyString }, { requiredKeys: [] }),
      files_write: fc.record({ path: nastyString, content: fc.string({ maxLength: 200 }) }),
    };
    let seed = 1;
    for (const [tool, args] of Object.entries(tools)) {
      await fc.assert(fc.asyncProperty(fuzzedBody(toolRequest(tool, args)), async (body) => {
        count('tool requests');
        const reply = decodeJson(ToolReply, (await request(names.subjects.tool(tool.split('_')[0] as string, tool), body)).data);
        expect(reply).toBeDefined();
        if (reply?.status === 'error') expect(failureCodes).toContain(reply.failure.code);
        if (!isValid(ToolRequest, body)) expect(reply).toMatchObject({ status: 'error', failure: { code: 'INVALID_INPUT' } });
      }), { seed: seed++, numRuns: 150 });
    }
  });

  it('answers every tool request to a worker process with a structured reply, and the process outlives them all', async () => {
    // Across a process boundary: a crash here is the process exiting, not an error in this one.
    const childNames = wireNames(`${stack.namespace.slice(0, 24)}-wp`);
    const worker = startTroupe(['worker', 'files'], {
      NATS_URL: stack.natsServer.url, TROUPE_NAMESPACE: childNames.namespace, TROUPE_WORKSPACE: `${stack.workspace}/child`, LOG_LEVEL: 'warn',
    });
    const subject = childNames.subjects.tool('files', 'files_write');
    try {
      await eventually('the files worker process serving', async () =>
        !(await request(subject, new TextEncoder().encode('{}'), 1_000).then(() => false, (error: unknown) => isNoResponders(error))), 20_000, [worker]);
      const args = fc.record({ path: nastyString, content: fc.string({ maxLength: 200 }) });
      await fc.assert(fc.asyncProperty(fuzzedBody(toolRequest('files_write', args)), async (body) => {
        count('tool requests (worker process)');
        const reply = decodeJson(ToolReply, (await request(subject, body)).data);
        expect(reply).toBeDefined();
        if (!isValid(ToolRequest, body)) expect(reply).toMatchObject({ status: 'error', failure: { code: 'INVALID_INPUT' } });
      }), { seed: 21, numRuns: 150 });
      expect(worker.exitCode()).toBeNull();
      expect(worker.output()).not.toMatch(/uncaught|unhandled/i);
    } finally {
      await worker.stop();
    }
  }, 90_000);

  it('answers every undo request with a structured refusal: nothing is restored from data the pool did not keep', async () => {
    await fc.assert(fc.asyncProperty(fuzzedBody(toolUndoRequest('files_write')), async (body) => {
      count('undo requests');
      const reply = decodeJson(ToolReply, (await request(names.subjects.toolUndo('files', 'files_write'), body)).data);
      expect(reply).toMatchObject({ status: 'error' });
      if (!isValid(ToolUndoRequest, body)) expect(reply).toMatchObject({ failure: { code: 'INVALID_INPUT' } });
    }), { seed: 11, numRuns: 150 });
  });

  it('takes any cancellation or pool announcement without a word and keeps serving', async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(
      fuzzedBody(toolCallCancellation).map((body) => [names.subjects.toolCallCancellations, body] as const),
      fuzzedBody(poolAnnouncement).map((body) => [names.subjects.poolAnnouncements, body] as const),
    ), async ([subject, body]) => {
      count('broadcasts');
      nc.publish(subject, body);
    }), { seed: 12, numRuns: 150 });
    // Everyone that heard them still answers.
    const calc = await request(names.subjects.tool('calc', 'calc_evaluate'), new TextEncoder().encode(JSON.stringify({
      type: 'tool.request', sessionId: 's', callId: 'after-broadcasts', tool: 'calc_evaluate', arguments: { expression: '1+1' }, deadline: Date.now() + 5_000,
    })));
    expect(decodeJson(ToolReply, calc.data)).toMatchObject({ status: 'ok', result: { result: 2 } });
  });

  it('answers every session start with an acceptance or a rejection that says why', async () => {
    const accepted: string[] = [];
    let raisedBudgets = 0;
    await fc.assert(fc.asyncProperty(fuzzedBody(sessionStartRequest(['assistant'])), async (body) => {
      count('session starts');
      const reply = decodeJson(SessionStartReply, (await request(names.subjects.sessionStart, body)).data);
      expect(reply).toBeDefined();
      if (!isValid(SessionStartRequest, body)) expect(reply).toMatchObject({ type: 'session.rejected', reason: expect.any(String) });
      // A client may only tighten its agent's budgets.
      const start = decodeJson(SessionStartRequest, body);
      if (start?.budgets && (start.agent ?? 'assistant') === 'assistant' && !tightenBudgets(assistantAgent.budgets, start.budgets).ok) {
        raisedBudgets += 1;
        expect(reply).toMatchObject({ type: 'session.rejected', code: 'invalid', reason: expect.stringContaining('A start may only lower its agent\'s budgets.') });
      }
      if (reply?.type === 'session.accepted') accepted.push(reply.sessionId);
    }), { seed: 13, numRuns: 150 });
    expect(raisedBudgets).toBeGreaterThan(0);
    // The accepted ones (tasks no script knows) end on their own; none is left hanging.
    for (const sessionId of accepted) {
      const feed = await followSessionEvents(nc, sessionId, { namespace: stack.namespace });
      expect((await feed.finished).status).toMatch(/failed|completed|budget_exhausted/);
    }
  });

  it('takes every start queued while no orchestrator answered off the queue, hosting or dropping it', async () => {
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    await fc.assert(fc.asyncProperty(fc.array(fuzzedBody(sessionStartRequest(['assistant'])), { minLength: 1, maxLength: 8 }), async (bodies) => {
      for (const [i, body] of bodies.entries()) {
        count('queued starts');
        await js.publish(names.subjects.queuedSessionStarts, body, { msgID: `${Date.now()}-${i}-${Math.random()}` });
      }
      // A work queue: what the orchestrators' consumer acknowledged is gone. Nothing is left behind to be redelivered.
      await eventually('the queued starts to be taken', async () => (await jsm.streams.info(names.streams.queuedStarts)).state.messages === 0, 20_000);
    }), { seed: 22, numRuns: 15 });
  }, 90_000);

  it('answers every delegation to a specialist pool with a structured reply, refusing every malformed one', async () => {
    const specialist = await startSpecialistPool({
      agent: analystAgent, nats: await stack.connection('specialist'), namespace: stack.namespace,
      model: { client: new OpenAI({ baseURL: stack.modelUrl, apiKey: 'test', maxRetries: 0 }), providerName: 'openai', prices: defaultPriceTable },
      defaultModel: 'scripted', discoveryIntervalMs: 60_000,
    });
    try {
      await fc.assert(fc.asyncProperty(fuzzedBody(delegationRequest('analyst')), async (body) => {
        count('delegations');
        const reply = decodeJson(ToolReply, (await request(names.subjects.delegation('analyst'), body, 10_000)).data);
        expect(reply).toBeDefined();
        if (reply?.status === 'error') expect(failureCodes).toContain(reply.failure.code);
        if (!isValid(ToolRequest, body)) expect(reply).toMatchObject({ status: 'error', failure: { code: 'INVALID_INPUT' } });
      }), { seed: 23, numRuns: 100 });
    } finally {
      await specialist.stop({ graceMs: 0 });
    }
  }, 90_000);

  it('acknowledges every control message to a live session, accepted or refused with a reason', async () => {
    const controls = fc.array(fuzzedBody(sessionControl(fc.oneof(idLike, fc.constantFrom('call-a', 'call-b')))), { minLength: 1, maxLength: 6 });
    await fc.assert(fc.asyncProperty(controls, async (bodies) => {
      const run = await startSession(nc, { namespace: stack.namespace, task: 'Please write under a policy.' });
      for await (const event of run.events) if (event.type === 'approval.requested') break;
      for (const body of bodies) {
        count('session controls');
        let msg: Msg | undefined;
        try {
          msg = await request(names.subjects.sessionControl(run.sessionId), body);
        } catch (error) {
          // Only a session that has ended may stop answering its control subject.
          expect(isNoResponders(error)).toBe(true);
          await run.finished;
          continue;
        }
        const reply = decodeJson(SessionControlReply, msg.data);
        expect(reply).toBeDefined();
        if (!isValid(SessionControl, body)) expect(reply).toMatchObject({ accepted: false, reason: expect.any(String) });
      }
      await request(names.subjects.sessionControl(run.sessionId), new TextEncoder().encode('{"type":"session.cancel"}')).catch(() => undefined);
      expect((await run.finished).status).toMatch(/completed|cancelled|failed|escalated|budget_exhausted/);
    }), { seed: 14, numRuns: 40 });
  });

  it('answers every recorded command to a live session on its events, applied or refused with why, each id once', async () => {
    const js = jetstream(nc);
    const recorded = fc.array(fc.tuple(fc.oneof(idLike, fc.constant('same-id')), fuzzedBody(sessionControl(fc.oneof(idLike, fc.constantFrom('call-a', 'call-b'))))), { minLength: 1, maxLength: 5 });
    await fc.assert(fc.asyncProperty(recorded, async (commands) => {
      const run = await startSession(nc, { namespace: stack.namespace, task: 'Please write under a policy.' });
      for await (const event of run.events) if (event.type === 'approval.requested') break;
      const outcomes: Array<Extract<SessionEvent, { type: 'control.applied' }>> = [];
      let ended = false;
      const watch = nc.subscribe(names.subjects.sessionEvents(run.sessionId), {
        callback: (_error, msg) => {
          for (const event of decodeSessionEvents(msg.data, 'an event').events) {
            if (event.type === 'control.applied') outcomes.push(event);
            if (event.type === 'session.finished' && event.status !== 'escalated') ended = true;
          }
        },
      });
      const ids = new Set<string>();
      for (const [id, body] of commands) {
        count('recorded commands');
        const controlId = `${run.sessionId}-${id}`;
        const repeated = ids.has(controlId);
        ids.add(controlId);
        const answered = outcomes.filter((o) => o.controlId === controlId).length;
        await js.publish(names.subjects.sessionControls(run.sessionId), body, { msgID: controlId });
        // Each is answered while the session lives: applied, or refused with a reason (a malformed one
        // always, unless its id was applied before). Once it has ended, its stream's end is the answer.
        await expect.poll(() => ended || outcomes.filter((o) => o.controlId === controlId).length > answered, { timeout: 10_000 }).toBe(true);
        if (ended && outcomes.filter((o) => o.controlId === controlId).length === answered) break;
        const [first] = outcomes.filter((o) => o.controlId === controlId);
        if (!repeated && !isValid(SessionControl, body)) expect(first).toMatchObject({ accepted: false, reason: expect.any(String) });
      }
      watch.unsubscribe();
      // A repeated id is answered again, never applied twice: its answers all say the same.
      for (const controlId of ids) expect(new Set(outcomes.filter((o) => o.controlId === controlId).map((o) => o.accepted)).size).toBeLessThanOrEqual(1);
      await request(names.subjects.sessionControl(run.sessionId), new TextEncoder().encode('{"type":"session.cancel"}')).catch(() => undefined);
      expect((await run.finished).status).toMatch(/completed|cancelled|failed|escalated|budget_exhausted/);
    }), { seed: 25, numRuns: 25, endOnFailure: true });
  }, 120_000);

  it('acknowledges every control message to an escalated session, taken over or not, and ends it cleanly', async () => {
    const encoder = new TextEncoder();
    // Half the runs hand the session to a person first, so manual calls and hand-backs meet a session in manual mode.
    const manualCall = fc.record({
      type: fc.constant('session.manual_call'), tool: fc.oneof(fc.constantFrom('files_read', 'files_write', 'calc_evaluate', 'results_fetch'), nastyString),
      arguments: fc.oneof(fc.record({ path: nastyString, content: nastyString }, { requiredKeys: [] }), fc.record({ expression: nastyString }), fc.dictionary(fc.string({ maxLength: 6 }), anyJson, { maxKeys: 3 })),
    });
    const controls = fc.tuple(
      fc.boolean(),
      fc.array(fc.oneof(fuzzedBody(sessionControl(idLike)), fuzzedBody(manualCall)), { minLength: 1, maxLength: 6 }),
    ).map(([takeOver, bodies]) => (takeOver ? [encoder.encode('{"type":"session.takeover","by":"fuzzer"}'), ...bodies] : bodies));
    await fc.assert(fc.asyncProperty(controls, async (bodies) => {
      const run = await startSession(nc, { namespace: stack.namespace, task: 'Please get stuck on the report.' });
      expect(await run.finished).toMatchObject({ status: 'escalated' });
      for (const body of bodies) {
        count('session controls');
        const msg = await request(names.subjects.sessionControl(run.sessionId), body).catch((error: unknown) => {
          // Only a session that has ended stops answering its control subject.
          expect(isNoResponders(error) ? 'no responders' : String(error)).toBe('no responders');
          return undefined;
        });
        if (!msg) continue;
        const reply = decodeJson(SessionControlReply, msg.data);
        expect(reply).toBeDefined();
        if (!isValid(SessionControl, body)) expect(reply).toMatchObject({ accepted: false, reason: expect.any(String) });
      }
      // Whatever state the controls left it in, a cancel ends it, or it has ended already.
      const feed = await followSessionEvents(nc, run.sessionId, { namespace: stack.namespace });
      await request(names.subjects.sessionControl(run.sessionId), encoder.encode('{"type":"session.cancel"}')).catch(() => undefined);
      const events: SessionEvent[] = [];
      for await (const event of feed.events) {
        events.push(event);
        if (event.type === 'session.finished' && event.status !== 'escalated') break;
        // A parked session is finished for its feed; the cancel above moves it to its end.
        if (event.type === 'session.finished') {
          feed.stop();
          break;
        }
      }
      expect(events.some((e) => e.type === 'session.finished')).toBe(true);
    }), { seed: 24, numRuns: 20, endOnFailure: true });
  }, 90_000);

  it('answers every results_fetch with a structured reply and never another session\'s data', async () => {
    const args = fc.record({ callId: idLike, path: nastyString, offset: fc.oneof(fc.nat(), fc.integer()), limit: fc.oneof(fc.nat(300), fc.integer()) }, { requiredKeys: [] });
    await fc.assert(fc.asyncProperty(fuzzedBody(toolRequest('results_fetch', args)), async (body) => {
      count('results fetches');
      const reply = decodeJson(ToolReply, (await request(names.subjects.tool('results', 'results_fetch'), body)).data);
      // No fuzzed session stored anything: every answer is a refusal.
      expect(reply).toMatchObject({ status: 'error' });
      if (!isValid(ToolRequest, body)) expect(reply).toMatchObject({ failure: { code: 'INVALID_INPUT' } });
    }), { seed: 15, numRuns: 150 });
  });

  it('keeps discovering the real pools whatever other services answer $SRV.INFO with', async () => {
    let answers: Uint8Array[] = [];
    const rogue: Subscription = nc.subscribe(serviceDiscoverySubject('INFO'), {
      callback: (_error, msg) => {
        for (const body of answers) if (msg.reply) nc.publish(msg.reply, body);
      },
    });
    await nc.flush();
    try {
      await fc.assert(fc.asyncProperty(fc.array(fuzzedBody(infoResponse(stack.namespace)), { minLength: 1, maxLength: 6 }), async (bodies) => {
        answers = bodies;
        for (const _ of bodies) count('discovery answers');
        await orchestrator.catalog.refresh();
        const calc = orchestrator.catalog.get('calc_evaluate');
        expect(calc?.subject).toBe(names.subjects.tool('calc', 'calc_evaluate'));
        for (const tool of orchestrator.catalog.list()) {
          expect(typeof tool.name).toBe('string');
          expect(tool.inputSchema).toEqual(expect.any(Object));
        }
      }), { seed: 16, numRuns: 25 });
    } finally {
      rogue.unsubscribe();
    }
    // Gone rogue tools leave the catalog after two rounds without them.
    await orchestrator.catalog.refresh();
    await orchestrator.catalog.refresh();
  });

  it('refuses or resumes every checkpoint read back from the bucket, and leaves none orphaned', async () => {
    const kvm = new Kvm(nc);
    const checkpoints: KV = await kvm.open(names.buckets.checkpoints);
    const leases: KV = await kvm.open(names.buckets.leases);
    // A real checkpoint to mutate: a session parked waiting for approval.
    const parked = await startSession(nc, { namespace: stack.namespace, task: 'Please write under a policy.' });
    for await (const event of parked.events) if (event.type === 'approval.requested') break;
    const stored = (await (await CheckpointStore.open(nc, names)).read(parked.sessionId))?.checkpoint as Checkpoint;
    expect(stored.status).toBe('parked');
    // Read back whole, its conversation and ledger inline: planted under another id, a journal would name the parked session's segments.
    const { journal: _journal, ...template } = stored;
    await request(names.subjects.sessionControl(parked.sessionId), new TextEncoder().encode('{"type":"session.cancel"}'));

    // The template under a new session id (so it is not refused for naming another), then mutated.
    const checkpointOf = (sessionId: string) => fc.tuple(fc.array(fc.tuple(fc.nat(), anyJson), { maxLength: 3 }), fc.constantFrom('running', 'parked', 'ended', 'other'))
      .map(([edits, status]) => {
        const body = structuredClone({ ...template, sessionId, status }) as Record<string, unknown>;
        (body.snapshot as { context: { sessionId: string } }).context.sessionId = sessionId;
        for (const [at, value] of edits) setAtPath(body, at, value);
        return body;
      });
    // Which planted sessions really ran again: they say so on their event subject.
    const resumed = new Set<string>();
    const resumedWatch = nc.subscribe(names.subjects.allSessionEvents, {
      callback: (_error, msg) => {
        for (const event of decodeSessionEvents(msg.data, 'an event').events) {
          if (event.type === 'session.resumed' && event.sessionId.startsWith('fuzz-')) resumed.add(event.sessionId);
        }
      },
    });
    const planting = fc.uuid().chain((id) => fuzzedBody(checkpointOf(`fuzz-${id}`)).map((body) => [`fuzz-${id}`, body] as const));
    await fc.assert(fc.asyncProperty(fc.uniqueArray(planting, { minLength: 1, maxLength: 6, selector: ([id]) => id }), async (plantings) => {
      const planted = await Promise.all(plantings.map(async ([sessionId, body]) => {
        count('checkpoints');
        await checkpoints.put(sessionId, body);
        // An expired lease: the session's host is gone, so the resumer takes it.
        await leases.put(sessionId, JSON.stringify({ owner: 'gone', expiresAt: 0 }));
        return sessionId;
      }));
      // Each is taken at the resumer's next scans: resumed (the lease is ours) or refused (the lease is removed).
      for (const sessionId of planted) await leaseSettled(leases, sessionId);
      for (const sessionId of planted) orchestrator.sessions().get(sessionId)?.cancel('fuzzing is over');
      // A lapse is a matter of time, not of the body planted: shrinking would only replay rounds until the test's bound.
    }), { seed: 17, numRuns: 30, endOnFailure: true });
    await nc.flush();
    resumedWatch.unsubscribe();
    checkpointOutcomes.resumed = resumed.size;
    checkpointOutcomes.refused = (counts.get('checkpoints') ?? 0) - resumed.size;
    // Both ways were taken: the fuzzing reached sessions that really ran again, not only refusals.
    expect(checkpointOutcomes.resumed).toBeGreaterThan(0);
    expect(checkpointOutcomes.refused).toBeGreaterThan(0);
    // A bound, not a speed: 30 rounds of up to 6 checkpoints, each taken by the resumer's next scans,
    // ran out of 90 s in a clean-clone run on a loaded machine.
  }, 180_000);

  it('delivers a session\'s events to a follower past any malformed ones, up to its end', async () => {
    const event = fc.record({
      sessionId: idLike, seq: fc.nat(50), at: fc.constant(new Date().toISOString()),
      type: fc.constantFrom('turn.started', 'model.responded', 'tool.call.finished', 'session.finished', 'specialist.event'), turn: fc.nat(3),
    }) as fc.Arbitrary<Record<string, unknown>>;
    await fc.assert(fc.asyncProperty(fc.array(fuzzedBody(event), { minLength: 1, maxLength: 8 }), async (bodies) => {
      const sessionId = `fuzz-${crypto.randomUUID()}`;
      const invalid: string[] = [];
      const feed = await followSessionEvents(nc, sessionId, { namespace: stack.namespace, onInvalidEvent: (error) => invalid.push(error) });
      for (const body of bodies) {
        count('session events');
        nc.publish(names.subjects.sessionEvents(sessionId), body);
      }
      const finished = {
        type: 'session.finished', sessionId, seq: 1_000, at: new Date().toISOString(), status: 'completed', output: 'done', stopReason: 'answered',
        steps: 1, toolCalls: 0, usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 }, traceId: 't', durationMs: 1,
      };
      nc.publish(names.subjects.sessionEvents(sessionId), JSON.stringify(finished));
      const seen: SessionEvent[] = [];
      for await (const e of feed.events) seen.push(e);
      // The follower ends at a `session.finished`: a fuzzed one, or the real one after everything else.
      expect(seen.at(-1)?.type).toBe('session.finished');
      expect(invalid.length + seen.length).toBeGreaterThan(0);
      feed.stop();
    }), { seed: 18, numRuns: 50 });
  });

  it('ends every session whose tool call gets a fuzzed reply, whatever the pool answered', async () => {
    // A deployment of its own, whose calc_evaluate is advertised by a pool that answers with anything.
    const rogueNames = wireNames(`${stack.namespace.slice(0, 24)}-rp`);
    const rogueOrchestrator = await startOrchestrator({
      nats: await stack.connection('rogue-replies-orchestrator'),
      namespace: rogueNames.namespace,
      model: { client: new OpenAI({ baseURL: stack.modelUrl, apiKey: 'test', maxRetries: 0 }), providerName: 'openai', prices: defaultPriceTable },
      defaultModel: 'scripted', durable: false, discoveryIntervalMs: 60_000,
    });
    const calc = calcTools()[0] as ToolDefinition;
    const rogueNc = await stack.connection('rogue-pool');
    const responder = startServiceResponder(rogueNc, {
      name: rogueNames.services.pool('calc'), version: '0.1.0', description: 'answers anything',
      metadata: { [toolMetadataKeys.kind]: toolPoolKind, [toolMetadataKeys.namespace]: rogueNames.namespace, [toolMetadataKeys.domain]: 'calc' },
      endpoints: [{
        name: calc.name, subject: rogueNames.subjects.tool('calc', calc.name), queue_group: rogueNames.queueGroups.pool('calc'),
        metadata: {
          [toolMetadataKeys.inputSchema]: JSON.stringify(toolInputJsonSchema(calc)), [toolMetadataKeys.timeoutMs]: '2000',
          [toolMetadataKeys.retry]: JSON.stringify({ maxAttempts: 1 }), [toolMetadataKeys.sideEffects]: 'false',
        },
      }],
    });
    let answer: Uint8Array = new Uint8Array();
    const pool = rogueNc.subscribe(rogueNames.subjects.tool('calc', calc.name), {
      callback: (_error, msg) => {
        const callId = decodeJson(ToolRequest, msg.data)?.callId ?? 'unknown';
        msg.respond(new TextEncoder().encode(decoder.decode(answer).replaceAll(callIdPlaceholder, callId)));
      },
    });
    const reply = fc.oneof(
      fc.record({
        type: fc.constant('tool.reply'), status: fc.constant('ok'), callId: fc.constant(callIdPlaceholder),
        result: fc.oneof(anyJson, fc.record({ result: fc.oneof(fc.double(), anyJson) })), compensation: anyJson,
        spent: fc.record({ usage: fc.record({ inputTokens: fc.nat(), outputTokens: fc.nat(), costUsd: fc.double({ min: 0, max: 10, noNaN: true }) }), steps: fc.nat(5), toolCalls: fc.nat(5) }),
      }, { requiredKeys: ['type', 'status', 'callId', 'result'] }),
      fc.record({
        type: fc.constant('tool.reply'), status: fc.constant('error'), callId: fc.constant(callIdPlaceholder),
        failure: fc.record({ code: fc.constantFrom(...failureCodes), message: nastyString, retryable: fc.boolean(), details: fc.dictionary(fc.string({ maxLength: 6 }), anyJson, { maxKeys: 2 }) }, { requiredKeys: ['code', 'message', 'retryable'] }),
      }),
    ) as fc.Arbitrary<Record<string, unknown>>;
    try {
      await rogueOrchestrator.catalog.waitFor([calc.name], 10_000);
      await fc.assert(fc.asyncProperty(fuzzedBody(reply), async (body) => {
        count('tool replies');
        answer = body;
        const run = await startSession(nc, { namespace: rogueNames.namespace, task: 'Please compute two plus two.' });
        const finished = await run.finished;
        expect(finished.status).toMatch(/completed|failed|budget_exhausted|escalated/);
      }), { seed: 19, numRuns: 40 });
    } finally {
      pool.unsubscribe();
      responder.stop();
      await rogueOrchestrator.stop({ graceMs: 0 });
    }
  });

  it('gives a client a result or an error for any answer to its start or control request', async () => {
    const rogueNames = wireNames(`${stack.namespace.slice(0, 24)}-rc`);
    let answer: Uint8Array = new Uint8Array();
    const rogue = nc.subscribe(`${rogueNames.namespace}.sessions.>`, { callback: (_error, msg) => void (msg.reply && msg.respond(answer)) });
    await nc.flush();
    const startReply = fc.oneof(
      fc.record({ type: fc.constant('session.accepted'), sessionId: idLike, traceId: idLike }),
      fc.record({ type: fc.constant('session.rejected'), sessionId: fc.oneof(idLike, fc.constant(null)), reason: nastyString }),
    ) as fc.Arbitrary<Record<string, unknown>>;
    const controlReply = fc.record({ type: fc.constant('session.control.ack'), accepted: fc.boolean(), reason: nastyString }, { requiredKeys: ['type', 'accepted'] });
    try {
      await fc.assert(fc.asyncProperty(fuzzedBody(startReply), fuzzedBody(controlReply), async (start, control) => {
        count('client replies');
        answer = start;
        const started = await startSession(nc, { namespace: rogueNames.namespace, task: 'anything', acceptTimeoutMs: 2_000 }).then(
          (run) => run,
          (error: unknown) => (error instanceof Error ? error : new Error(`not an Error: ${String(error)}`)),
        );
        if (started instanceof Error) expect(started.message).not.toMatch(/^not an Error/);
        else {
          expect(isValid(SessionStartReply, start)).toBe(true);
          started.detach();
        }
        count('client replies');
        answer = control;
        // The command is recorded in a stream: the fuzzed answer races the stream's acknowledgement.
        const acknowledged = await cancelSession(nc, 'some-session', 'fuzzing', { namespace: rogueNames.namespace, applyWithinMs: 100 }).then(
          (result) => result,
          (error: unknown) => (error instanceof Error ? error : new Error(`not an Error: ${String(error)}`)),
        );
        if (acknowledged instanceof Error) expect(acknowledged.message).not.toMatch(/^not an Error/);
        else expect(acknowledged).toEqual(expect.objectContaining({ accepted: expect.any(Boolean), status: expect.any(String) }));
      }), { seed: 20, numRuns: 60 });
    } finally {
      rogue.unsubscribe();
    }
  });

  it('completes a session afterwards, and nothing crashed on the way', async () => {
    const run = await startSession(nc, { namespace: stack.namespace, task: 'Please compute two plus two.' });
    expect(await run.finished).toMatchObject({ status: 'completed', output: 'the sum is 4' });
    expect(crashes).toEqual([]);
    expect([...counts.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(1_000);
  });
});

/** Sets the `at`-th (modulo their number) of the object's nested values, depth first, to `value`. */
function setAtPath(root: Record<string, unknown>, at: number, value: unknown): void {
  const slots: Array<[Record<string, unknown>, string]> = [];
  const visit = (node: unknown, depth: number) => {
    if (node === null || typeof node !== 'object' || depth > 6) return;
    for (const key of Object.keys(node)) {
      slots.push([node as Record<string, unknown>, key]);
      visit((node as Record<string, unknown>)[key], depth + 1);
    }
  };
  visit(root, 0);
  const slot = slots[at % Math.max(1, slots.length)];
  if (slot) slot[0][slot[1]] = value;
}

/**
 * Resolves once the planted lease of `sessionId` is taken by an orchestrator or removed: the
 * resumer dealt with its checkpoint. Follows the key's changes as they happen; a lease still
 * planted after forty scans is a checkpoint left orphaned, and fails the property.
 */
async function leaseSettled(leases: KV, sessionId: string): Promise<void> {
  const watcher = await leases.watch({ key: sessionId });
  let timer: NodeJS.Timeout | undefined;
  const orphaned = new Promise<never>((_resolve, reject) => {
    // Scans run twice a second: an orphan never settles, and 20 s leaves room for a machine the suite loads.
    timer = setTimeout(() => reject(new Error(`the checkpoint of ${sessionId} was neither resumed nor refused within 20 s`)), 20_000);
  });
  // A refused session's lease is purged from the stream, which no watcher sees: one taken and refused
  // before the watcher began has no entry at all.
  const left = async () => {
    const entry = await leases.get(sessionId);
    return !entry || entry.operation !== 'PUT' || (JSON.parse(entry.string()) as { owner?: string }).owner !== 'gone';
  };
  const settled = (async () => {
    if (await left()) return;
    for await (const entry of watcher) {
      if (entry.operation !== 'PUT' || (JSON.parse(entry.string()) as { owner?: string }).owner !== 'gone') return;
    }
  })();
  try {
    await Promise.race([settled, orphaned]);
  } finally {
    clearTimeout(timer);
    watcher.stop();
  }
}
