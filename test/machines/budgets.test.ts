import { describe, expect, it } from 'vitest';
import { BudgetOverrides, Budgets, tightenBudgets } from '../../machines/budgets.ts';

describe('Budgets', () => {
  // Regression: the host arms the wall-clock deadline as a timer, and Node fires one longer than 2^31−1 ms at once.
  it('refuses a maxWallClockMs longer than a timer can wait, which would end the session at once', () => {
    for (const schema of [Budgets, BudgetOverrides]) {
      const parsed = schema.safeParse({ maxWallClockMs: 2_147_483_648 });
      expect(parsed.success).toBe(false);
      expect(parsed.error?.issues[0]).toMatchObject({
        path: ['maxWallClockMs'], message: 'must be at most 2147483647 ms (about 24.8 days), the longest delay a timer can wait',
      });
    }
    expect(Budgets.parse({ maxWallClockMs: 2_147_483_647 }).maxWallClockMs).toBe(2_147_483_647);
  });
});

describe('BudgetOverrides', () => {
  it('refuses a budget it does not know rather than leaving the agent\'s in place unnoticed', () => {
    const parsed = BudgetOverrides.safeParse({ maxSteps: 3, maxSpend: 1 });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]).toMatchObject({ code: 'unrecognized_keys', keys: ['maxSpend'] });
  });

  it('fills in nothing that was not asked for', () => {
    expect(BudgetOverrides.parse({ maxSteps: 3 })).toStrictEqual({ maxSteps: 3 });
  });
});

describe('tightenBudgets', () => {
  const agent = Budgets.parse({ maxSteps: 10, maxCostUsd: 0.5 });

  it('lowers the budgets asked for and keeps the agent\'s others', () => {
    expect(tightenBudgets(agent, { maxSteps: 1, maxWallClockMs: 1_000 })).toStrictEqual({ ok: true, budgets: { ...agent, maxSteps: 1, maxWallClockMs: 1_000 } });
  });

  it('takes the agent\'s own value and no value at all as they are', () => {
    expect(tightenBudgets(agent, { maxSteps: 10, maxCostUsd: 0.5 })).toStrictEqual({ ok: true, budgets: agent });
    expect(tightenBudgets(agent, {})).toStrictEqual({ ok: true, budgets: agent });
  });

  it('refuses any value above the agent\'s, naming each budget with the value asked and the limit', () => {
    expect(tightenBudgets(agent, { maxSteps: 11, maxTotalTokens: 5, maxCostUsd: 2 })).toStrictEqual({
      ok: false,
      raised: [{ budget: 'maxSteps', asked: 11, limit: 10 }, { budget: 'maxCostUsd', asked: 2, limit: 0.5 }],
    });
  });
});
