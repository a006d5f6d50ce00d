import { describe, expect, it } from 'vitest';
import { createActor, toPromise } from 'xstate';
import type { BudgetsInput } from '../../machines/budgets.ts';
import type { Intervention, LedgerEntry } from '../../machines/ledger.ts';
import { RoutingPolicy, routeTurn } from '../../machines/modelRouting.ts';
import type { RecoveryNotice } from '../../machines/recovery.ts';
import { sessionMachine, type SessionContext } from '../../machines/session.ts';
import type { SessionResult } from '../../machines/sessionOutcome.ts';
import { routeCurrentTurn, turnFactsOf } from '../../machines/turnFacts.ts';
import { acceptingTriage, answer, askTools, echoTools, scriptedModelActor, sessionInput } from '../fixtures/sessionFakes.ts';

/** A session's context as it stands when `turn` starts (the machine's own initial context), with nothing spent unless `overrides` say so. */
function context(overrides: Partial<SessionContext> = {}, budgets: BudgetsInput = {}): SessionContext {
  const initial = createActor(sessionMachine, { input: sessionInput(budgets) }).getSnapshot().context;
  return { ...initial, turn: 1, ...overrides };
}

let nextCall = 0;
function entry(turn: number, status: LedgerEntry['status'] = 'ok'): LedgerEntry {
  nextCall += 1;
  return { turn, callId: `call-${nextCall}`, toolCallId: `t${nextCall}`, tool: 'files_read', arguments: {}, status };
}

const intervention = (turn: number, kind: Intervention['kind']): Intervention => ({ turn, kind });
const repairNotice = (turn: number): RecoveryNotice => ({ kind: 'repair', turn, reason: 'empty response', consecutive: 1 });

describe('turnFactsOf', () => {
  describe('turn kind', () => {
    it('is first on turn 1, whatever else the context holds', () => {
      const facts = turnFactsOf(context({
        turn: 1, consecutiveRepairs: 2, interventions: [intervention(1, 'answered')], ledger: [entry(1, 'error')],
      }));
      expect(facts.kind).toBe('first');
    });

    it('is repair while repairs are pending, ahead of a person and failed calls', () => {
      const facts = turnFactsOf(context({
        turn: 4, consecutiveRepairs: 1, interventions: [intervention(3, 'redirected')], ledger: [entry(3, 'rejected')],
      }));
      expect(facts.kind).toBe('repair');
    });

    it.each(['answered', 'redirected', 'handed_back'] as const)('is after_person when a person %s at the previous turn', (kind) => {
      expect(turnFactsOf(context({ turn: 5, interventions: [intervention(4, kind)], ledger: [entry(4, 'error')] })).kind).toBe('after_person');
    });

    it('is after_person when a person spoke during the turn now starting', () => {
      expect(turnFactsOf(context({ turn: 5, interventions: [intervention(5, 'answered')] })).kind).toBe('after_person');
    });

    it('is not after_person when the person spoke before the previous turn', () => {
      expect(turnFactsOf(context({ turn: 5, interventions: [intervention(3, 'answered')], ledger: [entry(4)] })).kind).toBe('after_tools');
    });

    it.each(['approved', 'denied', 'approval_expired', 'interrupted', 'continued', 'escalated', 'rolled_back', 'took_over'] as const)(
      'is not after_person for a %s intervention',
      (kind) => {
        expect(turnFactsOf(context({ turn: 5, interventions: [intervention(4, kind)], ledger: [entry(4)] })).kind).toBe('after_tools');
      },
    );

    it.each(['error', 'rejected'] as const)('is after_tool_failure when a call of the previous turn ended %s', (status) => {
      expect(turnFactsOf(context({ turn: 3, ledger: [entry(2), entry(2, status), entry(2)] })).kind).toBe('after_tool_failure');
    });

    it('is after_tools when every call of the previous turn succeeded, whatever failed earlier', () => {
      expect(turnFactsOf(context({ turn: 4, ledger: [entry(1, 'error'), entry(2, 'rejected'), entry(3), entry(3)] })).kind).toBe('after_tools');
    });

    it('is after_tools when the previous turn made no calls', () => {
      expect(turnFactsOf(context({ turn: 2 })).kind).toBe('after_tools');
    });
  });

  describe('tool calls', () => {
    it('counts the calls of the previous turn only', () => {
      const ledger = [entry(1), entry(2), entry(2, 'error'), entry(2, 'rejected'), entry(3)];
      expect(turnFactsOf(context({ turn: 3, ledger })).toolCalls).toBe(3);
      expect(turnFactsOf(context({ turn: 4, ledger })).toolCalls).toBe(1);
      expect(turnFactsOf(context({ turn: 5, ledger })).toolCalls).toBe(0);
    });
  });

  describe('failures', () => {
    it('counts the turns that went wrong: a failed or refused call, or a repair', () => {
      const facts = turnFactsOf(context({
        turn: 6,
        ledger: [entry(1, 'error'), entry(2), entry(3, 'rejected'), entry(4, 'error'), entry(5)],
        notices: [
          repairNotice(2),
          repairNotice(4),
          { kind: 'model_switched', turn: 4, from: 'a', to: 'b', reason: 'repairs' },
          { kind: 'loop_detected', turn: 5, action: 'refocus', evidence: { kind: 'no_progress', turns: [3, 4, 5] }, description: 'You are stuck.' },
        ],
      }));
      // Turns 1 (error), 2 (repair), 3 (refused) and 4 (error and repair, once).
      expect(facts.failures).toBe(4);
    });

    it('counts a refused call that also needed a repair once', () => {
      const facts = turnFactsOf(context({ turn: 3, ledger: [entry(1), entry(2, 'rejected')], notices: [repairNotice(2)] }));
      expect(facts.failures).toBe(1);
    });

    it('does not count a call a person denied, nor make the next turn one after a failure', () => {
      const denied = { ...entry(2, 'rejected'), errorCode: 'FORBIDDEN' as const };
      const facts = turnFactsOf(context({ turn: 3, ledger: [entry(1), denied], interventions: [{ turn: 2, kind: 'denied', by: 'ops', detail: 'no' }] }));
      expect(facts.failures).toBe(0);
      expect(facts.kind).toBe('after_tools');
    });

    it('is zero when nothing failed', () => {
      expect(turnFactsOf(context({ turn: 3, ledger: [entry(1), entry(2)] })).failures).toBe(0);
    });
  });

  describe('budget left', () => {
    const budgets = { maxSteps: 10, maxTotalTokens: 1_000, maxCostUsd: 2 };

    it('is all of it on the first turn with nothing spent', () => {
      expect(turnFactsOf(context({ turn: 1 }, budgets)).budgetLeft).toBe(1);
    });

    it('counts the turns before this one and the specialists’ steps against the steps', () => {
      // (3 - 1) + 2 = 4 of 10 steps spent; tokens and cost untouched.
      const facts = turnFactsOf(context({ turn: 3, delegated: { usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 }, steps: 2, toolCalls: 0 } }, budgets));
      expect(facts.budgetLeft).toBeCloseTo(0.6, 10);
    });

    it('takes the smallest share over steps, tokens and cost', () => {
      // Steps: 1 of 10 spent (0.9 left). Tokens: 700 of 1000 (0.3 left). Cost: 1 of 2 (0.5 left).
      const byTokens = turnFactsOf(context({ turn: 2, usage: { inputTokens: 500, outputTokens: 200, costUsd: 1 } }, budgets));
      expect(byTokens.budgetLeft).toBeCloseTo(0.3, 10);
      // Cost: 1.8 of 2 (0.1 left) is now the smallest.
      const byCost = turnFactsOf(context({ turn: 2, usage: { inputTokens: 500, outputTokens: 200, costUsd: 1.8 } }, budgets));
      expect(byCost.budgetLeft).toBeCloseTo(0.1, 10);
      // Steps: 8 of 10 spent (0.2 left) is the smallest.
      const bySteps = turnFactsOf(context({ turn: 9, usage: { inputTokens: 100, outputTokens: 0, costUsd: 0.2 } }, budgets));
      expect(bySteps.budgetLeft).toBeCloseTo(0.2, 10);
    });

    it('stops at zero when a budget is overspent', () => {
      const facts = turnFactsOf(context({ turn: 2, usage: { inputTokens: 2_000, outputTokens: 500, costUsd: 0.1 } }, budgets));
      expect(facts.budgetLeft).toBe(0);
    });
  });

  it('carries the turn number', () => {
    expect(turnFactsOf(context({ turn: 7 })).turn).toBe(7);
  });
});

describe('routeCurrentTurn', () => {
  const routing = RoutingPolicy.parse({
    rules: [
      { name: 'plan', model: 'planner', when: { turnKinds: ['first'] } },
      { name: 'recover', model: 'careful', when: { turnKinds: ['after_tool_failure', 'repair'] } },
    ],
  });

  it('returns null when the agent has no routing policy', () => {
    expect(routeCurrentTurn(context({ turn: 1, routing: null }))).toBeNull();
  });

  it('routes the turn by the facts of the context', () => {
    expect(routeCurrentTurn(context({ turn: 1, routing }))).toEqual({ turn: 1, model: 'planner', rule: 'plan', reason: 'plan: turn kind first' });
    expect(routeCurrentTurn(context({ turn: 3, routing, ledger: [entry(2, 'error')] }))).toEqual({
      turn: 3, model: 'careful', rule: 'recover', reason: 'recover: turn kind after_tool_failure',
    });
  });

  it('falls back to the session’s model when no rule matches', () => {
    const ctx = context({ turn: 2, routing, model: 'agent-model', ledger: [entry(1)] });
    expect(routeCurrentTurn(ctx)).toEqual(routeTurn(routing, turnFactsOf(ctx), 'agent-model'));
    expect(routeCurrentTurn(ctx)).toMatchObject({ model: 'agent-model', rule: null });
  });
});

describe('routing in the session statechart', () => {
  async function run(routing: RoutingPolicy) {
    const model = scriptedModelActor([askTools([{ id: 'a', name: 'calc_evaluate', arguments: '{"expression":"1+1"}' }]), answer('2')]);
    const actor = createActor(
      sessionMachine.provide({ actors: { callModel: model.logic, triageToolCalls: acceptingTriage, executeToolCall: echoTools().logic } }),
      { input: sessionInput({}, { routing }) },
    );
    actor.start();
    const result = (await toPromise(actor)) as SessionResult;
    model.assertAllUsed();
    return { result, model, context: actor.getSnapshot().context };
  }

  it('calls the model each turn chooses and keeps the last turn’s decision', async () => {
    const { result, model, context: final } = await run(RoutingPolicy.parse({
      rules: [
        { name: 'plan', model: 'planner', when: { turnKinds: ['first'] } },
        { name: 'after tools', model: 'worker', when: { turnKinds: ['after_tools'], minToolCalls: 1 } },
      ],
    }));
    expect(result.outcome).toMatchObject({ status: 'completed', output: '2' });
    expect(model.calls.map((c) => [c.turn, c.model])).toEqual([[1, 'planner'], [2, 'worker']]);
    expect(final.routingDecision).toEqual({
      turn: 2, model: 'worker', rule: 'after tools', reason: 'after tools: turn kind after_tools, 1 tool calls last turn ≥ 1',
    });
  });

  it('calls the agent’s model on a turn no rule matches', async () => {
    const { model, context: final } = await run(RoutingPolicy.parse({ rules: [{ model: 'planner', when: { maxTurn: 1 } }] }));
    expect(model.calls.map((c) => c.model)).toEqual(['planner', 'scripted']);
    expect(final.routingDecision).toMatchObject({ turn: 2, model: 'scripted', rule: null });
  });
});
