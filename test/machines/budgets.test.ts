import { describe, expect, it } from 'vitest';
import { BudgetOverrides, Budgets } from '../../machines/budgets.ts';

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
