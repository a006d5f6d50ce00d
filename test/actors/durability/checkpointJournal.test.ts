import { Kvm } from '@nats-io/kv';
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, waitFor } from 'xstate';
import { CheckpointStore } from '../../../actors/durability/checkpointStore.ts';
import { SessionCheckpoints } from '../../../actors/durability/sessionCheckpoints.ts';
import type { Lease, SessionLeases } from '../../../actors/durability/sessionLeases.ts';
import type { ModelResponse } from '../../../machines/conversation.ts';
import { sessionMachine, type CallModelInput, type ExecuteToolCallInput } from '../../../machines/session.ts';
import type { ToolCallOutcome } from '../../../machines/toolCallOutcome.ts';
import { silentLogger } from '../../../observability/logger.ts';
import { wireNames } from '../../../transport/subjects.ts';
import { natsPerSuite } from '../../fixtures/natsPerSuite.ts';
import { acceptingTriage, answer, askTools, scriptedModelActor, sessionInput } from '../../fixtures/sessionFakes.ts';

const lease = { renew: async () => true, release: async () => {} } as unknown as Lease;
const leases = { ttlMs: 60_000, end: async () => {} } as unknown as SessionLeases;

/** A session of `steps` tool steps and an answer, checkpointed into `store` as a host does it. */
async function runCheckpointed(store: CheckpointStore, sessionId: string, steps: number, padBytes = 0, clock?: { now: () => number; journalCheckMs: number }) {
  const model = scriptedModelActor([
    ...Array.from({ length: steps }, (_, i) => askTools([{ id: `t${i}`, name: 'echo', arguments: JSON.stringify({ step: i, pad: 'x'.repeat(padBytes) }) }])),
    answer('done'),
  ]);
  // Each tool call answers once the step's checkpoint is stored: one write a step, as with a real model and tools.
  let flushed = async () => {};
  const executeToolCall = fromPromise<ToolCallOutcome, ExecuteToolCallInput>(async ({ input }) => {
    await flushed();
    return { status: 'ok', callId: input.call.callId, result: { echo: input.call.arguments }, durationMs: 1 };
  });
  const actor = createActor(
    sessionMachine.provide({ actors: { callModel: model.logic, triageToolCalls: acceptingTriage, executeToolCall } }),
    { input: sessionInput({ maxSteps: steps + 5 }, { sessionId }) },
  );
  const checkpoints = new SessionCheckpoints({
    store, leases, lease, owner: 'test', identity: { sessionId, agent: 'tester', task: 't', traceContext: {} },
    appliedControls: () => [], nextEventSeq: () => 0, logger: silentLogger(), onLost: () => undefined, ...(clock ? { clock } : {}),
  });
  flushed = () => checkpoints.flush();
  checkpoints.watch(actor);
  actor.start();
  await waitFor(actor, (s) => s.status === 'done');
  await checkpoints.end();
  return actor.getSnapshot().context;
}

/** A session with steps of `padBytes` that parks waiting for a person, checkpointed under `clock`; the caller ends it. */
async function parkCheckpointed(store: CheckpointStore, sessionId: string, clock: { now: () => number; journalCheckMs: number }) {
  // The first turn asks for a 5 KB call (a journal segment); the second never answers, until a person steps in.
  const callModel = fromPromise<ModelResponse, CallModelInput>(({ input }) => (input.turn === 1
    ? Promise.resolve(askTools([{ id: 't0', name: 'echo', arguments: JSON.stringify({ pad: 'x'.repeat(5_000) }) }]))
    : new Promise<ModelResponse>(() => {})));
  const actor = createActor(
    sessionMachine.provide({ actors: { callModel, triageToolCalls: acceptingTriage, executeToolCall: fromPromise<ToolCallOutcome, ExecuteToolCallInput>(async ({ input }) => ({ status: 'ok', callId: input.call.callId, result: {}, durationMs: 1 })) } }),
    { input: sessionInput({}, { sessionId }) },
  );
  const checkpoints = new SessionCheckpoints({
    store, leases, lease, owner: 'test', identity: { sessionId, agent: 'tester', task: 't', traceContext: {} },
    appliedControls: () => [], nextEventSeq: () => 0, logger: silentLogger(), onLost: () => undefined, clock,
  });
  checkpoints.watch(actor);
  actor.start();
  // Parked by a person's escalation once the tool answered: no transition writes anything after.
  await waitFor(actor, (s) => s.matches('calling_model') && s.context.turn === 2);
  actor.send({ type: 'session.escalate', reason: 'a person looks into it' });
  await waitFor(actor, (s) => s.matches('escalated'));
  await checkpoints.flush();
  return { actor, checkpoints };
}

describe('the checkpoint journal (JetStream KV)', () => {
  const nats = natsPerSuite();
  const names = wireNames('journal');

  it('stores the checkpoint without the conversation and ledger, and reads them back whole from the journal', async () => {
    const store = await CheckpointStore.open(nats.nc, names);
    // Steps of 2 KB each: some in segments, the latest in the checkpoint's tail.
    const context = await runCheckpointed(store, 'j-whole', 6, 2_000);
    const stored = await store.read('j-whole');
    expect(stored?.checkpoint.status).toBe('ended');
    expect(stored?.checkpoint.snapshot.context).toMatchObject({ conversation: context.conversation, ledger: context.ledger });
    expect(context.ledger).toHaveLength(6);
    const raw = (await (await new Kvm(nats.nc).open(names.buckets.checkpoints)).get('j-whole'))?.json<{ snapshot: { context: Record<string, unknown> }; journal: { conversationLength: number; segments: number } }>();
    expect(raw?.snapshot.context).toMatchObject({ conversation: [], ledger: [] });
    expect(raw?.journal.conversationLength).toBe(context.conversation.length);
    expect(raw?.journal.segments).toBeGreaterThan(0);
  });

  it('writes as many bytes a step in a long session as in a short one', async () => {
    const store = await CheckpointStore.open(nats.nc, names);
    // Bytes this connection sent: the checkpoints and segments written (the bucket keeps only the last checkpoint).
    const bytesPerStep = async (sessionId: string, steps: number) => {
      const before = nats.nc.stats().outBytes;
      await runCheckpointed(store, sessionId, steps);
      return (nats.nc.stats().outBytes - before) / steps;
    };
    const short = await bytesPerStep('j-short', 5);
    const long = await bytesPerStep('j-long', 40);
    // Whole checkpoints (the conversation in each) cost about eight times more a step at 40 steps than at 5.
    expect(long).toBeLessThan(short * 1.2);
  });

  it('starts the journal of a parked session again once its chain is a day old, so its segments never expire before its checkpoint', async () => {
    const store = await CheckpointStore.open(nats.nc, names);
    const kv = await new Kvm(nats.nc).open(names.buckets.checkpoints);
    let now = Date.UTC(2026, 10, 30);
    const { actor, checkpoints } = await parkCheckpointed(store, 'j-parked', { now: () => now, journalCheckMs: 20 });
    const journalOf = async () => (await kv.get('j-parked'))?.json<{ journal: { head: string; baseWrittenAt: number } }>().journal;
    const before = await journalOf();
    expect(before?.baseWrittenAt).toBe(now);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await journalOf())?.head).toBe(before?.head);
    now += 24 * 60 * 60 * 1000;
    for (let i = 0; i < 100 && (await journalOf())?.baseWrittenAt !== now; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await journalOf())?.baseWrittenAt).toBe(now);
    expect((await store.read('j-parked'))?.checkpoint.snapshot.context).toMatchObject({ conversation: actor.getSnapshot().context.conversation });
    actor.stop();
    await checkpoints.handOver();
  });

  it('lists nothing, and does not wait, for a bucket that holds journal segments but no checkpoint', async () => {
    const lone = wireNames('journal-lone');
    const store = await CheckpointStore.open(nats.nc, lone);
    await (await new Kvm(nats.nc).open(lone.buckets.checkpoints)).put('orphan.ABC', JSON.stringify({ previous: null, conversation: { from: 0, entries: [] }, ledger: { from: 0, entries: [] } }));
    expect(await store.list()).toEqual([]);
  });

  it('lists checkpoints, not journal segments', async () => {
    const store = await CheckpointStore.open(nats.nc, wireNames('journal-list'));
    await runCheckpointed(store, 'j-listed', 3);
    const listed = await store.list();
    expect(listed.map((s) => s.sessionId)).toEqual(['j-listed']);
    expect(listed[0]?.error).toBeUndefined();
  });

  it('refuses a checkpoint whose journal lost a segment, naming it', async () => {
    const store = await CheckpointStore.open(nats.nc, names);
    // Steps of 5 KB each: too large for the checkpoint's tail, so each goes into a segment.
    await runCheckpointed(store, 'j-broken', 2, 5_000);
    const kv = await new Kvm(nats.nc).open(names.buckets.checkpoints);
    const head = (await kv.get('j-broken'))?.json<{ journal: { head: string } }>().journal.head;
    await kv.purge(`j-broken.${head}`);
    await expect(store.read('j-broken')).rejects.toThrow(`The checkpoint of session j-broken cannot be used: its journal segment ${head} is missing`);
  });
});
