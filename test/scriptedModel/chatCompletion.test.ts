import { describe, expect, it } from 'vitest';
import { defaultRefusal, malformedArguments, newCompletionId, resolveTurn, splitText, toChatCompletion, toChatCompletionChunks, type ScriptedTurn } from '../../scriptedModel/chatCompletion.ts';
import type { ChatRequest } from '../../scriptedModel/chatRequest.ts';

const request: ChatRequest = { model: 'requested', messages: [{ role: 'user', content: 'hello there' }, { role: 'tool', tool_call_id: 'call_x', content: '{"v":7}' }] };
const envelope = { id: 'chatcmpl-test', created: 1_700_000_000 };
const turn: ScriptedTurn = {
  model: 'm',
  content: 'A reply that is long enough to be streamed in several pieces.',
  refusal: null,
  toolCalls: [
    { id: 'call_a', name: 'search', arguments: '{"query":"alpha","limit":3}' },
    { id: 'call_b', name: 'noop', arguments: '{}' },
  ],
  finishReason: 'tool_calls',
  usage: { promptTokens: 10, completionTokens: 5 },
};

describe('resolveTurn', () => {
  it('defaults tool-call ids to call_<step>_<index>, the finish reason to tool_calls, and the model to the requested one', () => {
    const resolved = resolveTurn(request, { toolCalls: [{ name: 'f', arguments: { a: 1 } }, { id: 'mine', name: 'g', arguments: 'raw' }] }, 3);
    expect(resolved.ok && resolved.value).toMatchObject({
      model: 'requested',
      content: null,
      toolCalls: [{ id: 'call_3_0', name: 'f', arguments: '{"a":1}' }, { id: 'mine', name: 'g', arguments: 'raw' }],
      finishReason: 'tool_calls',
    });
  });

  it('estimates usage as ceil(chars / 4) of the request messages and of the output', () => {
    const resolved = resolveTurn(request, { content: 'abcde' }, 0);
    expect(resolved.ok && resolved.value.usage).toEqual({ promptTokens: Math.ceil(JSON.stringify(request.messages).length / 4), completionTokens: 2 });
    expect(resolved.ok && resolved.value.finishReason).toBe('stop');
  });

  it('reports the usage, model and finish reason a step states', () => {
    const resolved = resolveTurn(request, { content: 'x', usage: { promptTokens: 1, completionTokens: 2 }, model: 'scripted-big', finishReason: 'length' }, 0);
    expect(resolved.ok && resolved.value).toMatchObject({ usage: { promptTokens: 1, completionTokens: 2 }, model: 'scripted-big', finishReason: 'length' });
  });

  it('fills templates from the request tool messages and fails on a missing reference', () => {
    expect(resolveTurn(request, { content: 'v={{tool:call_x:v}}' }, 1)).toMatchObject({ ok: true, value: { content: 'v=7' } });
    expect(resolveTurn(request, { toolCalls: [{ name: 'f', arguments: { a: '{{tool:call_y}}' } }] }, 1).ok).toBe(false);
  });
});

describe('resolveTurn with a fault', () => {
  const step = { content: 'calling', toolCalls: [{ name: 'f', arguments: { a: 1 } }, { name: 'g', arguments: 'raw' }], finishReason: 'tool_calls' as const };

  it('replaces every tool call\'s arguments with invalid JSON for malformed_tool_call, keeping the rest', () => {
    const resolved = resolveTurn(request, step, 0, { kind: 'malformed_tool_call' });
    expect(resolved.ok && resolved.value).toMatchObject({ content: 'calling', refusal: null, finishReason: 'tool_calls', toolCalls: [{ name: 'f', arguments: malformedArguments }, { name: 'g', arguments: malformedArguments }] });
    expect(() => JSON.parse(malformedArguments)).toThrow();
  });

  it('answers a refusal with no content or tool calls and finish reason stop, whatever the step says', () => {
    const resolved = resolveTurn(request, step, 0, { kind: 'refusal' });
    expect(resolved.ok && resolved.value).toMatchObject({ content: null, refusal: defaultRefusal, toolCalls: [], finishReason: 'stop', usage: { completionTokens: Math.ceil(defaultRefusal.length / 4) } });
    expect(resolveTurn(request, step, 0, { kind: 'refusal', message: 'Not today.' })).toMatchObject({ ok: true, value: { refusal: 'Not today.' } });
  });

  it('answers empty with neither content, refusal nor tool calls and finish reason stop', () => {
    const resolved = resolveTurn(request, step, 0, { kind: 'empty' });
    expect(resolved.ok && resolved.value).toMatchObject({ content: null, refusal: null, toolCalls: [], finishReason: 'stop', usage: { completionTokens: 0 } });
  });

  it('still fails on a template the step cannot fill', () => {
    expect(resolveTurn(request, { content: '{{tool:call_y}}' }, 0, { kind: 'empty' }).ok).toBe(false);
  });
});

describe('toChatCompletion', () => {
  it('builds an OpenAI chat.completion with tool calls and usage', () => {
    expect(toChatCompletion(turn, envelope)).toEqual({
      id: 'chatcmpl-test',
      object: 'chat.completion',
      created: 1_700_000_000,
      model: 'm',
      choices: [{
        index: 0,
        message: {
          role: 'assistant',
          content: turn.content,
          refusal: null,
          tool_calls: [
            { id: 'call_a', type: 'function', function: { name: 'search', arguments: '{"query":"alpha","limit":3}' } },
            { id: 'call_b', type: 'function', function: { name: 'noop', arguments: '{}' } },
          ],
        },
        logprobs: null,
        finish_reason: 'tool_calls',
      }],
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
    });
  });

  it('reports a refusal in message.refusal', () => {
    const message = toChatCompletion({ ...turn, content: null, toolCalls: [], refusal: 'no' }, envelope).choices[0]?.message;
    expect(message).toEqual({ role: 'assistant', content: null, refusal: 'no' });
  });

  it('omits tool_calls when the turn has none', () => {
    expect(toChatCompletion({ ...turn, toolCalls: [] }, envelope).choices[0]?.message).not.toHaveProperty('tool_calls');
  });
});

describe('toChatCompletionChunks', () => {
  const chunks = toChatCompletionChunks(turn, envelope, { includeUsage: true });
  const deltas = chunks.flatMap((c) => c.choices.map((choice) => choice.delta));

  it('opens with the assistant role and the start of the content', () => {
    expect(deltas[0]).toEqual({ role: 'assistant', content: expect.any(String) });
    expect(turn.content?.startsWith(deltas[0]?.content ?? '-')).toBe(true);
  });

  it('streams the content in several deltas that join to the whole', () => {
    const pieces = deltas.filter((d) => d.content).map((d) => d.content);
    expect(pieces.length).toBeGreaterThan(2);
    expect(pieces.join('')).toBe(turn.content);
  });

  it('sends each tool call header with empty arguments, then 2-3 argument fragments for its index', () => {
    for (const [index, call] of turn.toolCalls.entries()) {
      const parts = deltas.flatMap((d) => d.tool_calls ?? []).filter((t) => t.index === index);
      expect(parts[0]).toEqual({ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } });
      const fragments = parts.slice(1).map((p) => p.function?.arguments);
      expect(fragments.length).toBeGreaterThanOrEqual(2);
      expect(fragments.length).toBeLessThanOrEqual(3);
      expect(fragments.join('')).toBe(call.arguments);
    }
  });

  it('ends the choice with the finish reason, then a usage chunk without choices', () => {
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe('tool_calls');
    expect(chunks.slice(0, -2).every((c) => c.choices[0]?.finish_reason === null && c.usage === null)).toBe(true);
    expect(chunks.at(-1)).toEqual({ id: 'chatcmpl-test', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'm', choices: [], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } });
  });

  it('leaves out usage entirely unless asked', () => {
    const plain = toChatCompletionChunks(turn, envelope, { includeUsage: false });
    expect(plain.at(-1)?.choices[0]?.finish_reason).toBe('tool_calls');
    expect(plain.some((c) => 'usage' in c)).toBe(false);
  });

  it('streams a refusal in refusal deltas after a first delta with null content', () => {
    const refusal = 'I am sorry, but I cannot help with that request today.';
    const refused = toChatCompletionChunks({ ...turn, content: null, toolCalls: [], refusal, finishReason: 'stop' }, envelope, { includeUsage: false });
    const refusedDeltas = refused.map((c) => c.choices[0]?.delta);
    expect(refusedDeltas[0]).toEqual({ role: 'assistant', content: null, refusal: expect.any(String) });
    expect(refusedDeltas.slice(1, -1).every((d) => d && Object.keys(d).join() === 'refusal')).toBe(true);
    expect(refusedDeltas.length).toBeGreaterThan(3);
    expect(refusedDeltas.map((d) => d?.refusal ?? '').join('')).toBe(refusal);
    expect(refused.at(-1)?.choices[0]?.finish_reason).toBe('stop');
  });

  it('opens a tool-call-only turn with null content', () => {
    const first = toChatCompletionChunks({ ...turn, content: null }, envelope, { includeUsage: false })[0];
    expect(first?.choices[0]?.delta).toEqual({ role: 'assistant', content: null });
  });
});

describe('splitText', () => {
  it('never splits a surrogate pair', () => {
    const pieces = splitText('😀😀😀', 3);
    expect(pieces).toEqual(['😀', '😀', '😀']);
  });
});

describe('newCompletionId', () => {
  it('returns distinct chatcmpl- ids', () => {
    expect(newCompletionId()).toMatch(/^chatcmpl-[0-9a-f]{24}$/);
    expect(newCompletionId()).not.toBe(newCompletionId());
  });
});
