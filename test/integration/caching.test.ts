import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorker, type ToolWorker } from '../../actors/worker/toolWorker.ts';
import { defineAgent } from '../../agents/defineAgent.ts';
import { startSession } from '../../client/sessionClient.ts';
import { calcTools } from '../../domains/calc/calcTools.ts';
import type { ToolDefinition } from '../../tools/defineTool.ts';
import { costOfCall, defaultPriceTable, priceOf } from '../../models/priceTable.ts';
import type { SessionEvent, SessionFinished } from '../../transport/messages.ts';
import { startInProcessStack, type InProcessStack } from '../fixtures/inProcessStack.ts';
import { testNamespace } from '../fixtures/testNamespace.ts';

const namespace = testNamespace();

describe('caching model requests and tool calls', () => {
  let stack: InProcessStack;
  let worker: ToolWorker;
  let executions = 0;

  beforeAll(async () => {
    stack = await startInProcessStack();
    // Counts what really runs, so a cached answer is seen not to.
    const tools = calcTools().map((tool): ToolDefinition => ({ ...tool, handler: (input, context) => ((executions += 1), tool.handler(input, context)) }));
    worker = await startWorker({ namespace, domain: 'calc', tools, nats: await stack.connection('calc') });
    const orchestrator = await stack.startOrchestrator({
      agents: [
        defineAgent({ name: 'thrifty', instructions: 'You compute.', caching: { modelRequests: { scope: 'agent', ttlMs: 60_000 }, toolCalls: { scope: 'session' } } }),
        defineAgent({ name: 'plain', instructions: 'You compute.' }),
      ],
    });
    // A request names the tools on offer: identical requests need the same catalog, so wait until it is complete.
    await orchestrator.catalog.waitFor(['calc_evaluate', 'results_fetch'], 10_000);
  }, 60_000);

  afterAll(async () => {
    await worker?.stop();
    await stack?.stop();
  });

  async function run(agent: string): Promise<{ events: SessionEvent[]; finished: SessionFinished }> {
    const session = await startSession(await stack.connection(`client-${agent}`), { namespace, task: '[cached-lookups] What is 6 * 7?', agent });
    const events: SessionEvent[] = [];
    for await (const event of session.events) events.push(event);
    return { events, finished: await session.finished };
  }

  it('answers a repeated idempotent call within a session from the cache, and says so', async () => {
    executions = 0;
    const { events, finished } = await run('thrifty');
    expect(finished).toMatchObject({ status: 'completed', output: '6 * 7 = 42' });
    const calls = events.filter((e) => e.type === 'tool.call.finished');
    expect(calls.map((c) => c.cached ?? false)).toEqual([false, true]);
    expect(executions).toBe(1);
    expect(finished.cache).toEqual({ modelHits: 0, toolHits: 1, savedUsd: 0 });
  });

  it('answers an agent\'s identical model requests from the cache across sessions, spending nothing on them', async () => {
    executions = 0;
    const { events, finished } = await run('thrifty');
    const responded = events.filter((e) => e.type === 'model.responded');
    expect(responded.map((r) => r.cached ?? false)).toEqual([true, true, true]);
    const price = priceOf('scripted', defaultPriceTable);
    const firstCost = [[100, 10], [150, 10], [200, 10]].reduce((n, [i, o]) => n + costOfCall(price, { inputTokens: i as number, outputTokens: o as number }), 0);
    expect(finished.usage).toEqual({ inputTokens: 0, outputTokens: 0, costUsd: 0 });
    expect(finished.cache?.modelHits).toBe(3);
    expect(finished.cache?.savedUsd).toBeCloseTo(firstCost, 12);
    // Tool calls are cached per session: the new session runs the first one again.
    expect(executions).toBe(1);
  });

  it('caches nothing for an agent that does not ask for it', async () => {
    executions = 0;
    const { events, finished } = await run('plain');
    expect(events.filter((e) => e.type === 'model.responded').every((r) => !r.cached)).toBe(true);
    expect(executions).toBe(2);
    expect(finished.cache).toBeUndefined();
    expect(finished.usage.inputTokens).toBe(450);
  });
});
