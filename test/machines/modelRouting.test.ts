import { describe, expect, it } from 'vitest';
import { RoutingPolicy, RoutingRule, routeTurn, TurnKind, type TurnFacts } from '../../machines/modelRouting.ts';
import { seededRandom, pick, int } from '../fixtures/seededRandom.ts';

const facts = (overrides: Partial<TurnFacts> = {}): TurnFacts => ({
  turn: 3, kind: 'after_tools', toolCalls: 2, failures: 1, budgetLeft: 0.5, ...overrides,
});

/** A policy parsed like an agent's configuration, so `when` gets its default. */
const policy = (...rules: Array<Record<string, unknown>>): RoutingPolicy => RoutingPolicy.parse({ rules });

/** Routes `on` with a single rule whose conditions are `when`; the model is `chosen` when it matches. */
const routeWith = (when: Record<string, unknown>, on: Partial<TurnFacts>) => routeTurn(policy({ model: 'chosen', when }), facts(on), 'default');

describe('routeTurn', () => {
  it('chooses the model of the first rule that matches, even when later rules match too', () => {
    const decision = routeTurn(
      policy(
        { name: 'planner', model: 'big', when: { turnKinds: ['first'] } },
        { name: 'worker', model: 'small', when: { maxTurn: 10 } },
        { name: 'anything', model: 'other' },
      ),
      facts({ turn: 2, kind: 'after_tools' }),
      'default',
    );
    expect(decision).toEqual({ turn: 2, model: 'small', rule: 'worker', reason: 'worker: turn 2 ≤ 10' });
  });

  it('falls back to the default model, with no rule, when no rule matches', () => {
    const decision = routeTurn(policy({ model: 'big', when: { turnKinds: ['first'] } }), facts({ turn: 4, kind: 'repair' }), 'agent-model');
    expect(decision).toEqual({ turn: 4, model: 'agent-model', rule: null, reason: "no rule matched (turn kind repair): the agent's model" });
  });

  it('always matches a rule without conditions and says "always"', () => {
    for (const kind of TurnKind.options) {
      const decision = routeTurn(policy({ name: 'catch-all', model: 'cheap' }), facts({ kind, turn: 99, budgetLeft: 0 }), 'default');
      expect(decision).toEqual({ turn: 99, model: 'cheap', rule: 'catch-all', reason: 'catch-all: always' });
    }
  });

  it('calls unnamed rules "rule <n>", counting from 1', () => {
    const rules = policy(
      { model: 'a', when: { turnKinds: ['first'] } },
      { model: 'b', when: { turnKinds: ['repair'] } },
      { model: 'c' },
    );
    expect(routeTurn(rules, facts({ kind: 'first' }), 'default')).toMatchObject({ model: 'a', rule: 'rule 1', reason: 'rule 1: turn kind first' });
    expect(routeTurn(rules, facts({ kind: 'repair' }), 'default')).toMatchObject({ model: 'b', rule: 'rule 2', reason: 'rule 2: turn kind repair' });
    expect(routeTurn(rules, facts({ kind: 'after_tools' }), 'default')).toMatchObject({ model: 'c', rule: 'rule 3', reason: 'rule 3: always' });
  });

  it('keeps the position of a named rule in the count of the unnamed ones', () => {
    const rules = policy({ name: 'named', model: 'a', when: { turnKinds: ['first'] } }, { model: 'b' });
    expect(routeTurn(rules, facts({ kind: 'after_tools' }), 'default').rule).toBe('rule 2');
  });

  describe('conditions', () => {
    // [condition, its bound, facts that just meet it, facts that just miss it]
    const boundaries: Array<[string, Record<string, unknown>, Partial<TurnFacts>, Partial<TurnFacts>]> = [
      ['turnKinds', { turnKinds: ['repair', 'after_person'] }, { kind: 'after_person' }, { kind: 'after_tools' }],
      ['minTurn', { minTurn: 3 }, { turn: 3 }, { turn: 2 }],
      ['maxTurn', { maxTurn: 3 }, { turn: 3 }, { turn: 4 }],
      ['minToolCalls', { minToolCalls: 2 }, { toolCalls: 2 }, { toolCalls: 1 }],
      ['maxToolCalls', { maxToolCalls: 2 }, { toolCalls: 2 }, { toolCalls: 3 }],
      ['minFailures', { minFailures: 1 }, { failures: 1 }, { failures: 0 }],
      ['minBudgetLeft', { minBudgetLeft: 0.25 }, { budgetLeft: 0.25 }, { budgetLeft: 0.2499 }],
      ['maxBudgetLeft', { maxBudgetLeft: 0.25 }, { budgetLeft: 0.25 }, { budgetLeft: 0.2501 }],
    ];

    it.each(boundaries)('%s includes the facts at its bound', (_, when, meets) => {
      const decision = routeWith(when, meets);
      expect(decision.model).toBe('chosen');
      expect(decision.rule).toBe('rule 1');
    });

    it.each(boundaries)('%s excludes the facts just past its bound', (_, when, _meets, misses) => {
      const decision = routeWith(when, misses);
      expect(decision.model).toBe('default');
      expect(decision.rule).toBeNull();
    });

    it('includes the facts well inside each bound', () => {
      expect(routeWith({ minTurn: 3 }, { turn: 50 }).model).toBe('chosen');
      expect(routeWith({ maxTurn: 3 }, { turn: 1 }).model).toBe('chosen');
      expect(routeWith({ minToolCalls: 2 }, { toolCalls: 8 }).model).toBe('chosen');
      expect(routeWith({ maxToolCalls: 2 }, { toolCalls: 0 }).model).toBe('chosen');
      expect(routeWith({ minFailures: 1 }, { failures: 7 }).model).toBe('chosen');
      expect(routeWith({ minBudgetLeft: 0.25 }, { budgetLeft: 1 }).model).toBe('chosen');
      expect(routeWith({ maxBudgetLeft: 0.25 }, { budgetLeft: 0 }).model).toBe('chosen');
    });

    it('requires every condition of a rule to hold', () => {
      const when = { turnKinds: ['after_tools'], minTurn: 2, maxToolCalls: 3 };
      expect(routeWith(when, { kind: 'after_tools', turn: 2, toolCalls: 3 }).model).toBe('chosen');
      expect(routeWith(when, { kind: 'repair', turn: 2, toolCalls: 3 }).model).toBe('default');
      expect(routeWith(when, { kind: 'after_tools', turn: 1, toolCalls: 3 }).model).toBe('default');
      expect(routeWith(when, { kind: 'after_tools', turn: 2, toolCalls: 4 }).model).toBe('default');
    });

    it('treats a bound of zero as a condition that is given', () => {
      const decision = routeWith({ minToolCalls: 0, maxToolCalls: 0, minFailures: 0, minBudgetLeft: 0 }, { toolCalls: 0, failures: 0, budgetLeft: 0 });
      expect(decision.reason).toBe('rule 1: 0 tool calls last turn ≥ 0, 0 tool calls last turn ≤ 0, 0 failures so far ≥ 0, budget left 0% ≥ 0%');
      expect(routeWith({ maxToolCalls: 0 }, { toolCalls: 1 }).model).toBe('default');
      expect(routeWith({ maxBudgetLeft: 0 }, { budgetLeft: 0.01 }).model).toBe('default');
    });
  });

  describe('reason', () => {
    it('lists every given condition, in a fixed order, with the facts that met it', () => {
      const decision = routeTurn(
        policy({
          name: 'everything',
          model: 'm',
          when: {
            maxBudgetLeft: 0.9, minBudgetLeft: 0.1, minFailures: 1, maxToolCalls: 5, minToolCalls: 1, maxTurn: 9, minTurn: 2, turnKinds: ['after_tool_failure'],
          },
        }),
        facts({ turn: 4, kind: 'after_tool_failure', toolCalls: 3, failures: 2, budgetLeft: 0.456 }),
        'default',
      );
      expect(decision.reason).toBe(
        'everything: turn kind after_tool_failure, turn 4 ≥ 2, turn 4 ≤ 9, 3 tool calls last turn ≥ 1, 3 tool calls last turn ≤ 5, ' +
          '2 failures so far ≥ 1, budget left 46% ≥ 10%, budget left 46% ≤ 90%',
      );
    });

    it('lists only the conditions the rule gives', () => {
      expect(routeWith({ minFailures: 2, maxBudgetLeft: 0.3 }, { failures: 3, budgetLeft: 0.2 }).reason).toBe(
        'rule 1: 3 failures so far ≥ 2, budget left 20% ≤ 30%',
      );
      expect(routeWith({ maxTurn: 5 }, { turn: 5 }).reason).toBe('rule 1: turn 5 ≤ 5');
    });

    it('describes the matching rule, not an earlier rule that failed on a later condition', () => {
      const decision = routeTurn(
        policy({ name: 'early', model: 'a', when: { turnKinds: ['after_tools'], minFailures: 5 } }, { name: 'late', model: 'b', when: { minTurn: 1 } }),
        facts({ kind: 'after_tools', failures: 1, turn: 3 }),
        'default',
      );
      expect(decision).toEqual({ turn: 3, model: 'b', rule: 'late', reason: 'late: turn 3 ≥ 1' });
    });
  });
});

describe('RoutingPolicy', () => {
  it('refuses a rule whose lower bound is above its upper bound, since it could never match', () => {
    for (const [when, message] of [
      [{ minTurn: 4, maxTurn: 2 }, 'minTurn is above maxTurn'],
      [{ minToolCalls: 3, maxToolCalls: 1 }, 'minToolCalls is above maxToolCalls'],
      [{ minBudgetLeft: 0.6, maxBudgetLeft: 0.4 }, 'minBudgetLeft is above maxBudgetLeft'],
    ] as const) {
      const parsed = RoutingPolicy.safeParse({ rules: [{ model: 'm', when }] });
      expect(parsed.success).toBe(false);
      expect(parsed.error?.issues).toMatchObject([{ path: ['rules', 0, 'when'], message: expect.stringContaining(message) }]);
    }
    expect(RoutingPolicy.safeParse({ rules: [{ model: 'm', when: { minTurn: 2, maxTurn: 2 } }] }).success).toBe(true);
  });

  const issuesOf = (input: unknown) => {
    const parsed = RoutingPolicy.safeParse(input);
    expect(parsed.success).toBe(false);
    return parsed.error?.issues ?? [];
  };

  it('accepts a policy of rules and fills in empty conditions', () => {
    expect(RoutingPolicy.parse({ rules: [{ model: 'm' }] })).toEqual({ rules: [{ model: 'm', when: {} }] });
  });

  it('refuses an empty list of rules', () => {
    expect(issuesOf({ rules: [] })).toMatchObject([{ path: ['rules'], message: 'a routing policy needs at least one rule' }]);
  });

  it('refuses a policy without rules', () => {
    expect(issuesOf({})).toMatchObject([{ path: ['rules'] }]);
  });

  it('refuses unknown keys on the policy, a rule and its conditions', () => {
    expect(issuesOf({ rules: [{ model: 'm' }], fallback: 'x' })).toMatchObject([{ code: 'unrecognized_keys', keys: ['fallback'] }]);
    expect(issuesOf({ rules: [{ model: 'm', priority: 1 }] })).toMatchObject([{ code: 'unrecognized_keys', keys: ['priority'], path: ['rules', 0] }]);
    expect(issuesOf({ rules: [{ model: 'm', when: { turnKind: 'first' } }] })).toMatchObject([
      { code: 'unrecognized_keys', keys: ['turnKind'], path: ['rules', 0, 'when'] },
    ]);
  });

  it('refuses a turn kind it does not know, and an empty list of kinds', () => {
    expect(issuesOf({ rules: [{ model: 'm', when: { turnKinds: ['after_tools', 'planning'] } }] })).toMatchObject([
      { path: ['rules', 0, 'when', 'turnKinds', 1] },
    ]);
    expect(issuesOf({ rules: [{ model: 'm', when: { turnKinds: [] } }] })).toMatchObject([{ path: ['rules', 0, 'when', 'turnKinds'] }]);
  });

  it('refuses budget shares outside 0..1 and accepts both ends', () => {
    for (const key of ['minBudgetLeft', 'maxBudgetLeft']) {
      expect(issuesOf({ rules: [{ model: 'm', when: { [key]: 1.01 } }] })).toMatchObject([{ path: ['rules', 0, 'when', key] }]);
      expect(issuesOf({ rules: [{ model: 'm', when: { [key]: -0.01 } }] })).toMatchObject([{ path: ['rules', 0, 'when', key] }]);
      expect(RoutingPolicy.safeParse({ rules: [{ model: 'm', when: { [key]: 0 } }] }).success).toBe(true);
      expect(RoutingPolicy.safeParse({ rules: [{ model: 'm', when: { [key]: 1 } }] }).success).toBe(true);
    }
  });

  it('refuses an empty model, a blank name, turns below 1 and negative counts', () => {
    expect(issuesOf({ rules: [{ model: '' }] })).toMatchObject([{ path: ['rules', 0, 'model'] }]);
    expect(issuesOf({ rules: [{ model: 'm', name: '   ' }] })).toMatchObject([{ path: ['rules', 0, 'name'] }]);
    expect(issuesOf({ rules: [{ model: 'm', when: { minTurn: 0 } }] })).toMatchObject([{ path: ['rules', 0, 'when', 'minTurn'] }]);
    expect(issuesOf({ rules: [{ model: 'm', when: { maxToolCalls: -1 } }] })).toMatchObject([{ path: ['rules', 0, 'when', 'maxToolCalls'] }]);
    expect(issuesOf({ rules: [{ model: 'm', when: { minFailures: 1.5 } }] })).toMatchObject([{ path: ['rules', 0, 'when', 'minFailures'] }]);
  });
});

describe('routeTurn on random policies and facts', () => {
  // Small ranges and a coarse grid of shares, so facts often sit exactly on a bound.
  const shares = [0, 0.25, 0.5, 0.75, 1];
  const kinds = TurnKind.options;

  function randomRule(next: () => number): Record<string, unknown> {
    const when: Record<string, unknown> = {};
    const maybe = (key: string, value: () => unknown) => {
      if (next() < 0.3) when[key] = value();
    };
    maybe('turnKinds', () => kinds.filter(() => next() < 0.5).concat(pick(next, kinds)));
    maybe('minTurn', () => int(next, 1, 6));
    maybe('maxTurn', () => int(next, 1, 6));
    maybe('minToolCalls', () => int(next, 0, 4));
    maybe('maxToolCalls', () => int(next, 0, 4));
    maybe('minFailures', () => int(next, 0, 4));
    maybe('minBudgetLeft', () => pick(next, shares));
    maybe('maxBudgetLeft', () => pick(next, shares));
    // A lower bound above its upper bound is refused (the rule could never match): keep pairs ordered.
    for (const [low, high] of [['minTurn', 'maxTurn'], ['minToolCalls', 'maxToolCalls'], ['minBudgetLeft', 'maxBudgetLeft']] as const) {
      if (typeof when[low] === 'number' && typeof when[high] === 'number' && when[low] > when[high]) [when[low], when[high]] = [when[high], when[low]];
    }
    return { ...(next() < 0.5 ? { name: `r${int(next, 0, 99)}` } : {}), model: `model-${int(next, 0, 9)}`, when };
  }

  function randomFacts(next: () => number): TurnFacts {
    return {
      turn: int(next, 1, 6),
      kind: pick(next, kinds),
      toolCalls: int(next, 0, 4),
      failures: int(next, 0, 4),
      budgetLeft: next() < 0.7 ? pick(next, shares) : next(),
    };
  }

  /** The rule's conditions, read straight from the configuration: an independent oracle. */
  function holds(rule: RoutingRule, f: TurnFacts): boolean {
    const w = rule.when;
    if (w.turnKinds !== undefined && !w.turnKinds.includes(f.kind)) return false;
    if (w.minTurn !== undefined && f.turn < w.minTurn) return false;
    if (w.maxTurn !== undefined && f.turn > w.maxTurn) return false;
    if (w.minToolCalls !== undefined && f.toolCalls < w.minToolCalls) return false;
    if (w.maxToolCalls !== undefined && f.toolCalls > w.maxToolCalls) return false;
    if (w.minFailures !== undefined && f.failures < w.minFailures) return false;
    if (w.minBudgetLeft !== undefined && f.budgetLeft < w.minBudgetLeft) return false;
    if (w.maxBudgetLeft !== undefined && f.budgetLeft > w.maxBudgetLeft) return false;
    return true;
  }

  const seeds = Array.from({ length: 1_000 }, (_, i) => i + 1);

  it('chooses a rule model or the default, and always the first rule whose conditions all hold', () => {
    let matched = 0;
    let fellBack = 0;
    let notFirstRule = 0;
    for (const seed of seeds) {
      const next = seededRandom(seed);
      const parsed = RoutingPolicy.safeParse({ rules: Array.from({ length: int(next, 1, 4) }, () => randomRule(next)) });
      expect(parsed.success, `seed ${seed}`).toBe(true);
      const rules = parsed.data!;
      const f = randomFacts(next);
      const decision = routeTurn(rules, f, 'the-default');

      expect(decision.turn, `seed ${seed}`).toBe(f.turn);
      expect(['the-default', ...rules.rules.map((r) => r.model)], `seed ${seed}`).toContain(decision.model);

      const index = rules.rules.findIndex((rule) => holds(rule, f));
      if (index === -1) {
        fellBack += 1;
        expect(decision, `seed ${seed}`).toMatchObject({ model: 'the-default', rule: null });
      } else {
        matched += 1;
        if (index > 0) notFirstRule += 1;
        const rule = rules.rules[index]!;
        const name = rule.name ?? `rule ${index + 1}`;
        expect(decision, `seed ${seed}`).toMatchObject({ model: rule.model, rule: name });
        expect(decision.reason.startsWith(`${name}: `), `seed ${seed}`).toBe(true);
        const given = Object.values(rule.when).filter((v) => v !== undefined).length;
        if (given === 0) expect(decision.reason, `seed ${seed}`).toBe(`${name}: always`);
        else expect(decision.reason.slice(name.length + 2).split(', '), `seed ${seed}`).toHaveLength(given);
      }
    }
    // The generator must exercise every branch.
    expect(matched).toBeGreaterThan(100);
    expect(fellBack).toBeGreaterThan(100);
    expect(notFirstRule).toBeGreaterThan(50);
  });
});
