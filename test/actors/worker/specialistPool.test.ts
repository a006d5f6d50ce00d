import type { NatsConnection } from '@nats-io/transport-node';
import OpenAI from 'openai';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSpecialistPool, type SpecialistPool } from '../../../actors/worker/specialistPool.ts';
import { defineAgent } from '../../../agents/defineAgent.ts';
import type { Delegation } from '../../../machines/delegation.ts';
import { defaultPriceTable } from '../../../models/priceTable.ts';
import { ToolReply, type ToolRequest } from '../../../transport/messages.ts';
import { wireNames } from '../../../transport/subjects.ts';
import { decodeWireMessage } from '../../../transport/wireMessage.ts';
import { startInProcessStack, type InProcessStack } from '../../fixtures/inProcessStack.ts';

// Own budgets far above anything a test's delegation allows, so every cap seen comes from the delegation.
const helper = defineAgent({
  name: 'helper',
  instructions: 'You answer small questions.',
  budgets: { maxSteps: 50, maxTotalTokens: 1_000_000, maxCostUsd: 100, maxWallClockMs: 600_000 },
});

describe('startSpecialistPool', () => {
  let stack: InProcessStack;
  let nc: NatsConnection;
  let pool: SpecialistPool;
  let modelCalls = 0;
  const logLines: Array<Record<string, unknown>> = [];

  const validDelegation = (callId: string, overrides: Partial<Delegation> = {}): Delegation => ({
    sessionId: `delegation-${callId}`, parentSessionId: 'parent-session', depth: 1, depthLeft: 0,
    limits: { maxSteps: 5, maxTotalTokens: 50_000, maxCostUsd: 1, deadline: Date.now() + 60_000 },
    ...overrides,
  });
  let calls = 0;
  /** Sends a request body as it would arrive on the specialist's subject, and decodes the reply. */
  const delegate = async (shape: (request: ToolRequest) => unknown): Promise<ToolReply> => {
    const callId = `call_${++calls}`;
    const request: ToolRequest = {
      type: 'tool.request', sessionId: 'parent-session', callId, tool: 'delegate_helper',
      arguments: { task: '[analyst-light] Say hello.' }, deadline: Date.now() + 60_000, delegation: validDelegation(callId),
    };
    const msg = await nc.request(wireNames(stack.namespace).subjects.delegation('helper'), new TextEncoder().encode(JSON.stringify(shape(request))), { timeout: 30_000 });
    const decoded = decodeWireMessage(ToolReply, msg.data, 'the specialist reply');
    if (!decoded.ok) throw new Error(decoded.error);
    return decoded.value;
  };
  const sessionsTaken = () => logLines.filter((line) => line.msg === 'delegated task taken by helper');

  beforeAll(async () => {
    stack = await startInProcessStack();
    nc = await stack.connection('client');
    // Every model request is counted on its way to the scripted model: a refused delegation makes none.
    const countingFetch: typeof fetch = (input, init) => {
      modelCalls += 1;
      return fetch(input, init);
    };
    pool = await startSpecialistPool({
      agent: helper, nats: await stack.connection('specialist-helper'), namespace: stack.namespace, defaultModel: 'scripted', discoveryIntervalMs: 60_000,
      model: { client: new OpenAI({ baseURL: stack.modelUrl, apiKey: 'test', maxRetries: 0, fetch: countingFetch }), providerName: 'openai', prices: defaultPriceTable },
      logger: pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) }),
    });
  });
  afterAll(async () => {
    await pool?.stop({ graceMs: 0 });
    await stack?.stop();
  });
  beforeEach(() => {
    modelCalls = 0;
    logLines.length = 0;
  });

  // Regression: a call without a delegation ran a whole session on the specialist's own budgets.
  it('refuses a call without a delegation with FORBIDDEN, before any session starts', async () => {
    const reply = await delegate(({ delegation: _dropped, ...request }) => request);
    expect(reply).toMatchObject({ status: 'error', failure: { code: 'FORBIDDEN', retryable: false } });
    expect(sessionsTaken()).toEqual([]);
    expect(modelCalls).toBe(0);
  });

  it('refuses malformed delegations with INVALID_INPUT (missing, negative, fractional or non-number limits), before any session starts', async () => {
    const limitsWith = (change: (limits: Record<string, unknown>) => void) => (request: ToolRequest) => {
      const limits: Record<string, unknown> = { ...request.delegation?.limits };
      change(limits);
      return { ...request, delegation: { ...request.delegation, limits } };
    };
    const malformed = [
      limitsWith((l) => delete l.maxCostUsd),
      limitsWith((l) => delete l.deadline),
      limitsWith((l) => (l.maxSteps = -1)),
      limitsWith((l) => (l.maxTotalTokens = 1.5)),
      // What NaN and Infinity become in JSON.
      limitsWith((l) => (l.maxCostUsd = null)),
      limitsWith((l) => (l.maxSteps = '5')),
      limitsWith((l) => (l.deadline = 0)),
      (request: ToolRequest) => ({ ...request, delegation: { ...request.delegation, limits: undefined } }),
      (request: ToolRequest) => ({ ...request, delegation: { ...request.delegation, depth: 0 } }),
      (request: ToolRequest) => ({ ...request, delegation: {} }),
    ];
    for (const shape of malformed) {
      const reply = await delegate(shape);
      expect(reply, JSON.stringify(shape({ delegation: validDelegation('x') } as ToolRequest))).toMatchObject({ status: 'error', failure: { code: 'INVALID_INPUT' } });
    }
    expect(sessionsTaken()).toEqual([]);
    expect(modelCalls).toBe(0);
  });

  it('refuses a delegation made out for another session than the calling one', async () => {
    const reply = await delegate((request) => ({ ...request, delegation: { ...request.delegation, parentSessionId: 'someone-else' } }));
    expect(reply).toMatchObject({ status: 'error', failure: { code: 'INVALID_INPUT', message: expect.stringContaining('someone-else') } });
    expect(sessionsTaken()).toEqual([]);
    expect(modelCalls).toBe(0);
  });

  it('refuses with TIMEOUT, before any session starts, a call whose deadline leaves the specialist no time to answer', async () => {
    const reply = await delegate((request) => ({ ...request, deadline: Date.now() + 2_000 }));
    expect(reply).toMatchObject({ status: 'error', failure: { code: 'TIMEOUT', retryable: false } });
    expect(sessionsTaken()).toEqual([]);
    expect(modelCalls).toBe(0);
  });

  it('caps the specialist at the delegation\'s limits: with no step left it stops before its first model call', async () => {
    const reply = await delegate((request) => ({ ...request, delegation: { ...request.delegation, limits: { ...request.delegation?.limits, maxSteps: 0 } } }));
    expect(reply).toMatchObject({
      status: 'error', failure: { code: 'SPECIALIST_FAILED', details: { status: 'budget_exhausted', budget: 'maxSteps', cappedByParent: true, steps: 0 } },
      spent: { steps: 0, usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 } },
    });
    expect(sessionsTaken()[0]).toMatchObject({ budgets: { maxSteps: 0, maxTotalTokens: 50_000, maxCostUsd: 1 } });
    expect(modelCalls).toBe(0);
  });

  it('keeps the wall clock within the request\'s deadline when the delegating session\'s own deadline has passed', async () => {
    const sent = Date.now();
    const reply = await delegate((request) => ({
      ...request, deadline: sent + 8_000, delegation: { ...request.delegation, limits: { ...request.delegation?.limits, deadline: sent - 60_000 } },
    }));
    expect(reply).toMatchObject({ status: 'ok', result: { agent: 'helper', answer: 'Hello from the analyst.' }, spent: { steps: 1 } });
    // Its own 600 s, lowered to the 8 s the call allows less the 5 s its answer needs to travel back.
    const budgets = sessionsTaken()[0]?.budgets as { maxWallClockMs: number };
    expect(budgets.maxWallClockMs).toBeGreaterThan(0);
    expect(budgets.maxWallClockMs).toBeLessThanOrEqual(3_000);
    expect(modelCalls).toBe(1);
  });
});
