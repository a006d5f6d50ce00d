import { describe, expect, it } from 'vitest';
import { Script, ScriptFault, ScriptStep } from '../../scriptedModel/script.ts';

const minimal = { name: 'echo', match: { userIncludes: 'echo' }, steps: [{ content: 'hi' }] };

describe('Script', () => {
  it('accepts content steps, tool-call steps with object or raw string arguments, and every optional field', () => {
    const script = {
      name: 'full',
      description: 'all fields',
      match: { userIncludes: 'full' },
      steps: [
        { toolCalls: [{ id: 'call_a', name: 'calc', arguments: { expression: '1 + 1' } }, { name: 'calc', arguments: '{"broken": ' }] },
        { content: 'done', finishReason: 'length', usage: { promptTokens: 3, completionTokens: 0 }, model: 'gpt-scripted' },
      ],
    };
    expect(Script.parse(script)).toEqual(script);
  });

  it('rejects a step with neither content nor tool calls, saying what a step needs', () => {
    const result = ScriptStep.safeParse({ finishReason: 'stop' });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toBe('a step needs "content" or at least one entry in "toolCalls"');
  });

  it('rejects a step whose only tool-call list is empty', () => {
    expect(ScriptStep.safeParse({ toolCalls: [] }).success).toBe(false);
  });

  it('accepts empty content as a step', () => {
    expect(ScriptStep.safeParse({ content: '' }).success).toBe(true);
  });

  it('rejects misspelt keys instead of ignoring them', () => {
    const result = Script.safeParse({ ...minimal, steps: [{ content: 'x', finish_reason: 'stop' }] });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['steps', 0]);
  });

  it('rejects array arguments, fractional usage and unknown finish reasons', () => {
    expect(ScriptStep.safeParse({ toolCalls: [{ name: 'f', arguments: [1] }] }).success).toBe(false);
    expect(ScriptStep.safeParse({ content: 'x', usage: { promptTokens: 1.5, completionTokens: 1 } }).success).toBe(false);
    expect(ScriptStep.safeParse({ content: 'x', finishReason: 'function_call' }).success).toBe(false);
  });

  it('rejects a script without steps or with an empty match', () => {
    expect(Script.safeParse({ ...minimal, steps: [] }).success).toBe(false);
    expect(Script.safeParse({ ...minimal, match: { userIncludes: '' } }).success).toBe(false);
  });
});

describe('ScriptFault', () => {
  it('accepts every kind with its options, times and a model filter', () => {
    const faults = [
      { kind: 'http_error', status: 429, retryAfterSeconds: 0.5, message: 'slow down', times: 2, model: 'primary' },
      { kind: 'delay', delayMs: 250 },
      { kind: 'disconnect', times: 1 },
      { kind: 'malformed_tool_call' },
      { kind: 'refusal', message: 'no' },
      { kind: 'empty', model: 'primary' },
    ];
    for (const fault of faults) expect(ScriptFault.parse(fault)).toEqual(fault);
  });

  it('rejects unknown kinds, statuses outside 400-599, missing or excessive delays, zero times and misspelt keys', () => {
    expect(ScriptFault.safeParse({ kind: 'explode' }).error?.issues[0]?.path).toEqual(['kind']);
    expect(ScriptFault.safeParse({ kind: 'http_error', status: 200 }).success).toBe(false);
    expect(ScriptFault.safeParse({ kind: 'http_error', status: 600 }).success).toBe(false);
    expect(ScriptFault.safeParse({ kind: 'http_error', status: 503, retryAfterSeconds: -1 }).success).toBe(false);
    expect(ScriptFault.safeParse({ kind: 'delay' }).success).toBe(false);
    expect(ScriptFault.safeParse({ kind: 'delay', delayMs: 600_001 }).success).toBe(false);
    expect(ScriptFault.safeParse({ kind: 'empty', times: 0 }).success).toBe(false);
    expect(ScriptFault.safeParse({ kind: 'refusal', messge: 'typo' }).success).toBe(false);
    expect(ScriptFault.safeParse({ kind: 'disconnect', status: 500 }).success).toBe(false);
  });

  it('still requires the normal answer of a step that has a fault', () => {
    expect(ScriptStep.safeParse({ fault: { kind: 'empty' } }).success).toBe(false);
  });

  it('rejects a malformed_tool_call fault on a step without tool calls', () => {
    const result = ScriptStep.safeParse({ content: 'x', fault: { kind: 'malformed_tool_call' } });
    expect(result.error?.issues).toEqual([expect.objectContaining({ path: ['fault', 'kind'], message: 'a "malformed_tool_call" fault needs a step with at least one entry in "toolCalls"' })]);
  });
});
