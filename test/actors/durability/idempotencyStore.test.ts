import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callIdOfKey, IdempotencyStore, outcomeKey, type OutcomeDecision } from '../../../actors/durability/idempotencyStore.ts';
import { toolFailure, ToolFailureCode } from '../../../tools/toolFailure.ts';
import type { ToolReply } from '../../../transport/messages.ts';
import { startNatsServer, type NatsServerProcess } from '../../../testing/natsServer.ts';
import { testWireNames } from '../../fixtures/testNamespace.ts';

const names = testWireNames();

let server: NatsServerProcess;
let ncA: NatsConnection;
let ncB: NatsConnection;
let storeA: IdempotencyStore;
let storeB: IdempotencyStore;
let counter = 0;

const newCallId = (): string => `call-${++counter}-${Math.random().toString(36).slice(2)}`;
const okReply = (callId: string, result: unknown = { written: true }): ToolReply => ({ type: 'tool.reply', status: 'ok', callId, result });
const claim = (instanceId: string, deadlineInMs = 10_000) => ({ instanceId, deadline: Date.now() + deadlineInMs });

function expectExecute(decision: OutcomeDecision): Extract<OutcomeDecision, { kind: 'execute' }> {
  if (decision.kind !== 'execute') throw new Error(`expected execute, got ${JSON.stringify(decision)}`);
  return decision;
}

beforeAll(async () => {
  server = await startNatsServer();
  ncA = await connect({ servers: server.url });
  ncB = await connect({ servers: server.url });
  storeA = await IdempotencyStore.open(ncA, names);
  storeB = await IdempotencyStore.open(ncB, names);
});

afterAll(async () => {
  await ncA?.close();
  await ncB?.close();
  await server?.stop();
});

describe('outcomeKey', () => {
  it('encodes any call id into the KV key alphabet, reversibly', () => {
    for (const callId of ['call:1 2', 'sess/x.y*>', 'ünïcødé', 'a']) {
      const key = outcomeKey(callId);
      expect(key).toMatch(/^[-/_=.a-zA-Z0-9]+$/);
      expect(callIdOfKey(key)).toBe(callId);
    }
  });
});

describe('IdempotencyStore', () => {
  it('lets the first attempt of a call execute', async () => {
    const decision = await storeA.begin(newCallId(), claim('worker-a'));
    expect(decision.kind).toBe('execute');
  });

  it('replays the committed reply to a later attempt instead of executing again', async () => {
    const callId = newCallId();
    const reply = okReply(callId, { path: 'notes.txt', bytes: 12 });
    await expectExecute(await storeA.begin(callId, claim('worker-a'))).commit(reply);
    expect(await storeB.begin(callId, claim('worker-b'))).toEqual({ kind: 'replay', reply });
    expect(await storeA.begin(callId, claim('worker-a'))).toEqual({ kind: 'replay', reply });
  });

  it('replays a committed error reply too', async () => {
    const callId = newCallId();
    const reply: ToolReply = { type: 'tool.reply', status: 'error', callId, failure: toolFailure(ToolFailureCode.FORBIDDEN, 'read-only') };
    await expectExecute(await storeA.begin(callId, claim('worker-a'))).commit(reply);
    expect(await storeB.begin(callId, claim('worker-b'))).toEqual({ kind: 'replay', reply });
  });

  it('gives exactly one of two concurrent attempts the call; the other is busy', async () => {
    for (let i = 0; i < 5; i++) {
      const callId = newCallId();
      const deadline = Date.now() + 10_000;
      const decisions = await Promise.all([
        storeA.begin(callId, { instanceId: 'worker-a', deadline }),
        storeB.begin(callId, { instanceId: 'worker-b', deadline }),
      ]);
      const kinds = decisions.map((d) => d.kind).sort();
      expect(kinds).toEqual(['busy', 'execute']);
      const busy = decisions.find((d) => d.kind === 'busy');
      expect(busy).toMatchObject({ until: deadline });
      expect(['worker-a', 'worker-b']).toContain((busy as { heldBy: string }).heldBy);
    }
  });

  it('reports who holds a live claim and until when', async () => {
    const callId = newCallId();
    const held = claim('worker-a');
    expectExecute(await storeA.begin(callId, held));
    expect(await storeB.begin(callId, claim('worker-b'))).toEqual({ kind: 'busy', heldBy: 'worker-a', until: held.deadline });
  });

  it('takes over a claim whose deadline has passed', async () => {
    const callId = newCallId();
    const stale = expectExecute(await storeA.begin(callId, { instanceId: 'worker-dead', deadline: Date.now() - 1 }));
    const taken = expectExecute(await storeB.begin(callId, claim('worker-b')));
    const reply = okReply(callId);
    await taken.commit(reply);
    // The dead attempt's late commit loses the compare-and-set and does not overwrite.
    await expect(stale.commit(okReply(callId, 'stale'))).resolves.toBeUndefined();
    expect(await storeA.begin(callId, claim('worker-a'))).toEqual({ kind: 'replay', reply });
  });

  it('takes an expired claim whose handler never started as free, with a larger fencing token', async () => {
    const callId = newCallId();
    const first = expectExecute(await storeA.begin(callId, claim('worker-a', -1)));
    const second = expectExecute(await storeB.begin(callId, claim('worker-b')));
    expect(second.fencingToken).toBeGreaterThan(first.fencingToken);
  });

  it('puts an expired claim whose handler started in doubt, with the evidence, and never hands it out to run', async () => {
    const callId = newCallId();
    const first = expectExecute(await storeA.begin(callId, claim('worker-a', 30)));
    await first.start();
    await new Promise((r) => setTimeout(r, 60));
    const decision = await storeB.begin(callId, claim('worker-b'));
    if (decision.kind !== 'in_doubt') throw new Error(`expected in_doubt, got ${decision.kind}`);
    expect(decision.evidence).toMatchObject({ heldBy: 'worker-a' });
    expect(Date.parse(decision.evidence.startedAt)).toBeLessThanOrEqual(Date.parse(decision.evidence.claimExpiredAt));
    expect(decision.evidence.fencingToken).toBeGreaterThan(first.fencingToken);
    // Still in doubt for the next attempt: nothing was decided.
    expect((await storeA.begin(callId, claim('worker-c'))).kind).toBe('in_doubt');
  });

  it('settles an in-doubt call with the reply the tool looked up; the late owner cannot record over it', async () => {
    const callId = newCallId();
    const first = expectExecute(await storeA.begin(callId, claim('worker-a', 30)));
    await first.start();
    await new Promise((r) => setTimeout(r, 60));
    const decision = await storeB.begin(callId, claim('worker-b'));
    if (decision.kind !== 'in_doubt') throw new Error(`expected in_doubt, got ${decision.kind}`);
    const found = okReply(callId, { found: true });
    expect(await decision.settle(found)).toBe(true);
    await first.commit(okReply(callId, 'late'));
    expect(await storeA.begin(callId, claim('worker-c'))).toEqual({ kind: 'replay', reply: found });
  });

  it('hands an in-doubt call that did not happen to exactly one new owner, fenced above the old one', async () => {
    const callId = newCallId();
    const first = expectExecute(await storeA.begin(callId, claim('worker-a', 30)));
    await first.start();
    await new Promise((r) => setTimeout(r, 60));
    const seenByB = await storeB.begin(callId, claim('worker-b'));
    const seenByC = await storeA.begin(callId, claim('worker-c'));
    if (seenByB.kind !== 'in_doubt' || seenByC.kind !== 'in_doubt') throw new Error('expected both in doubt');
    const [takenByB, takenByC] = await Promise.all([seenByB.takeOver(claim('worker-b')), seenByC.takeOver(claim('worker-c'))]);
    const owners = [takenByB, takenByC].filter((d) => d !== undefined);
    expect(owners).toHaveLength(1);
    const owner = owners[0]!;
    expect(owner.fencingToken).toBeGreaterThan(seenByB.evidence.fencingToken);
    const reply = okReply(callId, 'ran again');
    await owner.commit(reply);
    await first.commit(okReply(callId, 'late'));
    expect(await storeB.begin(callId, claim('worker-d'))).toEqual({ kind: 'replay', reply });
  });

  it('counts the handler runs of a call: once when it ran once, twice when an in-doubt call was run again', async () => {
    const once = newCallId();
    expect(await storeA.handlerRuns(once)).toBeUndefined();
    const single = expectExecute(await storeA.begin(once, claim('worker-a')));
    expect(await storeA.handlerRuns(once)).toBe(0);
    await single.start();
    expect(await storeB.handlerRuns(once)).toBe(1);
    await single.commit(okReply(once));
    expect(await storeB.handlerRuns(once)).toBe(1);
    expect((await storeB.begin(once, claim('worker-b'))).kind).toBe('replay');
    expect(await storeB.handlerRuns(once)).toBe(1);

    const twice = newCallId();
    const first = expectExecute(await storeA.begin(twice, claim('worker-a', 30)));
    await first.start();
    await new Promise((r) => setTimeout(r, 60));
    const inDoubt = await storeB.begin(twice, claim('worker-b'));
    if (inDoubt.kind !== 'in_doubt') throw new Error(`expected in doubt, got ${inDoubt.kind}`);
    const again = await inDoubt.takeOver(claim('worker-b'));
    if (!again) throw new Error('expected to take the call over');
    expect(await storeA.handlerRuns(twice)).toBe(1);
    await again.start();
    await again.commit(okReply(twice, 'ran again'));
    expect(await storeA.handlerRuns(twice)).toBe(2);
  });

  it('counts an in-doubt call settled by reconcile as run once, and a released one as not recorded', async () => {
    const settled = newCallId();
    const first = expectExecute(await storeA.begin(settled, claim('worker-a', 30)));
    await first.start();
    await new Promise((r) => setTimeout(r, 60));
    const inDoubt = await storeB.begin(settled, claim('worker-b'));
    if (inDoubt.kind !== 'in_doubt') throw new Error(`expected in doubt, got ${inDoubt.kind}`);
    expect(await inDoubt.settle(okReply(settled, 'found'))).toBe(true);
    expect(await storeB.handlerRuns(settled)).toBe(1);

    const released = newCallId();
    const decision = expectExecute(await storeA.begin(released, claim('worker-a')));
    await decision.start();
    await decision.release();
    expect(await storeA.handlerRuns(released)).toBeUndefined();
  });

  it('keeps a started claim that is extended busy, not in doubt', async () => {
    const callId = newCallId();
    const first = expectExecute(await storeA.begin(callId, claim('worker-a', 30)));
    await first.start();
    await first.extend(Date.now() + 10_000);
    await new Promise((r) => setTimeout(r, 60));
    expect((await storeB.begin(callId, claim('worker-b'))).kind).toBe('busy');
  });

  it('takes over a corrupt record instead of throwing', async () => {
    const kv = await new Kvm(ncA).open(names.buckets.toolOutcomes);
    for (const garbage of ['{not json', JSON.stringify({ state: 'done', reply: { status: 'maybe' } }), '']) {
      const callId = newCallId();
      await kv.put(outcomeKey(callId), garbage);
      const decision = expectExecute(await storeA.begin(callId, claim('worker-a')));
      const reply = okReply(callId);
      await decision.commit(reply);
      expect(await storeB.begin(callId, claim('worker-b'))).toEqual({ kind: 'replay', reply });
    }
  });

  it('lets the next attempt execute after a release', async () => {
    const callId = newCallId();
    await expectExecute(await storeA.begin(callId, claim('worker-a'))).release();
    const again = expectExecute(await storeB.begin(callId, claim('worker-b')));
    const reply = okReply(callId);
    await again.commit(reply);
    expect(await storeA.begin(callId, claim('worker-a'))).toEqual({ kind: 'replay', reply });
  });

  it('handles call ids with colons, spaces and slashes', async () => {
    const callId = `session 1:turn 2/call_${newCallId()}`;
    const reply = okReply(callId);
    await expectExecute(await storeA.begin(callId, claim('worker-a'))).commit(reply);
    expect(await storeB.begin(callId, claim('worker-b'))).toEqual({ kind: 'replay', reply });
  });

  it('waitForOutcome resolves when another instance commits', async () => {
    const callId = newCallId();
    const decision = expectExecute(await storeA.begin(callId, claim('worker-a')));
    const reply = okReply(callId);
    const waiting = storeB.waitForOutcome(callId, Date.now() + 5_000);
    setTimeout(() => void decision.commit(reply), 120);
    expect(await waiting).toEqual(reply);
  });

  it('waitForOutcome resolves undefined at its deadline', async () => {
    const callId = newCallId();
    expectExecute(await storeA.begin(callId, claim('worker-a')));
    const started = Date.now();
    const until = started + 200;
    expect(await storeB.waitForOutcome(callId, until)).toBeUndefined();
    expect(Date.now()).toBeGreaterThanOrEqual(until);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('keeps the bucket and its records when opened again', async () => {
    const callId = newCallId();
    const reply = okReply(callId);
    await expectExecute(await storeA.begin(callId, claim('worker-a'))).commit(reply);
    const reopened = await IdempotencyStore.open(ncB, names);
    const reopenedAgain = await IdempotencyStore.open(ncB, names, { ttlMs: 60_000 });
    expect(await reopened.begin(callId, claim('worker-b'))).toEqual({ kind: 'replay', reply });
    expect(await reopenedAgain.begin(callId, claim('worker-b'))).toEqual({ kind: 'replay', reply });
    const status = await (await new Kvm(ncA).open(names.buckets.toolOutcomes)).status();
    expect(status.history).toBe(1);
  });
});

// Regression (chaos run with a NATS server killed): a claim's write whose answer was lost though it
// was stored (a timeout while JetStream elected a leader) left the holder behind its own record:
// marking the call started failed, so a call that never ran ended in doubt.
describe('IdempotencyStore, when the answer to a claim\'s write is lost', () => {
  it('finds its own stored write and goes on: the call starts, and its outcome is recorded', async () => {
    const callId = newCallId();
    const execute = expectExecute(await storeA.begin(callId, claim('worker-a')));
    const bucket = Object.getPrototypeOf(await new Kvm(ncA).open(names.buckets.toolOutcomes)) as { update: (...args: unknown[]) => Promise<number> };
    const realUpdate = bucket.update;
    let lost = 0;
    // Every write of this call is stored, and its answer lost.
    bucket.update = async function (this: unknown, key: unknown, ...rest: unknown[]) {
      const revision = await realUpdate.call(this, key, ...rest);
      if (key !== outcomeKey(callId)) return revision;
      lost++;
      throw new Error('TIMEOUT');
    };
    try {
      await execute.start();
      await execute.commit(okReply(callId));
    } finally {
      bucket.update = realUpdate;
    }
    expect(lost).toBe(2);
    expect(await storeB.begin(callId, claim('worker-b'))).toEqual({ kind: 'replay', reply: okReply(callId) });
  });
});
