import { describe, expect, it } from 'vitest';
import { addUsage, booleanOf, isRecord, listOf, noUsage, numberOf, recordOf, textOf, usageOf } from '../../console/app/src/eventFields.ts';
import { delegatingSession } from './sessionStream.ts';

const finished = delegatingSession().at(-1) as unknown as Record<string, unknown>;

describe('field readers', () => {
  it('read a field of the expected type', () => {
    expect(textOf(finished, 'status')).toBe('completed');
    expect(numberOf(finished, 'steps')).toBe(2);
    expect(booleanOf({ cached: false }, 'cached')).toBe(false);
    expect(listOf({ calls: [1, 2] }, 'calls')).toEqual([1, 2]);
    expect(recordOf(finished, 'usage')).toEqual({ inputTokens: 3100, outputTokens: 120, costUsd: 0.0075 });
  });

  it('answer nothing for a missing field or one of another type', () => {
    expect(textOf(finished, 'steps')).toBeUndefined();
    expect(textOf(finished, 'missing')).toBeUndefined();
    expect(numberOf({ seq: '3' }, 'seq')).toBeUndefined();
    expect(booleanOf({ cached: 'yes' }, 'cached')).toBeUndefined();
    expect(listOf({ calls: { 0: 'a' } }, 'calls')).toEqual([]);
    expect(recordOf({ usage: [1] }, 'usage')).toBeUndefined();
    expect(recordOf({ usage: null }, 'usage')).toBeUndefined();
  });
});

describe('isRecord', () => {
  it('accepts plain objects only', () => {
    expect(isRecord({})).toBe(true);
    expect(isRecord([])).toBe(false);
    expect(isRecord(null)).toBe(false);
    expect(isRecord('event')).toBe(false);
  });
});

describe('usageOf', () => {
  it('reads a usage field, by default `usage`', () => {
    expect(usageOf(finished)).toEqual({ inputTokens: 3100, outputTokens: 120, costUsd: 0.0075 });
    expect(usageOf({ totals: { inputTokens: 1, outputTokens: 2, costUsd: 3 } }, 'totals')).toEqual({ inputTokens: 1, outputTokens: 2, costUsd: 3 });
  });

  it('answers zeros for missing figures, and nothing when there is no usage', () => {
    expect(usageOf({ usage: { costUsd: 0.5, inputTokens: 'many' } })).toEqual({ inputTokens: 0, outputTokens: 0, costUsd: 0.5 });
    expect(usageOf({ type: 'turn.started' })).toBeUndefined();
  });
});

describe('addUsage', () => {
  it('adds each figure, starting from nothing', () => {
    const sum = addUsage(addUsage(noUsage, { inputTokens: 10, outputTokens: 1, costUsd: 0.25 }), { inputTokens: 5, outputTokens: 2, costUsd: 0.5 });

    expect(sum).toEqual({ inputTokens: 15, outputTokens: 3, costUsd: 0.75 });
    expect(noUsage).toEqual({ inputTokens: 0, outputTokens: 0, costUsd: 0 });
  });
});
