import { describe, expect, it } from 'vitest';
import { defineGuardrail, GuardrailDefinitionError, runGuardrails } from '../../guardrails/defineGuardrail.ts';

const at = { point: 'toolOutput' as const, sessionId: 's1', tool: 'files_read' };

describe('guardrails', () => {
  it('refuses a definition that cannot run, naming each problem', () => {
    expect(() => defineGuardrail({ name: 'Bad Name', at: [], check: 'no' as never })).toThrow(GuardrailDefinitionError);
    expect(() => defineGuardrail({ name: 'Bad Name', at: [], check: 'no' as never })).toThrow(/name: lower case.*at: a guardrail checks at one point or more.*check: check must be a function/);
  });

  it('runs the guardrails of a point in order: a rewrite feeds the next, the first block stops them', async () => {
    const seen: string[] = [];
    const mask = defineGuardrail({ name: 'mask', at: ['toolOutput'], check: ({ content }) => ({ outcome: 'rewrite', content: content.replace('4242', '****'), changes: '1 card number masked' }) });
    const look = defineGuardrail({ name: 'look', at: ['toolOutput', 'output'], check: ({ content }) => { seen.push(content); return { outcome: 'pass' }; } });
    const stop = defineGuardrail({ name: 'stop', at: ['toolOutput'], check: () => ({ outcome: 'block', reason: 'an instruction to the assistant' }) });
    const never = defineGuardrail({ name: 'never', at: ['toolOutput'], check: () => { throw new Error('must not run after a block'); } });
    const inputOnly = defineGuardrail({ name: 'input-only', at: ['input'], check: () => ({ outcome: 'block', reason: 'not here' }) });
    const result = await runGuardrails([inputOnly, mask, look, stop, never], { ...at, content: 'card 4242' });
    expect(seen).toEqual(['card ****']);
    expect(result.content).toBe('card ****');
    expect(result.blocked).toMatchObject({ guardrail: 'stop', outcome: 'block', detail: 'an instruction to the assistant' });
    expect(result.decisions.map((d) => [d.guardrail, d.outcome, d.detail ?? null])).toEqual([
      ['mask', 'rewrite', '1 card number masked'], ['look', 'pass', null], ['stop', 'block', 'an instruction to the assistant'],
    ]);
  });

  it('fails closed by default when a check throws, answers nonsense or runs out of time, and open when told to', async () => {
    const throws = defineGuardrail({ name: 'throws', at: ['output'], check: () => { throw new Error('moderation service down'); } });
    expect((await runGuardrails([throws], { point: 'output', sessionId: 's', content: 'x' })).blocked?.detail)
      .toBe('it failed: moderation service down; blocked, as it fails closed');
    const nonsense = defineGuardrail({ name: 'nonsense', at: ['output'], check: () => ({ outcome: 'maybe' }) as never });
    expect((await runGuardrails([nonsense], { point: 'output', sessionId: 's', content: 'x' })).blocked?.detail).toMatch(/answered \{"outcome":"maybe"\}, not pass, block or rewrite/);
    let aborted = false;
    const slow = defineGuardrail({
      name: 'slow', at: ['output'], timeoutMs: 50, onError: 'pass',
      check: ({ signal }) => new Promise((resolve) => {
        signal.addEventListener('abort', () => (aborted = true));
        setTimeout(() => resolve({ outcome: 'block', reason: 'too late' }), 5_000).unref();
      }),
    });
    const late = await runGuardrails([slow], { point: 'output', sessionId: 's', content: 'x' });
    expect(late.blocked).toBeUndefined();
    expect(late.decisions[0]).toMatchObject({ outcome: 'pass', failed: true, detail: 'it took longer than 50 ms; passed, as it fails open' });
    expect(aborted).toBe(true);
  });
});
