import { Kvm } from '@nats-io/kv';
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, waitFor } from 'xstate';
import { CheckpointStore } from '../../../actors/durability/checkpointStore.ts';
import { SessionCheckpoints } from '../../../actors/durability/sessionCheckpoints.ts';
import type { Lease, SessionLeases } from '../../../actors/durability/sessionLeases.ts';
import { sessionMachine, type ExecuteToolCallInput } from '../../../machines/session.ts';
import type { ToolCallOutcome } from '../../../machines/toolCallOutcome.ts';
import { silentLogger } from '../../../observability/logger.ts';
import { wireNames } from '../../../transport/subjects.ts';
import { natsPerSuite } from '../../fixtures/natsPerSuite.ts';
import { acceptingTriage, answer, askTools, scriptedModelActor, sessionInput } from '../../fixtures/sessionFakes.ts';

const lease = { renew: async () => true, release: async () => {} } as unknown as Lease;
const leases = { ttlMs: 60_000, end: async () => {} } as unknown as SessionLeases;

/** A session of `steps` tool steps and an answer, checkpointed into `store` as a host does it. */
async function runCheckpointed(store: CheckpointStore, sessionId: string, steps: number, padBytes = 0) {
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
    appliedControls: () => [], nextEventSeq: () => 0, logger: silentLogger(), onLost: () => undefined,
  });
  flushed = () => checkpoints.flush();
  checkpoints.watch(actor);
  actor.start();
  await waitFor(actor, (s) => s.status === 'done');
  await checkpoints.end();
  return actor.getSnapshot().context;
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
