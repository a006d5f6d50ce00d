import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { startWorker, type ToolWorker } from '../../actors/worker/toolWorker.ts';
import { defineAgent } from '../../agents/defineAgent.ts';
import { answerSession, startSession } from '../../client/sessionClient.ts';
import { calcTools } from '../../domains/calc/calcTools.ts';
import { defineTool } from '../../tools/defineTool.ts';
import { ToolError, ToolFailureCode } from '../../tools/toolFailure.ts';
import { decodeSessionEvents, type SessionEvent } from '../../transport/messages.ts';
import { startInProcessStack, type InProcessStack } from '../fixtures/inProcessStack.ts';
import { wireNames } from '../../transport/subjects.ts';
import { testNamespace } from '../fixtures/testNamespace.ts';
import { ofType } from '../fixtures/eventsOfType.ts';

const namespace = testNamespace();


async function run(stack: InProcessStack, task: string) {
  const session = await startSession(await stack.connection('client'), { namespace, task });
  const events: SessionEvent[] = [];
  for await (const event of session.events) events.push(event);
  return { session, events, finished: await session.finished };
}

describe('recovery from model and tool failures (real NATS, scripted model over HTTP)', () => {
  let stack: InProcessStack;
  const workers: ToolWorker[] = [];
  let primaryHealthy = false;
  let primaryCalls = 0;

  const primaryLookup = defineTool({
    name: 'primary_lookup',
    description: 'Looks a key up in the primary store.',
    input: z.object({ key: z.string() }),
    output: z.object({ value: z.string() }),
    retry: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 20 },
    fallbacks: ['backup_lookup'],
    handler: () => {
      primaryCalls += 1;
      if (!primaryHealthy) throw new ToolError(ToolFailureCode.UNAVAILABLE, 'the primary store is down');
      return { value: 'from primary' };
    },
  });
  const backupLookup = defineTool({
    name: 'backup_lookup',
    description: 'Looks a key up in the backup store.',
    input: z.object({ key: z.string() }),
    output: z.object({ value: z.string() }),
    handler: () => ({ value: 'from backup' }),
  });

  beforeAll(async () => {
    stack = await startInProcessStack();
    for (const [domain, tools] of [['calc', calcTools()], ['primary', [primaryLookup]], ['backup', [backupLookup]]] as const) {
      workers.push(await startWorker({ namespace, domain, tools: [...tools], nats: await stack.connection(`worker-${domain}`) }));
    }
    await stack.startOrchestrator({
      agents: [defineAgent({
        name: 'assistant',
        instructions: 'test',
        fallbackModels: ['backup-model'],
        modelRetry: { maxAttempts: 3, initialDelayMs: 10, maxDelayMs: 50 },
      })],
      circuitBreaker: { failureThreshold: 4, cooldownMs: 300 },
    });
  });

  afterAll(async () => {
    for (const worker of workers) await worker.stop();
    await stack?.stop();
  });

  it('retries a rate-limited model call, honouring Retry-After, and completes', async () => {
    const { finished, events } = await run(stack, 'Please survive a rate limit.');
    expect(finished).toMatchObject({ status: 'completed', output: 'answered after two 429s' });
    const retries = ofType(events, 'model.retrying');
    expect(retries.map((r) => [r.attempt, r.retryAfter, r.delayMs])).toEqual([[2, true, 0], [3, true, 0]]);
    expect(retries[0]?.error).toContain('HTTP 429');
  });

  it('falls back to the next model when the first keeps failing', async () => {
    const { finished, events } = await run(stack, 'Please fall back to another model.');
    expect(finished).toMatchObject({ status: 'completed', output: 'answered by the fallback model' });
    expect(ofType(events, 'model.retrying').map((r) => r.model)).toEqual(['scripted', 'scripted']);
    expect(ofType(events, 'model.fallback')).toEqual([expect.objectContaining({ from: 'scripted', to: 'backup-model' })]);
    expect(ofType(events, 'model.responded')[0]?.model).toBe('backup-model');
  });

  it('fails with the last reason when every model in the chain keeps failing', async () => {
    const { finished, events } = await run(stack, 'Please fail on every model.');
    expect(finished).toMatchObject({ status: 'failed', stopReason: 'model call failed' });
    expect(finished.error).toBe('Every model (scripted, backup-model) failed: HTTP 500 every model is down');
    expect(ofType(events, 'model.retrying')).toHaveLength(4);
  });

  it('sends malformed output back to the model until it repairs it, every tool call answered once', async () => {
    const { finished, events } = await run(stack, 'Please repair malformed output.');
    expect(finished).toMatchObject({ status: 'completed', output: '1 + 1 = 2; the bad call got INVALID_INPUT, the unknown one UNKNOWN_TOOL' });
    expect(ofType(events, 'session.repair').map((r) => [r.turn, r.consecutive])).toEqual([[1, 1], [2, 2], [3, 3]]);
    expect(ofType(events, 'tool.call.rejected').map((r) => r.failure.code)).toEqual(['INVALID_INPUT', 'UNKNOWN_TOOL']);
  });

  it('answers every call of a reply with more tool calls than maxToolCallsPerTurn with the limit, runs none, and goes on', async () => {
    const { finished, events } = await run(stack, 'Please make too many tool calls.');
    expect(finished).toMatchObject({ status: 'completed', output: 'the nine got INVALID_INPUT; the one got 3' });
    expect(ofType(events, 'tool.call.started').map((e) => e.arguments)).toEqual([{ expression: '1 + 2' }]);
    expect(ofType(events, 'session.repair').map((r) => [r.turn, r.consecutive, r.reason])).toEqual([[1, 1, 'calc_evaluate: INVALID_INPUT (maxToolCallsPerTurn)']]);
  });

  it('runs the first of two calls sharing a tool-call id and answers the second under an id of its own', async () => {
    const { finished, events } = await run(stack, 'Please reuse a tool call id.');
    expect(finished).toMatchObject({ status: 'completed', output: 'the first got 4, the second INVALID_INPUT' });
    expect(ofType(events, 'tool.call.started').map((e) => e.arguments)).toEqual([{ expression: '2 + 2' }]);
    expect(ofType(events, 'tool.call.finished')).toHaveLength(1);
  });

  it('refocuses a looping session, then parks it as escalated; a person’s answer resumes it', async () => {
    const nc = await stack.connection('client-loop');
    const session = await startSession(nc, { namespace, task: 'Please go round in circles.' });
    const events: SessionEvent[] = [];
    for await (const event of session.events) events.push(event);
    const parked = await session.finished;
    expect(parked).toMatchObject({ status: 'escalated', steps: 6 });
    expect(parked.stopReason).toContain('You called calc_evaluate with {"expression":"1 + 1"} 3 times');
    expect(ofType(events, 'loop.detected').map((l) => [l.turn, l.action])).toEqual([[3, 'refocus'], [6, 'escalate']]);

    // The session waits; a person answers and it goes on to completion.
    const resumed: SessionEvent[] = [];
    const done = new Promise<void>((resolve) => {
      const sub = nc.subscribe(wireNames(namespace).subjects.sessionEvents(session.sessionId), {
        callback: (_e, msg) => {
          for (const event of decodeSessionEvents(msg.data, 'an event').events) {
            resumed.push(event);
            if (event.type === 'session.finished') {
              sub.unsubscribe();
              resolve();
            }
          }
        },
      });
    });
    await nc.flush();
    expect(await answerSession(nc, session.sessionId, 'Stop computing; report what you have.', { namespace })).toMatchObject({ accepted: true });
    await done;
    expect(resumed.at(-1)).toMatchObject({ type: 'session.finished', status: 'completed', output: "resumed with the person's answer" });
    expect(await answerSession(nc, session.sessionId, 'too late', { namespace })).toMatchObject({ accepted: false });
  });

  it('falls back to another tool when one is unavailable, then opens its circuit and fails fast', async () => {
    primaryHealthy = false;
    primaryCalls = 0;
    const first = await run(stack, 'Please use the primary lookup.');
    expect(first.finished).toMatchObject({ status: 'completed', output: 'lookup said from backup' });
    expect(ofType(first.events, 'tool.call.retrying')).toHaveLength(1);
    expect(ofType(first.events, 'tool.call.fallback')).toEqual([expect.objectContaining({ from: 'primary_lookup', to: 'backup_lookup' })]);
    expect(ofType(first.events, 'tool.call.finished')[0]).toMatchObject({ status: 'ok', servedBy: 'backup_lookup', attempts: 3 });

    // Two more failures reach the threshold (4): the circuit opens.
    const second = await run(stack, 'Please use the primary lookup.');
    expect(ofType(second.events, 'tool.breaker.changed')).toEqual([expect.objectContaining({ tool: 'primary_lookup', from: 'closed', to: 'open' })]);

    // Open: the call never reaches the pool, and goes straight to the fallback.
    const callsBefore = primaryCalls;
    const third = await run(stack, 'Please use the primary lookup.');
    expect(primaryCalls).toBe(callsBefore);
    expect(ofType(third.events, 'tool.call.fallback')[0]?.failure.message).toContain('circuit is open');
    expect(third.finished.output).toBe('lookup said from backup');

    // The pool recovers; after the cooldown one probe closes the circuit again.
    primaryHealthy = true;
    await new Promise((resolve) => setTimeout(resolve, 400));
    const fourth = await run(stack, 'Please use the primary lookup.');
    expect(fourth.finished.output).toBe('lookup said from primary');
    expect(ofType(fourth.events, 'tool.breaker.changed')).toEqual([expect.objectContaining({ from: 'probing', to: 'closed' })]);
  });
});
