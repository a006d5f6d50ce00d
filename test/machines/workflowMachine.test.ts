import { describe, expect, it } from 'vitest';
import { WorkflowDefinition } from '../../machines/workflowDefinition.ts';
import { advanceWorkflow, initialPhaseValue, phaseOfferOf, workflowMachineOf, type PhaseFacts } from '../../machines/workflowMachine.ts';

const refundDesk = WorkflowDefinition.parse({
  initial: 'triage',
  states: {
    triage: { instructions: 'Read the order and the customer first.', tools: ['db_query'], on: { next_phase: [{ target: 'investigate', description: 'the order is found' }] } },
    investigate: {
      tools: ['db_query', 'calc_*'],
      model: 'strong-model',
      on: { next_phase: 'propose' },
      always: [{ target: 'escalate', guard: { type: 'failedCalls', atLeast: 3, tool: 'db_query' } }],
    },
    propose: { tools: ['files_write'], on: { next_phase: [{ target: 'execute', requiresApproval: true }, 'report'] } },
    execute: { tools: ['refunds_issue'], on: { 'tool.refunds_issue': 'report' } },
    report: { tools: [], answer: true },
    escalate: { tools: [], answer: true },
  },
});
const facts = (overrides: Partial<PhaseFacts> = {}): PhaseFacts => ({ turnsInPhase: 1, failedCalls: {}, succeededCalls: {}, ...overrides });

describe('a workflow run as a statechart', () => {
  const machine = workflowMachineOf(refundDesk);

  it('offers only the phase\'s tools, its instructions and its exits, and an answer only where allowed', () => {
    const start = initialPhaseValue(machine);
    expect(start).toBe('triage');
    expect(phaseOfferOf(refundDesk, start)).toEqual({
      phases: ['triage'], tools: ['db_query'], instructions: ['Read the order and the customer first.'],
      exits: [{ to: 'investigate', requiresApproval: false, description: 'the order is found' }], answerAllowed: false, model: undefined, budgets: undefined,
    });
    expect(phaseOfferOf(refundDesk, 'investigate')).toMatchObject({ tools: ['db_query', 'calc_*'], model: 'strong-model', exits: [{ to: 'propose' }] });
    expect(phaseOfferOf(refundDesk, 'execute')).toMatchObject({ tools: ['refunds_issue'], exits: [], answerAllowed: false });
    expect(phaseOfferOf(refundDesk, 'report')).toMatchObject({ tools: [], exits: [], answerAllowed: true });
  });

  it('moves on the model\'s choice of a legal exit only', () => {
    expect(advanceWorkflow(machine, 'triage', { type: 'workflow.next_phase', to: 'investigate' })).toEqual({ value: 'investigate', changed: true });
    expect(advanceWorkflow(machine, 'triage', { type: 'workflow.next_phase', to: 'execute' })).toEqual({ value: 'triage', changed: false });
  });

  it('leaves an exit that needs a person\'s approval only once approved', () => {
    expect(advanceWorkflow(machine, 'propose', { type: 'workflow.next_phase', to: 'execute' })).toEqual({ value: 'propose', changed: false });
    expect(advanceWorkflow(machine, 'propose', { type: 'workflow.next_phase', to: 'execute', approved: true })).toEqual({ value: 'execute', changed: true });
    expect(advanceWorkflow(machine, 'propose', { type: 'workflow.next_phase', to: 'report' })).toEqual({ value: 'report', changed: true });
  });

  it('moves when a tool call succeeds, and on a guard over the ledger', () => {
    expect(advanceWorkflow(machine, 'execute', { type: 'workflow.tool_succeeded', tool: 'refunds_issue' }).value).toBe('report');
    expect(advanceWorkflow(machine, 'execute', { type: 'workflow.tool_succeeded', tool: 'files_write' }).changed).toBe(false);
    expect(advanceWorkflow(machine, 'investigate', { type: 'workflow.check', facts: facts({ failedCalls: { db_query: 2, calc_evaluate: 5 } }) }).changed).toBe(false);
    expect(advanceWorkflow(machine, 'investigate', { type: 'workflow.check', facts: facts({ failedCalls: { db_query: 3 } }) }).value).toBe('escalate');
  });

  it('runs nested and parallel phases as XState does: the inner phase\'s tools, every region\'s offer', () => {
    const nested = WorkflowDefinition.parse({
      initial: 'work',
      states: {
        work: {
          initial: 'reading', tools: ['db_query'], instructions: 'Work carefully.',
          on: { next_phase: 'review' },
          states: { reading: { on: { next_phase: 'writing' } }, writing: { tools: ['files_write'], instructions: 'Write it down.' } },
        },
        review: { type: 'parallel', states: { legal: { tools: ['files_read'], answer: true }, finance: { tools: ['calc_evaluate'] } } },
      },
    });
    const flow = workflowMachineOf(nested);
    const start = initialPhaseValue(flow);
    expect(start).toEqual({ work: 'reading' });
    expect(phaseOfferOf(nested, start)).toMatchObject({ phases: ['work', 'reading'], tools: ['db_query'], exits: [{ to: 'writing' }, { to: 'review' }], instructions: ['Work carefully.'] });
    const writing = advanceWorkflow(flow, start, { type: 'workflow.next_phase', to: 'writing' }).value;
    expect(phaseOfferOf(nested, writing)).toMatchObject({ tools: ['files_write'], instructions: ['Work carefully.', 'Write it down.'], exits: [{ to: 'review' }] });
    const review = advanceWorkflow(flow, writing, { type: 'workflow.next_phase', to: 'review' }).value;
    expect(review).toEqual({ review: { legal: {}, finance: {} } });
    expect(phaseOfferOf(nested, review)).toMatchObject({ phases: ['review', 'legal', 'finance'], tools: ['files_read', 'calc_evaluate'], answerAllowed: true });
  });
});
