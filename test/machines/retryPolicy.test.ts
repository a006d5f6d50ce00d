import { describe, expect, it } from 'vitest';
import { backoffDelayMs, RetryPolicy, withJitter } from '../../machines/retryPolicy.ts';

describe('RetryPolicy', () => {
  it('fills in the documented defaults', () => {
    expect(RetryPolicy.parse({})).toEqual({ maxAttempts: 3, initialDelayMs: 200, maxDelayMs: 5_000, multiplier: 2 });
  });

  it('refuses a policy with no attempts, too many attempts or a shrinking multiplier', () => {
    expect(RetryPolicy.safeParse({ maxAttempts: 0 }).success).toBe(false);
    expect(RetryPolicy.safeParse({ maxAttempts: 11 }).success).toBe(false);
    expect(RetryPolicy.safeParse({ multiplier: 0.5 }).success).toBe(false);
    expect(RetryPolicy.safeParse({ initialDelayMs: -1 }).success).toBe(false);
  });
});

describe('backoffDelayMs', () => {
  const policy = RetryPolicy.parse({ initialDelayMs: 100, multiplier: 3, maxDelayMs: 1_000 });

  it('waits the initial delay after the first failure', () => {
    expect(backoffDelayMs(policy, 1)).toBe(100);
  });

  it('grows by the multiplier with each failure and caps at maxDelayMs', () => {
    expect([1, 2, 3, 4, 5, 9].map((failed) => backoffDelayMs(policy, failed))).toEqual([100, 300, 900, 1_000, 1_000, 1_000]);
  });

  it('treats zero failed attempts like the first failure', () => {
    expect(backoffDelayMs(policy, 0)).toBe(100);
  });

  it('keeps the delay constant with a multiplier of 1', () => {
    const flat = RetryPolicy.parse({ initialDelayMs: 250, multiplier: 1 });
    expect([1, 2, 3].map((failed) => backoffDelayMs(flat, failed))).toEqual([250, 250, 250]);
  });

  it('never exceeds maxDelayMs even when the initial delay does', () => {
    expect(backoffDelayMs(RetryPolicy.parse({ initialDelayMs: 800, maxDelayMs: 500 }), 1)).toBe(500);
  });
});

describe('withJitter', () => {
  it('returns half the delay for random 0', () => {
    expect(withJitter(1_000, 0)).toBe(500);
  });

  it('returns the full delay for random just below 1', () => {
    expect(withJitter(1_000, 0.999_999)).toBe(1_000);
  });

  it('splits the delay evenly for random 0.5', () => {
    expect(withJitter(1_000, 0.5)).toBe(750);
  });

  it('stays within [d/2, d] across the whole random range', () => {
    for (const delay of [0, 1, 7, 200, 5_000]) {
      for (let i = 0; i < 100; i++) {
        const jittered = withJitter(delay, i / 100);
        expect(jittered).toBeGreaterThanOrEqual(Math.floor(delay / 2));
        expect(jittered).toBeLessThanOrEqual(delay);
      }
    }
  });

  it('returns whole milliseconds', () => {
    expect(Number.isInteger(withJitter(333, 0.123))).toBe(true);
  });
});
