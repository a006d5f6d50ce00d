import { describe, expect, it } from 'vitest';
import { Script, ScriptStep } from '../../scriptedModel/script.ts';

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
