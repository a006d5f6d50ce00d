import { createServer, type ServerResponse } from 'node:http';
import { trace, ROOT_CONTEXT } from '@opentelemetry/api';
import type { NatsConnection } from '@nats-io/transport-node';
import OpenAI from 'openai';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActor, fromPromise, toPromise } from 'xstate';
import { createModelCaller } from '../../../actors/model/modelCall.ts';
import { SessionEventPublisher } from '../../../actors/session/sessionEvents.ts';
import { SessionTrace } from '../../../actors/session/sessionTrace.ts';
import { RetryPolicy } from '../../../machines/retryPolicy.ts';
import { ContextSettings } from '../../../machines/contextAssembly.ts';

/** The context fields of a model call's input: nothing summarised yet, default settings. */
const contextOf = () => ({ summary: null, ledger: [], contextSettings: ContextSettings.parse({}), calibration: 1, offer: null });
import type { SessionEvent } from '../../../transport/messages.ts';
import type { CallModelInput } from '../../../machines/sessionProtocol.ts';
import { wireNames } from '../../../transport/subjects.ts';

/**
 * A stream that stalls mid-answer is the case an OpenAI-compatible endpoint can produce and the
 * scripted model cannot: this server streams two chunks on the first request and then goes quiet.
 */
describe('createModelCaller against an endpoint that stalls mid-stream', () => {
  let url = '';
  let requests = 0;
  const open: ServerResponse[] = [];
  const server = createServer((req, res) => {
    requests += 1;
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const chunk = (delta: object, extra: object = {}) =>
      res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'stally', choices: [{ index: 0, delta, finish_reason: null }], ...extra })}\n\n`);
    if (requests === 1) {
      chunk({ role: 'assistant', content: 'The answer is par' });
      chunk({ content: 'tly written and then' });
      open.push(res);
      return;
    }
    chunk({ role: 'assistant', content: 'The answer is 42.' });
    res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'stally', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
    res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'stally', choices: [], usage: { prompt_tokens: 100, completion_tokens: 10, total_tokens: 110 } })}\n\n`);
    res.end('data: [DONE]\n\n');
  });

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/v1`;
  });
  afterAll(async () => {
    for (const res of open) res.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  function callerPublishingTo(published: SessionEvent[]) {
    const nc = { publish: (_subject: string, data: string) => void published.push(JSON.parse(data) as SessionEvent) } as unknown as NatsConnection;
    const logger = pino({ level: 'silent' });
    return fromPromise(createModelCaller({
      endpoint: { client: new OpenAI({ baseURL: url, apiKey: 'x' }), providerName: 'test', prices: { stally: { inputPerMTok: 1_000_000, outputPerMTok: 1_000_000 } }, timeouts: { idleMs: 200 } },
      tools: () => [],
      trace: new SessionTrace(trace.getTracer('test'), ROOT_CONTEXT, { sessionId: 's', agentName: 'a', model: 'stally' }),
      events: new SessionEventPublisher(nc, wireNames(), 's', logger),
      tracer: trace.getTracer('test'),
      logger,
      usageSoFar: () => ({ inputTokens: 0, outputTokens: 0, costUsd: 0 }),
      retry: RetryPolicy.parse({ maxAttempts: 2, initialDelayMs: 0 }),
    }));
  }

  it('aborts the quiet stream, retries, and counts the tokens the failed attempt had streamed', async () => {
    const published: SessionEvent[] = [];
    const caller = callerPublishingTo(published);
    const actor = createActor(caller, { input: { sessionId: 's', turn: 1, model: 'stally', fallbackModels: [], messages: [{ role: 'user', content: 'hi' }], ...contextOf() } });
    actor.start();
    const response = await toPromise(actor);
    expect(requests).toBe(2);
    expect(response.content).toBe('The answer is 42.');
    // Reported usage of the second attempt plus an estimate for the first one's streamed text.
    expect(response.usage.inputTokens).toBeGreaterThan(100);
    expect(response.usage.outputTokens).toBeGreaterThan(10);
    expect(response.costUsd).toBeCloseTo(response.usage.inputTokens + response.usage.outputTokens, 6);
    const retry = published.find((e) => e.type === 'model.retrying');
    expect(retry).toMatchObject({ attempt: 2, error: 'stally sent nothing for 200 ms' });
  });

  it('runs a call restored from a checkpoint written before the context budget, with the default settings', async () => {
    const published: SessionEvent[] = [];
    // What a version-1 checkpoint's in-flight call carries: no summary, ledger, settings or calibration.
    const restored = { sessionId: 's', turn: 1, model: 'stally', fallbackModels: [], messages: [{ role: 'user', content: 'hi' }] } as unknown as CallModelInput;
    const response = await toPromise(createActor(callerPublishingTo(published), { input: restored }).start());
    expect(response.content).toBe('The answer is 42.');
    expect(published.find((e) => e.type === 'context.assembled')).toMatchObject({ breakdown: { outputHeadroom: 4_096 } });
  });
});

/**
 * Some OpenAI-compatible endpoints stream each tool call whole, in one delta without an `index`.
 * The scripted model always numbers its deltas, so this server plays such an endpoint.
 */
describe('createModelCaller against an endpoint whose tool-call deltas carry no index', () => {
  let url = '';
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const chunk = (delta: object, finishReason: string | null = null) =>
      res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'unindexed', choices: [{ index: 0, delta, finish_reason: finishReason }] })}\n\n`);
    chunk({ role: 'assistant', content: null });
    chunk({ tool_calls: [{ id: 'call_a', type: 'function', function: { name: 'calc_evaluate', arguments: '{"expression":"1+1"}' } }] });
    chunk({ tool_calls: [{ id: 'call_b', type: 'function', function: { name: 'files_read', arguments: '{"path":"notes.txt"}' } }] });
    chunk({}, 'tool_calls');
    res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'unindexed', choices: [], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } })}\n\n`);
    res.end('data: [DONE]\n\n');
  });

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/v1`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('keeps every tool call of a stream whose deltas carry no index, none merged or dropped', async () => {
    const nc = { publish: () => undefined } as unknown as NatsConnection;
    const logger = pino({ level: 'silent' });
    const caller = fromPromise(createModelCaller({
      endpoint: { client: new OpenAI({ baseURL: url, apiKey: 'x' }), providerName: 'test', prices: {} },
      tools: () => [],
      trace: new SessionTrace(trace.getTracer('test'), ROOT_CONTEXT, { sessionId: 's', agentName: 'a', model: 'unindexed' }),
      events: new SessionEventPublisher(nc, wireNames(), 's', logger),
      tracer: trace.getTracer('test'),
      logger,
      usageSoFar: () => ({ inputTokens: 0, outputTokens: 0, costUsd: 0 }),
      retry: RetryPolicy.parse({ maxAttempts: 1 }),
    }));
    const input = { sessionId: 's', turn: 1, model: 'unindexed', fallbackModels: [], messages: [{ role: 'user' as const, content: 'hi' }], ...contextOf() };
    const response = await toPromise(createActor(caller, { input }).start());
    expect(response.toolCalls).toEqual([
      { id: 'call_a', name: 'calc_evaluate', arguments: '{"expression":"1+1"}' },
      { id: 'call_b', name: 'files_read', arguments: '{"path":"notes.txt"}' },
    ]);
  });
});
