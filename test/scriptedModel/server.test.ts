import { Writable } from 'node:stream';
import OpenAI, { BadRequestError } from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadScripts } from '../../scriptedModel/scriptLibrary.ts';
import { maxBodyBytes, startScriptedModelServer, type ScriptedModelServer } from '../../scriptedModel/server.ts';
import { scriptDirs } from './scriptFixtures.ts';

const scripts = {
  'weather.json': {
    name: 'weather',
    match: { userIncludes: 'weather in' },
    steps: [
      { toolCalls: [{ id: 'call_w', name: 'get_weather', arguments: { city: 'Paris' } }] },
      { content: 'It is {{tool:call_w:forecast.0.summary}} at {{tool:call_w:forecast.0.temp}}°C' },
    ],
  },
  'research.json': {
    name: 'research',
    match: { userIncludes: 'research two things' },
    steps: [
      {
        content: 'Let me look both of those up for you, one moment please.',
        toolCalls: [
          { id: 'call_a', name: 'lookup', arguments: { query: 'alpha "quoted"', limit: 3 } },
          { name: 'lookup', arguments: { query: 'beta' } },
        ],
      },
      { content: 'done', usage: { promptTokens: 11, completionTokens: 7 }, model: 'scripted-large' },
    ],
  },
  'malformed.json': {
    name: 'malformed',
    match: { userIncludes: 'send malformed arguments' },
    steps: [{ toolCalls: [{ id: 'call_bad', name: 'calc', arguments: '{"expression": ' }] }, { content: 'the tool said {{tool:call_bad}}' }],
  },
  'counting.json': {
    name: 'counting',
    match: { userIncludes: 'count to three' },
    steps: [{ toolCalls: [{ name: 'tick', arguments: {} }] }, { toolCalls: [{ name: 'tick', arguments: {} }] }, { content: 'three' }],
  },
  'dangling.json': { name: 'dangling', match: { userIncludes: 'dangling reference' }, steps: [{ content: '{{tool:call_nowhere:x}}' }] },
  'offered.json': { name: 'offered', match: { userIncludes: 'check the offer' }, steps: [{ content: 'offered as expected', expectTools: ['db_query', 'calc_evaluate'] }] },
};

const dirs = scriptDirs();
const logLines: Array<Record<string, unknown>> = [];
let server: ScriptedModelServer;
let client: OpenAI;

beforeAll(async () => {
  const destination = new Writable({ write: (line: Buffer, _enc, done) => { logLines.push(JSON.parse(line.toString())); done(); } });
  server = await startScriptedModelServer({ scripts: await loadScripts([await dirs.create(scripts)]), port: 0, logger: pino({ level: 'info' }, destination) });
  client = new OpenAI({ baseURL: server.url, apiKey: 'test', maxRetries: 0 });
});

afterAll(async () => {
  await server.close();
  await dirs.removeAll();
});

const user = (content: string): ChatCompletionMessageParam => ({ role: 'user', content });

async function streamed(messages: ChatCompletionMessageParam[]) {
  const stream = await client.chat.completions.create({ model: 'scripted', messages, stream: true, stream_options: { include_usage: true } });
  let content = '';
  let contentDeltas = 0;
  let finishReason: string | null = null;
  let usage: OpenAI.CompletionUsage | null | undefined;
  const calls: Array<{ id: string; name: string; arguments: string }> = [];
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices[0];
    if (!choice) continue;
    if (choice.delta.content) {
      content += choice.delta.content;
      contentDeltas++;
    }
    for (const delta of choice.delta.tool_calls ?? []) {
      const call = (calls[delta.index] ??= { id: '', name: '', arguments: '' });
      if (delta.id) call.id = delta.id;
      if (delta.function?.name) call.name += delta.function.name;
      if (delta.function?.arguments) call.arguments += delta.function.arguments;
    }
    finishReason = choice.finish_reason ?? finishReason;
  }
  return { content, contentDeltas, finishReason, usage, calls };
}

describe('startScriptedModelServer', () => {
  it('answers a non-streaming request with the scripted tool calls', async () => {
    const completion = await client.chat.completions.create({ model: 'scripted', messages: [user('What is the weather in Paris?')] });
    expect(completion.object).toBe('chat.completion');
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.model).toBe('scripted');
    expect(completion.choices[0]?.finish_reason).toBe('tool_calls');
    expect(completion.choices[0]?.message.tool_calls).toEqual([{ id: 'call_w', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }]);
  });

  it('picks the step by the number of assistant messages and fills templates from tool messages', async () => {
    const completion = await client.chat.completions.create({
      model: 'scripted',
      messages: [
        user('What is the weather in Paris?'),
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_w', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'call_w', content: JSON.stringify({ forecast: [{ summary: 'sunny', temp: 21 }] }) },
      ],
    });
    expect(completion.choices[0]?.message.content).toBe('It is sunny at 21°C');
    expect(completion.choices[0]?.finish_reason).toBe('stop');
  });

  it('streams content in several deltas and tool-call arguments that accumulate by index to the exact JSON', async () => {
    const result = await streamed([user('Please research two things')]);
    expect(result.content).toBe('Let me look both of those up for you, one moment please.');
    expect(result.contentDeltas).toBeGreaterThan(1);
    expect(result.calls).toEqual([
      { id: 'call_a', name: 'lookup', arguments: JSON.stringify({ query: 'alpha "quoted"', limit: 3 }) },
      { id: 'call_0_1', name: 'lookup', arguments: '{"query":"beta"}' },
    ]);
    expect(result.finishReason).toBe('tool_calls');
  });

  it('reports estimated usage when the step states none', async () => {
    const messages = [user('Please research two things')];
    const result = await streamed(messages);
    const outputChars = result.content.length + result.calls.reduce((n, c) => n + c.name.length + c.arguments.length, 0);
    expect(result.usage).toEqual({ prompt_tokens: Math.ceil(JSON.stringify(messages).length / 4), completion_tokens: Math.ceil(outputChars / 4), total_tokens: expect.any(Number) });
    expect(result.usage?.total_tokens).toBe((result.usage?.prompt_tokens ?? 0) + (result.usage?.completion_tokens ?? 0));
  });

  it('reports the usage and model a step states, streaming and not', async () => {
    const messages = [user('Please research two things'), { role: 'assistant' as const, content: 'looked' }];
    const result = await streamed(messages);
    expect(result.usage).toEqual({ prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 });
    const completion = await client.chat.completions.create({ model: 'scripted', messages });
    expect(completion.model).toBe('scripted-large');
    expect(completion.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 });
  });

  it('passes malformed argument strings through verbatim, streaming and not', async () => {
    const completion = await client.chat.completions.create({ model: 'scripted', messages: [user('send malformed arguments')] });
    expect(completion.choices[0]?.message.tool_calls?.[0]).toMatchObject({ function: { arguments: '{"expression": ' } });
    expect((await streamed([user('send malformed arguments')])).calls[0]?.arguments).toBe('{"expression": ');
  });

  it('keeps concurrent conversations on different scripts on their own steps', async () => {
    async function converse(task: string) {
      const messages: ChatCompletionMessageParam[] = [user(task)];
      const replies: string[] = [];
      for (;;) {
        const { content, calls } = await streamed(messages);
        replies.push(content || calls.map((c) => c.name).join(','));
        if (calls.length === 0) return replies;
        messages.push({ role: 'assistant', content: content || null, tool_calls: calls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.arguments } })) });
        for (const call of calls) messages.push({ role: 'tool', tool_call_id: call.id, content: JSON.stringify({ forecast: [{ summary: 'rainy', temp: 9 }] }) });
      }
    }
    const [counting, weather] = await Promise.all([converse('count to three'), converse('the weather in Oslo')]);
    expect(counting).toEqual(['tick', 'tick', 'three']);
    expect(weather).toEqual(['get_weather', 'It is rainy at 9°C']);
  });

  it('rejects a conversation no script matches with a 400 naming the first user message', async () => {
    const error = await client.chat.completions.create({ model: 'scripted', messages: [user('Tell me a joke about penguins')] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).status).toBe(400);
    expect((error as BadRequestError).message).toContain('Tell me a joke about penguins');
    expect((error as BadRequestError).message).toContain('"weather in"');
  });

  it('rejects a streaming request whose step runs past the script with a 400', async () => {
    const error = await streamed([user('count to three'), { role: 'assistant', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'assistant', content: 'c' }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).message).toContain('script "counting" has 3 step(s)');
  });

  it('rejects a template whose tool message is missing with a 400 rather than an empty string', async () => {
    const error = await client.chat.completions.create({ model: 'scripted', messages: [user('dangling reference')] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).code).toBe('template_reference_missing');
    expect((error as BadRequestError).message).toContain('call_nowhere');
  });

  it('checks the tools a step expects to be offered, in any order, and names both sets when they differ', async () => {
    const fn = (name: string) => ({ type: 'function' as const, function: { name, parameters: { type: 'object', properties: {} } } });
    const ok = await client.chat.completions.create({ model: 'scripted', messages: [user('check the offer')], tools: [fn('calc_evaluate'), fn('db_query')] });
    expect(ok.choices[0]?.message.content).toBe('offered as expected');
    const error = await client.chat.completions.create({ model: 'scripted', messages: [user('check the offer')], tools: [fn('db_query'), fn('files_write')] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).code).toBe('unexpected_tools');
    expect((error as BadRequestError).message).toContain('expects the tools [calc_evaluate, db_query], but the request offers [db_query, files_write]');
    const none = await client.chat.completions.create({ model: 'scripted', messages: [user('check the offer')] }).catch((e: unknown) => e);
    expect((none as BadRequestError).message).toContain('but the request offers []');
  });

  it('logs each completion with its script, step and streaming mode', async () => {
    await client.chat.completions.create({ model: 'scripted', messages: [user('count to three'), { role: 'assistant', content: 'tick' }] });
    expect(logLines).toContainEqual(expect.objectContaining({ level: 30, script: 'counting', step: 1, stream: false, msg: 'scripted completion' }));
  });
});

describe('scripted model HTTP surface', () => {
  const post = (body: string, path = '/chat/completions') => fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

  it('answers a body that is not JSON with 400 in OpenAI error shape', async () => {
    const response = await post('{"model": "scripted", "messages": [');
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: { message: expect.stringContaining('not valid JSON'), type: 'invalid_request_error', param: null, code: 'invalid_json' } });
  });

  it('answers a body that is not a chat request with 400 naming the field', async () => {
    const response = await post(JSON.stringify({ model: 'scripted', messages: 'hi' }));
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { message: expect.stringContaining('messages:'), type: 'invalid_request_error', code: 'invalid_request' } });
  });

  it('answers a body over 10 MB with 413', async () => {
    const response = await post(JSON.stringify({ model: 'scripted', messages: [{ role: 'user', content: 'x'.repeat(maxBodyBytes) }] }));
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: { code: 'request_too_large' } });
  });

  it('answers unknown routes with 404 and wrong methods with 405', async () => {
    const missing = await fetch(`${server.url}/embeddings`, { method: 'POST', body: '{}' });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'not_found' } });
    const wrongMethod = await fetch(`${server.url}/chat/completions`);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
    await wrongMethod.body?.cancel();
  });

  it('lists the default model and the models scripts name', async () => {
    const models = [];
    for await (const model of client.models.list()) models.push(model);
    expect(models.map((m) => m.id)).toEqual(['scripted', 'scripted-large']);
    expect(models[0]).toEqual({ id: 'scripted', object: 'model', created: expect.any(Number), owned_by: 'troupe-scripted' });
  });

  it('reports health', async () => {
    const response = await fetch(server.url.replace(/\/v1$/, '/healthz'));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });
});

describe('ScriptedModelServer.close', () => {
  it('resolves while a client holds a keep-alive connection, and the server stops answering', async () => {
    const own = await startScriptedModelServer({ scripts: await loadScripts([await dirs.create(scripts)]), models: ['only-this'] });
    const ownClient = new OpenAI({ baseURL: own.url, apiKey: 'test', maxRetries: 0 });
    const models = [];
    for await (const model of ownClient.models.list()) models.push(model.id);
    expect(models).toEqual(['only-this', 'scripted-large']);
    await own.close();
    await expect(fetch(`${own.url}/models`)).rejects.toThrow();
  });
});
