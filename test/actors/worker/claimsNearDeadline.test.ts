import { ROOT_CONTEXT } from '@opentelemetry/api';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { IdempotencyStore, type ExecuteDecision } from '../../../actors/durability/idempotencyStore.ts';
import { executeOnceOnly } from '../../../actors/worker/onceOnlyExecution.ts';
import { silentLogger } from '../../../observability/logger.ts';
import { defineTool, notDone, type ToolContext } from '../../../tools/defineTool.ts';
import type { ToolRequest } from '../../../transport/messages.ts';
import { startNatsServer, type NatsServerProcess } from '../../../testing/natsServer.ts';
import { testWireNames } from '../../fixtures/testNamespace.ts';

const names = testWireNames();
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Effects by call id, as a payments table outside the worker would hold them. */
const effects = new Map<string, number>();
let handlerMs = 0;
const pay = defineTool({
  name: 'pay_slowly', description: 'Pays; can look a payment up by call id.', sideEffects: true,
  input: z.object({ amount: z.number() }), output: z.object({ paid: z.number() }),
  handler: async (input, context: ToolContext) => {
    if (handlerMs > 0) await sleep(handlerMs);
    effects.set(context.callId, (effects.get(context.callId) ?? 0) + 1);
    return { paid: input.amount };
  },
  reconcile: (input, context) => (effects.has(context.callId) ? { paid: input.amount } : notDone),
});

let server: NatsServerProcess;
let nc: NatsConnection;
let store: IdempotencyStore;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  store = await IdempotencyStore.open(nc, names);
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

/**
 * The store, except that the answer to marking a claim started arrives `lateMs` after it was stored, and
 * the claim's later writes wait for that answer: a leader election while the handler was about to start.
 */
const withLateStartAnswers = (lateMs: number): IdempotencyStore => {
  const late = Object.create(store) as IdempotencyStore;
  late.begin = async (callId, claim) => {
    const decision = await store.begin(callId, claim);
    if (decision.kind !== 'execute') return decision;
    let startAnswered: Promise<void> = Promise.resolve();
    const slowed: ExecuteDecision = {
      ...decision,
      start: () => (startAnswered = decision.start().then(() => sleep(lateMs))),
      extend: async (until) => {
        await startAnswered;
        await decision.extend(until);
      },
    };
    return slowed;
  };
  return late;
};

const attempt = (callId: string, instanceId: string, deadlineInMs: number, outcomes: IdempotencyStore) => {
  const request: ToolRequest = { type: 'tool.request', sessionId: 'session-near-deadline', callId, tool: pay.name, arguments: { amount: 7 }, deadline: Date.now() + deadlineInMs };
  return executeOnceOnly({
    store: outcomes, tool: pay, request, instanceId, logger: silentLogger(), cancel: new AbortController().signal, trace: ROOT_CONTEXT, fit: (reply) => reply,
  });
};

describe('a side-effecting call near its deadline', () => {
  it('never starts its handler once the deadline passed while its claim was being marked started, so a retry elsewhere runs it once', async () => {
    handlerMs = 0;
    const callId = `late-start-${Math.random().toString(36).slice(2)}`;
    // The first worker's "started" is stored, but its answer comes only after the deadline.
    const first = attempt(callId, 'worker-a', 300, withLateStartAnswers(900));
    await sleep(500);
    // The caller was told TIMEOUT and retries on another worker: the started claim has lapsed, so it is in doubt,
    // and reconcile finds no effect yet, so the retry runs the call.
    const retry = await attempt(callId, 'worker-b', 3_000, store);
    expect(retry, JSON.stringify(retry)).toMatchObject({ status: 'ok', result: { paid: 7 } });
    const firstReply = await first;
    expect(firstReply).toMatchObject({ status: 'error', failure: { code: 'TIMEOUT' } });
    await sleep(300);
    expect(effects.get(callId), 'times the handler ran').toBe(1);
  });

  it('keeps the claim of a handler still running before its deadline passes, so a retry waits for it instead of putting it in doubt', async () => {
    handlerMs = 2_000;
    const callId = `long-handler-${Math.random().toString(36).slice(2)}`;
    const deadlineInMs = 1_500;
    const first = attempt(callId, 'worker-a', deadlineInMs, store);
    await sleep(deadlineInMs - 200);
    const seen = await store.begin(callId, { instanceId: 'worker-b', deadline: Date.now() + 3_000 });
    expect(seen.kind).toBe('busy');
    expect(seen.kind === 'busy' && seen.until).toBeGreaterThan(Date.now() + 60_000);
    await first;
    await sleep(handlerMs);
    expect(effects.get(callId)).toBe(1);
    expect(await attempt(callId, 'worker-b', 3_000, store)).toMatchObject({ status: 'ok', result: { paid: 7 } });
    expect(effects.get(callId)).toBe(1);
  });
});
