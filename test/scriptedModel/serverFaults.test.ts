import { Writable } from 'node:stream';
import OpenAI, { APIConnectionError, APIUserAbortError, BadRequestError, InternalServerError, RateLimitError } from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { defaultRefusal, malformedArguments } from '../../scriptedModel/chatCompletion.ts';
import { loadScripts } from '../../scriptedModel/scriptLibrary.ts';
import { startScriptedModelServer, type ScriptedModelServer } from '../../scriptedModel/server.ts';
import { scriptDirs } from './scriptFixtures.ts';

const faultScript = (name: string, step: Record<string, unknown>) => ({ [`${name}.json`]: { name, match: { userIncludes: name }, steps: [step, { content: 'second step' }] } });

const scripts = {
  ...faultScript('rate-limited', { content: 'finally', fault: { kind: 'http_error', status: 429, retryAfterSeconds: 1, times: 2 } }),
  ...faultScript('retry-now', { content: 'after retries', fault: { kind: 'http_error', status: 429, retryAfterSeconds: 0, times: 2 } }),
  ...faultScript('server-down', { content: 'never', fault: { kind: 'http_error', status: 503 } }),
  ...faultScript('bad-request', { content: 'never', fault: { kind: 'http_error', status: 400, message: 'scripted: context too long' } }),
  ...faultScript('primary-down', { content: 'answered by the fallback', fault: { kind: 'http_error', status: 500, model: 'primary' } }),
  ...faultScript('hang-up', { content: 'after the hang-up', fault: { kind: 'disconnect', times: 1 } }),
  ...faultScript('brief-pause', { content: 'after a pause', fault: { kind: 'delay', delayMs: 5 } }),
  ...faultScript('long-pause', { content: 'after a long pause', fault: { kind: 'delay', delayMs: 60_000 } }),
  ...faultScript('quick', { content: 'at once' }),
  ...faultScript('broken-arguments', { toolCalls: [{ id: 'call_b', name: 'calc', arguments: { expression: '1 + 1' } }], fault: { kind: 'malformed_tool_call' } }),
  ...faultScript('refuse-me', { content: 'never', fault: { kind: 'refusal' } }),
  ...faultScript('refuse-politely', { content: 'never', fault: { kind: 'refusal', message: 'I would rather not discuss this particular topic.' } }),
  ...faultScript('say-nothing', { toolCalls: [{ name: 'calc', arguments: {} }], fault: { kind: 'empty' } }),
};

const dirs = scriptDirs();
const logLines: Array<Record<string, unknown>> = [];
let server: ScriptedModelServer;
let client: OpenAI;

beforeAll(async () => {
  const destination = new Writable({ write: (line: Buffer, _enc, done) => { logLines.push(JSON.parse(line.toString())); done(); } });
  server = await startScriptedModelServer({ scripts: await loadScripts([await dirs.create(scripts)]), logger: pino({ level: 'info' }, destination) });
  client = new OpenAI({ baseURL: server.url, apiKey: 'test', maxRetries: 0 });
});

afterAll(async () => {
  await server.close();
  await dirs.removeAll();
});

const user = (content: string): ChatCompletionMessageParam[] => [{ role: 'user', content }];
const ask = (content: string, model = 'scripted') => client.chat.completions.create({ model, messages: user(content) });
const failure = (promise: Promise<unknown>) => promise.then(() => expect.unreachable('the request succeeded'), (e: unknown) => e);

async function streamed(content: string) {
  const stream = await client.chat.completions.create({ model: 'scripted', messages: user(content), stream: true });
  const result = { content: '', refusal: '', refusalDeltas: 0, calls: [] as string[], finishReason: null as string | null };
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    result.content += choice.delta.content ?? '';
    if (choice.delta.refusal) {
      result.refusal += choice.delta.refusal;
      result.refusalDeltas++;
    }
    for (const call of choice.delta.tool_calls ?? []) result.calls.push(call.function?.name ?? '');
    result.finishReason = choice.finish_reason ?? result.finishReason;
  }
  return result;
}

describe('http_error faults', () => {
  it('answers a 429 in OpenAI error shape with Retry-After and retry-after-ms', async () => {
    const error = await failure(ask('rate-limited: headers'));
    expect(error).toBeInstanceOf(RateLimitError);
    const rateLimit = error as RateLimitError;
    expect(rateLimit.error).toEqual({ message: expect.stringContaining('script "rate-limited" step 0 (attempt 1 of 2)'), type: 'rate_limit_exceeded', code: 'scripted_fault', param: null });
    expect(rateLimit.headers.get('retry-after')).toBe('1');
    expect(rateLimit.headers.get('retry-after-ms')).toBe('1000');
  });

  it('fails `times` requests of a conversation and then answers, while another conversation has its own count', async () => {
    const outcomes = async (content: string) => {
      const results: unknown[] = [];
      for (let i = 0; i < 3; i++) results.push(await ask(content).then((c) => c.choices[0]?.message.content, (e: unknown) => (e as RateLimitError).status));
      return results;
    };
    expect(await outcomes('rate-limited: conversation one')).toEqual([429, 429, 'finally']);
    expect(await outcomes('rate-limited: conversation two')).toEqual([429, 429, 'finally']);
  });

  it('lets the openai client recover by itself when it retries', async () => {
    const retrying = new OpenAI({ baseURL: server.url, apiKey: 'test', maxRetries: 2 });
    const completion = await retrying.chat.completions.create({ model: 'scripted', messages: user('retry-now') });
    expect(completion.choices[0]?.message.content).toBe('after retries');
    expect(logLines.filter((l) => l.script === 'retry-now' && l.msg === 'scripted fault injected').map((l) => l.attempt)).toEqual([1, 2]);
  });

  it('types 5xx faults server_error and other 4xx invalid_request_error, with the scripted message', async () => {
    const unavailable = await failure(ask('server-down'));
    expect(unavailable).toBeInstanceOf(InternalServerError);
    expect((unavailable as InternalServerError).status).toBe(503);
    expect((unavailable as InternalServerError).type).toBe('server_error');
    expect((unavailable as InternalServerError).headers.get('retry-after')).toBeNull();
    const rejected = await failure(ask('bad-request'));
    expect(rejected).toBeInstanceOf(BadRequestError);
    expect((rejected as BadRequestError).error).toEqual({ message: 'scripted: context too long', type: 'invalid_request_error', code: 'scripted_fault', param: null });
  });

  it('faults only the model the fault names, so a fallback model answers', async () => {
    expect(await failure(ask('primary-down', 'primary'))).toBeInstanceOf(InternalServerError);
    expect((await ask('primary-down', 'fallback')).choices[0]?.message.content).toBe('answered by the fallback');
    expect(await failure(ask('primary-down', 'primary'))).toBeInstanceOf(InternalServerError);
  });

  it('logs each injected fault at info with the script, step, kind and attempt', async () => {
    await failure(ask('server-down: logged'));
    expect(logLines).toContainEqual(expect.objectContaining({ level: 30, msg: 'scripted fault injected', script: 'server-down', step: 0, fault: 'http_error', attempt: 1 }));
  });
});

describe('disconnect faults', () => {
  it('drops the connection without a response', async () => {
    expect(await failure(ask('hang-up: once'))).toBeInstanceOf(APIConnectionError);
    expect((await ask('hang-up: once')).choices[0]?.message.content).toBe('after the hang-up');
  });
});

describe('delay faults', () => {
  it('answers normally after the delay, streaming and not', async () => {
    expect((await ask('brief-pause')).choices[0]?.message.content).toBe('after a pause');
    expect(await streamed('brief-pause: streamed')).toMatchObject({ content: 'after a pause', finishReason: 'stop' });
  });

  it('does not hold up a concurrent request', async () => {
    const finished: string[] = [];
    const abort = new AbortController();
    const slow = client.chat.completions.create({ model: 'scripted', messages: user('long-pause: concurrent') }, { signal: abort.signal }).then(
      () => finished.push('slow'),
      (error: unknown) => error,
    );
    await vi.waitFor(() => expect(logLines).toContainEqual(expect.objectContaining({ script: 'long-pause', fault: 'delay' })));
    await ask('quick');
    finished.push('quick');
    expect(finished).toEqual(['quick']);
    abort.abort();
    expect(await slow).toBeInstanceOf(APIUserAbortError);
  });

  it('streams the headers at once and holds back the first chunk', async () => {
    const abort = new AbortController();
    const stream = await client.chat.completions.create({ model: 'scripted', messages: user('long-pause: streamed'), stream: true }, { signal: abort.signal });
    const finished: string[] = [];
    const firstChunk = stream[Symbol.asyncIterator]().next().then((next) => finished.push(next.done ? 'ended without a chunk' : 'first chunk'));
    await ask('quick: while streaming');
    finished.push('quick');
    expect(finished).toEqual(['quick']);
    // The openai stream ends quietly when aborted.
    abort.abort();
    await firstChunk;
    expect(finished).toEqual(['quick', 'ended without a chunk']);
  });
});

describe('malformed_tool_call faults', () => {
  it('sends invalid JSON as every tool call\'s arguments, streaming and not', async () => {
    const call = (await ask('broken-arguments')).choices[0]?.message.tool_calls?.[0];
    expect(call).toEqual({ id: 'call_b', type: 'function', function: { name: 'calc', arguments: malformedArguments } });
    const stream = await client.chat.completions.create({ model: 'scripted', messages: user('broken-arguments: streamed'), stream: true });
    let args = '';
    for await (const chunk of stream) args += chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? '';
    expect(args).toBe(malformedArguments);
  });
});

describe('refusal faults', () => {
  it('answers with message.refusal, no content and no tool calls', async () => {
    const choice = (await ask('refuse-me')).choices[0];
    expect(choice?.message).toEqual({ role: 'assistant', content: null, refusal: defaultRefusal });
    expect(choice?.finish_reason).toBe('stop');
    expect((await ask('refuse-politely')).choices[0]?.message.refusal).toBe('I would rather not discuss this particular topic.');
  });

  it('streams the refusal in refusal deltas', async () => {
    const result = await streamed('refuse-politely: streamed');
    expect(result).toMatchObject({ content: '', refusal: 'I would rather not discuss this particular topic.', calls: [], finishReason: 'stop' });
    expect(result.refusalDeltas).toBeGreaterThan(1);
  });
});

describe('empty faults', () => {
  it('answers with no content and no tool calls, even on a tool-call step', async () => {
    const choice = (await ask('say-nothing')).choices[0];
    expect(choice?.message).toEqual({ role: 'assistant', content: null, refusal: null });
    expect(choice?.finish_reason).toBe('stop');
  });

  it('streams an answer with no content and no tool calls', async () => {
    expect(await streamed('say-nothing: streamed')).toEqual({ content: '', refusal: '', refusalDeltas: 0, calls: [], finishReason: 'stop' });
  });
});
