import { describe, expect, it } from 'vitest';
import { BudgetName, Budgets, type BudgetsInput } from '../../machines/budgets.ts';
import {
  acceptDelegation, addSpending, capBudgets, delegatedBudgets, Delegation, delegationFor, delegationLimits, DelegationLimits, nothingDelegated, stepsSpent, type DelegatedSpending,
} from '../../machines/delegation.ts';
import type { SessionContext } from '../../machines/sessionContext.ts';
import type { Usage } from '../../machines/usage.ts';
import { seededRandom, int } from '../fixtures/seededRandom.ts';

/** The fields `delegationLimits` reads; the rest of a session's context does not matter to it. */
interface Spent {
  budgets?: BudgetsInput;
  turn?: number;
  usage?: Usage;
  delegatedSteps?: number;
  startedAt?: number;
}

function context({ budgets = {}, turn = 1, usage = { inputTokens: 0, outputTokens: 0, costUsd: 0 }, delegatedSteps = 0, startedAt = 1_000 }: Spent): SessionContext {
  const fields: Pick<SessionContext, 'budgets' | 'turn' | 'usage' | 'delegated' | 'startedAt'> = {
    budgets: Budgets.parse(budgets),
    turn,
    usage,
    // The specialists' usage is already in `usage`; only their steps are counted here alone.
    delegated: { usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 }, steps: delegatedSteps, toolCalls: 0 },
    startedAt,
  };
  return fields as SessionContext;
}

const budgets = { maxSteps: 20, maxTotalTokens: 1_000, maxCostUsd: 1, maxWallClockMs: 60_000 };
// Left: 20 - (3 + 2) = 15 steps, 1000 - 150 = 850 tokens, 1 - 0.25 = 0.75 USD.
const halfway = context({ budgets, turn: 3, delegatedSteps: 2, usage: { inputTokens: 100, outputTokens: 50, costUsd: 0.25 }, startedAt: 1_000 });

describe('delegationLimits', () => {
  it('gives a single delegation everything the session has left, up to its deadline', () => {
    // One step is held back for the session to read the answer.
    expect(delegationLimits(halfway, 1)).toEqual({ maxSteps: 14, maxTotalTokens: 850, maxCostUsd: 0.75, deadline: 61_000 });
  });

  it('splits what is left equally among the turn’s delegations, rounding steps and tokens down', () => {
    expect(delegationLimits(halfway, 2)).toEqual({ maxSteps: 7, maxTotalTokens: 425, maxCostUsd: 0.375, deadline: 61_000 });
    expect(delegationLimits(halfway, 4)).toEqual({ maxSteps: 3, maxTotalTokens: 212, maxCostUsd: 0.1875, deadline: 61_000 });
  });

  it('treats zero delegations as one', () => {
    expect(delegationLimits(halfway, 0)).toEqual(delegationLimits(halfway, 1));
  });

  it('counts the steps its specialists took as spent', () => {
    const withoutSpecialists = context({ budgets, turn: 3 });
    const withSpecialists = context({ budgets, turn: 3, delegatedSteps: 6 });
    expect(delegationLimits(withoutSpecialists, 1).maxSteps).toBe(16);
    expect(delegationLimits(withSpecialists, 1).maxSteps).toBe(10);
    expect(stepsSpent(withSpecialists)).toBe(9);
  });

  it('counts the current turn as spent, and holds one step back for reading the answer', () => {
    expect(delegationLimits(context({ budgets, turn: 1 }), 1).maxSteps).toBe(18);
  });

  it('holds back a model call as large as the last one, so the session can still read the answers', () => {
    const lastResponse = { model: 'm', content: null, refusal: null, toolCalls: [], finishReason: 'tool_calls', usage: { inputTokens: 120, outputTokens: 30 }, costUsd: 0.05 };
    const limits = delegationLimits({ ...halfway, lastResponse }, 2);
    expect(limits).toMatchObject({ maxTotalTokens: Math.floor((850 - 150) / 2), maxCostUsd: (0.75 - 0.05) / 2 });
  });

  it('never gives a negative share when the session has overspent', () => {
    const overspent = context({ budgets, turn: 18, delegatedSteps: 5, usage: { inputTokens: 900, outputTokens: 300, costUsd: 1.5 } });
    expect(delegationLimits(overspent, 3)).toEqual({ maxSteps: 0, maxTotalTokens: 0, maxCostUsd: 0, deadline: 61_000 });
  });

  it('gives nothing when exactly everything is spent', () => {
    const spent = context({ budgets, turn: 20, usage: { inputTokens: 600, outputTokens: 400, costUsd: 1 } });
    expect(delegationLimits(spent, 1)).toMatchObject({ maxSteps: 0, maxTotalTokens: 0, maxCostUsd: 0 });
  });

  it('carries the session’s wall-clock deadline whatever was spent and however many delegations share it', () => {
    const late = context({ budgets: { ...budgets, maxWallClockMs: 5_000 }, startedAt: 1_700_000_000_000, turn: 19 });
    for (const n of [0, 1, 2, 5]) expect(delegationLimits(late, n).deadline).toBe(1_700_000_005_000);
  });

  it('produces limits its own schema accepts', () => {
    expect(DelegationLimits.safeParse(delegationLimits(halfway, 3)).success).toBe(true);
  });
});

describe('capBudgets', () => {
  const own = Budgets.parse({ maxSteps: 20, maxToolCallsPerTurn: 4, maxTotalTokens: 10_000, maxCostUsd: 0.5, maxWallClockMs: 60_000 });
  const now = 5_000_000;

  it('lowers only the budgets above the limits and names them', () => {
    const { budgets, capped } = capBudgets(own, { maxSteps: 5, maxTotalTokens: 20_000, maxCostUsd: 0.25, deadline: now + 90_000 }, now);
    expect(budgets).toEqual({ maxSteps: 5, maxToolCallsPerTurn: 4, maxTotalTokens: 10_000, maxCostUsd: 0.25, maxWallClockMs: 60_000 });
    expect(capped).toEqual([BudgetName.maxSteps, BudgetName.maxCostUsd]);
  });

  it('caps nothing when every limit is at least the budget, including a limit equal to it', () => {
    const { budgets, capped } = capBudgets(own, { maxSteps: 20, maxTotalTokens: 10_000, maxCostUsd: 0.5, deadline: now + 60_000 }, now);
    expect(budgets).toEqual(own);
    expect(capped).toEqual([]);
  });

  it('caps every budget it can, in a fixed order', () => {
    const { budgets, capped } = capBudgets(own, { maxSteps: 1, maxTotalTokens: 100, maxCostUsd: 0.01, deadline: now + 1_000 }, now);
    expect(budgets).toEqual({ maxSteps: 1, maxToolCallsPerTurn: 4, maxTotalTokens: 100, maxCostUsd: 0.01, maxWallClockMs: 1_000 });
    expect(capped).toEqual([BudgetName.maxSteps, BudgetName.maxTotalTokens, BudgetName.maxCostUsd, BudgetName.maxWallClockMs]);
  });

  it('turns the deadline into the time left from now', () => {
    const { budgets, capped } = capBudgets(own, { maxSteps: 20, maxTotalTokens: 10_000, maxCostUsd: 0.5, deadline: now + 59_999 }, now);
    expect(budgets.maxWallClockMs).toBe(59_999);
    expect(capped).toEqual([BudgetName.maxWallClockMs]);
  });

  it('leaves the wall clock alone when the delegating session\'s deadline has passed (a person resumed it after)', () => {
    for (const deadline of [now - 10_000, now]) {
      const { budgets, capped } = capBudgets(own, { maxSteps: 20, maxTotalTokens: 10_000, maxCostUsd: 0.5, deadline }, now);
      expect(budgets.maxWallClockMs).toBe(own.maxWallClockMs);
      expect(capped).toEqual([]);
    }
  });

  it('leaves maxToolCallsPerTurn alone, even under the tightest limits', () => {
    const { budgets, capped } = capBudgets(own, { maxSteps: 0, maxTotalTokens: 0, maxCostUsd: 0, deadline: 1 }, now);
    expect(budgets.maxToolCallsPerTurn).toBe(4);
    expect(capped).not.toContain(BudgetName.maxToolCallsPerTurn);
  });

  it('does not change the budgets it was given', () => {
    const before = { ...own };
    capBudgets(own, { maxSteps: 1, maxTotalTokens: 1, maxCostUsd: 0.01, deadline: now + 1 }, now);
    expect(own).toEqual(before);
  });
});

describe('delegatedBudgets', () => {
  const own = Budgets.parse({ maxSteps: 20, maxToolCallsPerTurn: 4, maxTotalTokens: 10_000, maxCostUsd: 0.5, maxWallClockMs: 60_000 });
  const now = 5_000_000;
  const roomy = { maxSteps: 100, maxTotalTokens: 100_000, maxCostUsd: 10, deadline: now + 600_000 };

  it('lowers the wall clock to the time the call leaves, without counting it as the parent\'s cap', () => {
    expect(delegatedBudgets(own, roomy, now + 30_000, now)).toEqual({ budgets: { ...own, maxWallClockMs: 30_000 }, capped: [] });
  });

  it('caps by the delegation\'s limits on top of the call\'s time', () => {
    const limits = { maxSteps: 2, maxTotalTokens: 500, maxCostUsd: 0.01, deadline: now + 10_000 };
    expect(delegatedBudgets(own, limits, now + 30_000, now)).toEqual({
      budgets: { ...own, maxSteps: 2, maxTotalTokens: 500, maxCostUsd: 0.01, maxWallClockMs: 10_000 },
      capped: [BudgetName.maxSteps, BudgetName.maxTotalTokens, BudgetName.maxCostUsd, BudgetName.maxWallClockMs],
    });
  });

  // A delegating session resumed by a person after its deadline passes one already past.
  it('still bounds the wall clock by the call when the delegation\'s deadline has passed', () => {
    const allowance = delegatedBudgets(own, { ...roomy, deadline: now - 1 }, now + 7_000, now);
    expect(allowance?.budgets.maxWallClockMs).toBe(7_000);
  });

  it('leaves no room, rather than a session with no time, when the call leaves no time', () => {
    for (const answerBy of [now, now - 1, Number.NaN]) expect(delegatedBudgets(own, roomy, answerBy, now)).toBeUndefined();
  });

  it('never gives a specialist more than its own budgets or the delegation\'s limits, on random limits and deadlines', () => {
    for (let seed = 1; seed <= 500; seed += 1) {
      const next = seededRandom(seed);
      const limits = { maxSteps: int(next, 0, 40), maxTotalTokens: int(next, 0, 20_000), maxCostUsd: int(next, 0, 100) / 100, deadline: now + int(next, -120_000, 120_000) };
      const answerBy = now + int(next, -10_000, 120_000);
      const allowance = delegatedBudgets(own, limits, answerBy, now);
      const at = `seed ${seed}: ${JSON.stringify({ limits, answerBy: answerBy - now })}`;
      if (answerBy <= now) {
        expect(allowance, at).toBeUndefined();
        continue;
      }
      const budgets = allowance?.budgets as Budgets;
      expect(budgets.maxSteps, at).toBe(Math.min(own.maxSteps, limits.maxSteps));
      expect(budgets.maxTotalTokens, at).toBe(Math.min(own.maxTotalTokens, limits.maxTotalTokens));
      expect(budgets.maxCostUsd, at).toBe(Math.min(own.maxCostUsd, limits.maxCostUsd));
      expect(budgets.maxWallClockMs, at).toBeGreaterThan(0);
      expect(budgets.maxWallClockMs, at).toBeLessThanOrEqual(Math.min(own.maxWallClockMs, answerBy - now));
      if (limits.deadline > now) expect(budgets.maxWallClockMs, at).toBeLessThanOrEqual(limits.deadline - now);
    }
  });
});

describe('acceptDelegation', () => {
  const delegation = Delegation.parse({
    sessionId: 'delegation-call_1', parentSessionId: 'parent', depth: 1, depthLeft: 0,
    limits: { maxSteps: 1, maxTotalTokens: 1, maxCostUsd: 0, deadline: 1 },
  });

  it('accepts the calling session\'s own delegation', () => {
    expect(acceptDelegation(delegation, 'parent')).toEqual({ ok: true, delegation });
  });

  it('refuses a call without a delegation with FORBIDDEN', () => {
    expect(acceptDelegation(undefined, 'parent')).toMatchObject({ ok: false, failure: { code: 'FORBIDDEN', retryable: false } });
  });

  it('refuses a delegation made out for another session, or naming its parent as the child, with INVALID_INPUT', () => {
    expect(acceptDelegation(delegation, 'another')).toMatchObject({ ok: false, failure: { code: 'INVALID_INPUT', retryable: false } });
    expect(acceptDelegation({ ...delegation, sessionId: 'parent' }, 'parent')).toMatchObject({ ok: false, failure: { code: 'INVALID_INPUT' } });
  });

  it('is refused by the wire schema when a limit is missing, negative, fractional or not a finite number', () => {
    const withLimits = (limits: Record<string, unknown>) => ({ ...delegation, limits: { ...delegation.limits, ...limits } });
    for (const bad of [{ maxSteps: -1 }, { maxTotalTokens: 0.5 }, { maxCostUsd: Number.NaN }, { maxCostUsd: Number.POSITIVE_INFINITY }, { deadline: 0 }, { maxSteps: undefined }]) {
      expect(Delegation.safeParse(withLimits(bad)).success, JSON.stringify(bad)).toBe(false);
    }
  });
});

describe('addSpending', () => {
  const a: DelegatedSpending = { usage: { inputTokens: 100, outputTokens: 20, costUsd: 0.25 }, steps: 3, toolCalls: 5 };
  const b: DelegatedSpending = { usage: { inputTokens: 7, outputTokens: 3, costUsd: 0.5 }, steps: 1, toolCalls: 0 };

  it('adds usage, steps and tool calls', () => {
    expect(addSpending(a, b)).toEqual({ usage: { inputTokens: 107, outputTokens: 23, costUsd: 0.75 }, steps: 4, toolCalls: 5 });
  });

  it('leaves spending unchanged when nothing was delegated', () => {
    expect(addSpending(a, nothingDelegated)).toEqual(a);
    expect(addSpending(nothingDelegated, a)).toEqual(a);
  });
});

describe('delegationLimits on random sessions', () => {
  // Cents to ten-thousandths of a dollar, like real model prices.
  const dollars = (next: () => number, max: number) => int(next, 0, max * 10_000) / 10_000;

  const seeds = Array.from({ length: 2_000 }, (_, i) => i + 1);

  it('never lets n delegations together get more than the session has left', () => {
    let sharedSomething = 0;
    for (const seed of seeds) {
      const next = seededRandom(seed);
      const maxSteps = int(next, 1, 40);
      const maxTotalTokens = int(next, 1, 500_000);
      const maxCostUsd = Math.max(0.0001, dollars(next, 5));
      // Usage sometimes past the budgets: a specialist's spending arrives after the checks.
      const turn = int(next, 1, maxSteps + 3);
      const delegatedSteps = int(next, 0, 10);
      const usage = { inputTokens: int(next, 0, maxTotalTokens), outputTokens: int(next, 0, maxTotalTokens / 2), costUsd: dollars(next, 6) };
      const n = int(next, 1, 5);
      const limits = delegationLimits(context({ budgets: { maxSteps, maxTotalTokens, maxCostUsd }, turn, delegatedSteps, usage }), n);

      const stepsLeft = Math.max(0, maxSteps - turn - delegatedSteps - 1);
      const tokensLeft = Math.max(0, maxTotalTokens - usage.inputTokens - usage.outputTokens);
      const costLeft = Math.max(0, maxCostUsd - usage.costUsd);

      const at = `seed ${seed}: n=${n}, ${JSON.stringify(limits)}`;
      expect(n * limits.maxSteps, at).toBeLessThanOrEqual(stepsLeft);
      expect(n * limits.maxTotalTokens, at).toBeLessThanOrEqual(tokensLeft);
      // Dividing dollars and multiplying back can overshoot by one unit in the last place (about 1% of
      // these cases, e.g. 5 × 0.639 = 3.1950000000000003 > 3.195): harmless, so allowed and no more.
      expect(n * limits.maxCostUsd, at).toBeLessThanOrEqual(costLeft * (1 + n * Number.EPSILON));
      // Rounding down wastes less than one unit per delegation.
      expect((limits.maxSteps + 1) * n, at).toBeGreaterThan(stepsLeft);
      expect((limits.maxTotalTokens + 1) * n, at).toBeGreaterThan(tokensLeft);
      expect(DelegationLimits.safeParse(limits).success, at).toBe(true);
      if (limits.maxSteps > 0 && limits.maxTotalTokens > 0 && limits.maxCostUsd > 0) sharedSomething += 1;
    }
    // The generator must reach sessions with something left to share, not only overspent ones.
    expect(sharedSomething).toBeGreaterThan(200);
  });
});

describe('the child session id of a delegation', () => {
  const contextOf = (sessionId: string) => ({ ...context({}), sessionId, accepted: [], depth: 0, delegationDepthLeft: 2 }) as SessionContext;
  it('differs for two sessions that delegate with the same call id (regression: one shared child session)', () => {
    const a = delegationFor(contextOf('session-a'), 'call_1', () => true).sessionId;
    const b = delegationFor(contextOf('session-b'), 'call_1', () => true).sessionId;
    expect(a).not.toBe(b);
    expect(a).toBe('session-a-d-call_1');
  });

  it('stays a valid subject token of at most 128 characters for the longest ids, and still differs', () => {
    const long = 'p'.repeat(128);
    const one = delegationFor(contextOf(long), 'call_1', () => true).sessionId;
    const two = delegationFor(contextOf(long), 'call_2', () => true).sessionId;
    expect(one).toMatch(/^[A-Za-z0-9_-]{1,128}$/);
    expect(one).not.toBe(two);
  });
});
