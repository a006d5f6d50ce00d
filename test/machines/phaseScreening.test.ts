import { describe, expect, it } from 'vitest';
import { answerRefusedInPhase, nextPhaseTool, screenForPhase } from '../../machines/phaseScreening.ts';
import { WorkflowDefinition } from '../../machines/workflowDefinition.ts';
import { phaseOfferOf } from '../../machines/workflowMachine.ts';

const workflow = WorkflowDefinition.parse({
  initial: 'triage',
  states: {
    triage: { tools: ['db_query'], on: { next_phase: [{ target: 'investigate', description: 'the order is found' }] } },
    investigate: { tools: ['db_query', 'calc_*'], on: { next_phase: [{ target: 'execute', requiresApproval: true }, 'report'] } },
    execute: { tools: ['refunds_issue'], on: { 'tool.refunds_issue': 'report' } },
    report: { tools: [], answer: true },
  },
});
const call = (id: string, name: string, args: unknown = {}) => ({ id, name, arguments: typeof args === 'string' ? args : JSON.stringify(args) });

describe('a workflow phase enforced on the model\'s reply', () => {
  it('lets the phase\'s tools through and refuses another phase\'s tool with a repair naming the phase, its tools and its exits', () => {
    const screened = screenForPhase(phaseOfferOf(workflow, 'triage'), [call('a', 'db_query', { sql: 'select 1' }), call('b', 'refunds_issue', { order: 7 })]);
    expect(screened.calls.map((c) => c.id)).toEqual(['a']);
    expect(screened.chosenExit).toBeUndefined();
    expect(screened.rejected).toEqual([{
      toolCallId: 'b', name: 'refunds_issue', rawArguments: '{"order":7}',
      failure: {
        code: 'FORBIDDEN', retryable: false,
        message: 'refunds_issue cannot be used in the phase "triage": it did not run. The tools of this phase: db_query. To move on, call next_phase with one of: investigate.',
        details: { rule: 'workflow_phase', phase: ['triage'], allowed: ['db_query'], exits: ['investigate'] },
      },
    }]);
    // Domain patterns admit the domain's tools.
    expect(screenForPhase(phaseOfferOf(workflow, 'investigate'), [call('c', 'calc_evaluate')]).calls).toHaveLength(1);
  });

  it('takes a next_phase alone, to a legal exit, as the model\'s choice', () => {
    expect(screenForPhase(phaseOfferOf(workflow, 'investigate'), [call('n', 'next_phase', { to: 'report', reason: 'nothing to refund' })])).toEqual({
      calls: [], rejected: [], chosenExit: { toolCallId: 'n', to: 'report', reason: 'nothing to refund' },
    });
  });

  it('refuses a next_phase to nowhere, beside other calls, or where the phase has no exit to choose', () => {
    const nowhere = screenForPhase(phaseOfferOf(workflow, 'triage'), [call('n', 'next_phase', { to: 'execute' })]);
    expect(nowhere.chosenExit).toBeUndefined();
    expect(nowhere.rejected[0]?.failure).toMatchObject({ code: 'INVALID_INPUT', message: 'next_phase did not move the work: "to" must be one of: investigate (it was "execute").' });
    const mixed = screenForPhase(phaseOfferOf(workflow, 'triage'), [call('q', 'db_query'), call('n', 'next_phase', { to: 'investigate' })]);
    expect(mixed.calls).toEqual([]);
    expect(mixed.chosenExit).toBeUndefined();
    expect(mixed.rejected.map((r) => [r.toolCallId, r.failure.code])).toEqual([['n', 'INVALID_INPUT'], ['q', 'INVALID_INPUT']]);
    expect(mixed.rejected[1]?.failure.message).toBe('db_query did not run: your reply also called next_phase. Finish this phase\'s work first, then call next_phase alone.');
    expect(screenForPhase(phaseOfferOf(workflow, 'report'), [call('n', 'next_phase', { to: 'triage' })]).rejected[0]?.failure.message)
      .toBe('next_phase did not move the work: the phase "report" has no exit you choose: it ends with your final answer.');
    expect(screenForPhase(phaseOfferOf(workflow, 'triage'), [call('n', 'next_phase', '{"to": ')]).rejected[0]?.failure.code).toBe('INVALID_INPUT');
  });

  it('offers next_phase only where the model chooses an exit, with the exits as an enum', () => {
    expect(nextPhaseTool(phaseOfferOf(workflow, 'execute'))).toBeUndefined();
    const tool = nextPhaseTool(phaseOfferOf(workflow, 'investigate'));
    expect(tool?.parameters).toMatchObject({ properties: { to: { enum: ['execute', 'report'] } }, required: ['to', 'reason'] });
    expect(tool?.description).toContain('execute — a person approves this move first');
  });

  it('tells a model that answers too early how to move on', () => {
    expect(answerRefusedInPhase(phaseOfferOf(workflow, 'investigate'))).toBe(
      'Your answer was not accepted: the work is in the phase "investigate", which does not end with an answer. Finish its work, then call next_phase with one of: execute, report.');
    expect(answerRefusedInPhase(phaseOfferOf(workflow, 'execute'))).toContain('the next phase follows from it');
  });
});
