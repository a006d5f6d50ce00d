import { describe, expect, it } from 'vitest';
import { createActor, fromPromise } from 'xstate';
import { CheckpointConflictError, type Checkpoint, type CheckpointStore } from '../../../actors/durability/checkpointStore.ts';
import { SessionCheckpoints } from '../../../actors/durability/sessionCheckpoints.ts';
import type { Lease, SessionLeases } from '../../../actors/durability/sessionLeases.ts';
import type { ModelResponse } from '../../../machines/conversation.ts';
import { sessionMachine, type CallModelInput } from '../../../machines/session.ts';
import { silentLogger } from '../../../observability/logger.ts';
import { acceptingTriage, echoTools, sessionInput } from '../../fixtures/sessionFakes.ts';

/** A checkpoint store whose writes the test settles one by one. */
function heldStore() {
  const writes: { checkpoint: Checkpoint; settle: (outcome: number | Error) => void }[] = [];
  const write = (checkpoint: Checkpoint) =>
    new Promise<number>((resolve, reject) => writes.push({ checkpoint, settle: (o) => (o instanceof Error ? reject(o) : resolve(o)) }));
  const store = { create: write, update: (checkpoint: Checkpoint) => write(checkpoint), appendSegment: async () => {} } as unknown as CheckpointStore;
  return { store, writes };
}

const lease: Lease = { renew: async () => true, release: async () => {} } as unknown as Lease;
let leasesEnded = 0;
const leases = { ttlMs: 60_000, end: async () => void (leasesEnded += 1) } as unknown as SessionLeases;

function watched(store: CheckpointStore) {
  const actor = createActor(
    sessionMachine.provide({
      actors: { callModel: fromPromise<ModelResponse, CallModelInput>(() => new Promise<ModelResponse>(() => {})), triageToolCalls: acceptingTriage, executeToolCall: echoTools().logic },
    }),
    { input: sessionInput() },
  );
  let lost = 0;
  const checkpoints = new SessionCheckpoints({
    store, leases, lease, owner: 'test', identity: { sessionId: 's-1', agent: 'tester', task: 't', traceContext: {} },
    appliedControls: () => [], nextEventSeq: () => 0, logger: silentLogger(), onLost: () => (lost += 1),
  });
  checkpoints.watch(actor);
  actor.start();
  return { actor, checkpoints, lost: () => lost };
}

const settled = async (promise: Promise<unknown>) => {
  let done = false;
  void promise.then(() => (done = true), () => (done = true));
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return done;
};
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('SessionCheckpoints.durable (write-ahead)', () => {
  it('resolves only once a checkpoint of the state as of the call is stored, not an earlier one', async () => {
    const { store, writes } = heldStore();
    const { actor, checkpoints } = watched(store);
    await tick();
    expect(writes).toHaveLength(1);
    actor.send({ type: 'session.interrupt' });
    const durable = checkpoints.durable();
    // The write in flight holds the state before the transition: storing it is not enough.
    writes[0]?.settle(1);
    await tick();
    expect(await settled(durable)).toBe(false);
    expect(writes).toHaveLength(2);
    writes[1]?.settle(2);
    await expect(durable).resolves.toBeUndefined();
    checkpoints.end().catch(() => undefined);
    actor.stop();
  });

  it('writes a state scheduled as the write loop was finishing: a parked session makes no later transition to write it', async () => {
    const { store, writes } = heldStore();
    const { checkpoints } = watched(store);
    await tick();
    expect(writes).toHaveLength(1);
    writes[0]?.settle(1);
    // One microtask on: the loop has seen nothing more to write and is ending, but has not ended yet.
    await Promise.resolve();
    checkpoints.schedule();
    await tick();
    expect(writes).toHaveLength(2);
  });

  it('retries a failed write while a call waits for it, instead of waiting for a next transition that never comes', async () => {
    const { store, writes } = heldStore();
    const { actor, checkpoints } = watched(store);
    await tick();
    const durable = checkpoints.durable();
    writes[0]?.settle(new Error('JetStream is briefly unavailable'));
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(writes).toHaveLength(2);
    expect(await settled(durable)).toBe(false);
    writes[1]?.settle(1);
    await expect(durable).resolves.toBeUndefined();
    actor.stop();
  });

  it('rejects waiting calls when another owner took the session: they must never be sent from here', async () => {
    const { store, writes } = heldStore();
    const { actor, checkpoints, lost } = watched(store);
    await tick();
    const durable = checkpoints.durable();
    writes[0]?.settle(new CheckpointConflictError('s-1', 'wrong last sequence'));
    await expect(durable).rejects.toThrow(/no longer hosted here/);
    expect(lost()).toBe(1);
    await expect(checkpoints.durable()).rejects.toThrow(/no longer hosted here/);
    actor.stop();
  });

  // Regression: a final checkpoint write that failed (a JetStream leader election) left the session to be resumed and finished twice.
  it('retries the last state of an ending session until it lands, and only then gives the lease up', async () => {
    const { store, writes } = heldStore();
    const { actor, checkpoints } = watched(store);
    await tick();
    writes[0]?.settle(1);
    await tick();
    const endedBefore = leasesEnded;
    actor.send({ type: 'session.cancel', reason: 'done here' });
    await tick();
    const ended = checkpoints.end();
    writes.at(-1)?.settle(new Error('no JetStream leader'));
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(leasesEnded).toBe(endedBefore);
    const last = writes.at(-1);
    expect(last?.checkpoint.status).toBe('ended');
    last?.settle(2);
    await ended;
    expect(leasesEnded).toBe(endedBefore + 1);
  });

  it('refuses a waiting call when the checkpoint can never be stored (larger than a NATS message), instead of retrying forever', async () => {
    const { store, writes } = heldStore();
    const { actor, checkpoints } = watched(store);
    await tick();
    const durable = checkpoints.durable();
    writes[0]?.settle(new Error('message size exceeds max_payload'));
    await expect(durable).rejects.toThrow(/larger than a NATS message/);
    actor.stop();
  });
});
