import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { IdempotencyStore } from '../../../actors/durability/idempotencyStore.ts';
import { startWorker, type ToolWorker } from '../../../actors/worker/toolWorker.ts';
import { defineTool, notDone, type ToolContext } from '../../../tools/defineTool.ts';
import { ToolReply, type ToolRequest } from '../../../transport/messages.ts';
import { startNatsServer, type NatsServerProcess } from '../../../testing/natsServer.ts';
import { testWireNames } from '../../fixtures/testNamespace.ts';

const names = testWireNames();
const encoder = new TextEncoder();

/**
 * A ledger outside the worker, as a real tool would write to: the effects by call id, and the
 * fencing token each write carried.
 */
const ledger = new Map<string, { amount: number; fencingToken: number | undefined }[]>();
const record = (input: { amount: number }, context: ToolContext) => {
  const entries = ledger.get(context.callId) ?? [];
  entries.push({ amount: input.amount, fencingToken: context.fencingToken });
  ledger.set(context.callId, entries);
  return { recorded: input.amount };
};

const plainPay = defineTool({
  name: 'pay_plain', description: 'Pays; cannot look a payment up.', sideEffects: true,
  input: z.object({ amount: z.number() }), output: z.object({ recorded: z.number() }), handler: record,
});
const lookedUpPay = defineTool({
  name: 'pay_lookedup', description: 'Pays; can look a payment up by call id.', sideEffects: true,
  input: z.object({ amount: z.number() }), output: z.object({ recorded: z.number() }), handler: record,
  reconcile: (input, context) => (ledger.has(context.callId) ? { recorded: input.amount } : notDone),
});
const brokenLookupPay = defineTool({
  name: 'pay_brokenlookup', description: 'Pays; its lookup fails.', sideEffects: true,
  input: z.object({ amount: z.number() }), output: z.object({ recorded: z.number() }), handler: record,
  reconcile: () => {
    throw new Error('the payments API is down');
  },
});

let server: NatsServerProcess;
let nc: NatsConnection;
let store: IdempotencyStore;
const workers: ToolWorker[] = [];

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  store = await IdempotencyStore.open(nc, names);
  workers.push(await startWorker({ domain: 'pay', tools: [plainPay, lookedUpPay, brokenLookupPay], nats: nc, namespace: names.namespace, idempotency: store }));
});

afterAll(async () => {
  for (const worker of workers) await worker.stop();
  await nc?.close();
  await server?.stop();
});

let counter = 0;
const newCallId = () => `doubt-${++counter}-${Math.random().toString(36).slice(2)}`;

/** What a worker that died mid-handler leaves: a started claim past its deadline (and, when `happened`, the effect). */
async function leaveInDoubt(callId: string, happened: boolean): Promise<number> {
  const decision = await store.begin(callId, { instanceId: 'worker-that-died', deadline: Date.now() + 20 });
  if (decision.kind !== 'execute') throw new Error(`expected to claim ${callId}, got ${decision.kind}`);
  await decision.start();
  if (happened) ledger.set(callId, [{ amount: 5, fencingToken: decision.fencingToken }]);
  await new Promise((r) => setTimeout(r, 50));
  return decision.fencingToken;
}

async function pay(tool: string, callId: string, amount = 5): Promise<ToolReply> {
  const request: ToolRequest = { type: 'tool.request', sessionId: 'session-doubt', callId, tool, arguments: { amount }, deadline: Date.now() + 5_000 };
  const msg = await nc.request(names.subjects.tool('pay', tool), encoder.encode(JSON.stringify(request)), { timeout: 5_000 });
  return ToolReply.parse(JSON.parse(new TextDecoder().decode(msg.data)));
}

describe('a side-effecting call whose worker died after starting its handler', () => {
  it('ends IN_DOUBT with the evidence when the tool cannot look the effect up, and does not run again', async () => {
    const callId = newCallId();
    await leaveInDoubt(callId, true);
    const reply = await pay('pay_plain', callId);
    expect(reply).toMatchObject({ status: 'error', failure: { code: 'IN_DOUBT', retryable: false } });
    if (reply.status !== 'error') throw new Error('unreachable');
    expect(reply.failure.details).toMatchObject({ callId, tool: 'pay_plain', heldBy: 'worker-that-died', arguments: { amount: 5 } });
    expect(reply.failure.message).toContain('Do not repeat it');
    // Asked again, it is still in doubt and still not run.
    expect((await pay('pay_plain', callId)).status).toBe('error');
    expect(ledger.get(callId)).toHaveLength(1);
  });

  it('is settled by reconcile when the effect happened: the result is recorded and replayed, the handler never runs again', async () => {
    const callId = newCallId();
    await leaveInDoubt(callId, true);
    expect(await pay('pay_lookedup', callId)).toEqual({ type: 'tool.reply', status: 'ok', callId, result: { recorded: 5 } });
    expect(await pay('pay_lookedup', callId)).toEqual({ type: 'tool.reply', status: 'ok', callId, result: { recorded: 5 } });
    expect(ledger.get(callId)).toHaveLength(1);
  });

  it('runs once more when reconcile says it did not happen, under a fencing token above the dead owner\'s', async () => {
    const callId = newCallId();
    const deadOwnersToken = await leaveInDoubt(callId, false);
    expect(await pay('pay_lookedup', callId)).toMatchObject({ status: 'ok', result: { recorded: 5 } });
    const effects = ledger.get(callId) ?? [];
    expect(effects).toHaveLength(1);
    expect(effects[0]?.fencingToken).toBeGreaterThan(deadOwnersToken);
    // Recorded: a retry replays it.
    expect(await pay('pay_lookedup', callId)).toMatchObject({ status: 'ok' });
    expect(ledger.get(callId)).toHaveLength(1);
  });

  it('stays in doubt when reconcile itself fails, saying why', async () => {
    const callId = newCallId();
    await leaveInDoubt(callId, true);
    const reply = await pay('pay_brokenlookup', callId);
    expect(reply).toMatchObject({ status: 'error', failure: { code: 'IN_DOUBT', details: { reason: expect.stringContaining('the payments API is down') } } });
    expect(ledger.get(callId)).toHaveLength(1);
  });

  it('is run normally when the dead worker had only claimed it (the handler never started)', async () => {
    const callId = newCallId();
    const decision = await store.begin(callId, { instanceId: 'worker-that-died', deadline: Date.now() + 20 });
    expect(decision.kind).toBe('execute');
    await new Promise((r) => setTimeout(r, 50));
    expect(await pay('pay_plain', callId)).toMatchObject({ status: 'ok', result: { recorded: 5 } });
    expect(ledger.get(callId)).toHaveLength(1);
  });

  it('hands every handler of a side-effecting call a fencing token', async () => {
    const callId = newCallId();
    await pay('pay_plain', callId);
    expect(ledger.get(callId)?.[0]?.fencingToken).toEqual(expect.any(Number));
  });
});

describe('defineTool with reconcile', () => {
  it('refuses reconcile on a tool without side effects', () => {
    expect(() => defineTool({
      name: 'pay_read', description: 'Reads.', input: z.object({}), output: z.object({}), handler: () => ({}), reconcile: () => notDone,
    })).toThrow(/reconcile but no side effects/);
  });
});
