import { describe, expect, it } from 'vitest';
import { refundDeskAgent } from '../../agents/refundDesk.ts';
import { SessionWorkflow } from '../../console/consoleApi.ts';
import { sessionWorkflowOf, workflowGraphOf } from '../../console/server/sessionWorkflow.ts';
import { ledgerGuardText } from '../../machines/workflowMachine.ts';
import { WorkflowDefinition } from '../../machines/workflowDefinition.ts';
import type { SessionPhase } from '../../machines/workflowSteps.ts';

const refundDesk = refundDeskAgent.workflow!;

// Nested and parallel phases: their ids are their names, wherever they sit.
const nested = WorkflowDefinition.parse({
  initial: 'work',
  states: {
    work: {
      type: 'parallel',
      states: {
        writing: { initial: 'draft', states: { draft: { on: { next_phase: 'polish' } }, polish: {} } },
        checking: { initial: 'facts', states: { facts: { on: { 'tool.files_read': 'sources' } }, sources: {} } },
      },
      on: { next_phase: { target: 'done', requiresApproval: true } },
      always: [{ target: 'done', guard: { type: 'turnsInPhase', atLeast: 10 } }],
    },
    done: { answer: true },
  },
});

const proposing: SessionPhase = {
  value: 'propose',
  enteredAt: { turn: 5, ledgerIndex: 3, costUsd: 0.01 },
  path: [
    { turn: 2, from: ['triage'], to: ['investigate'], trigger: 'choice', detail: 'Order 1002 exists.' },
    { turn: 5, from: ['investigate'], to: ['propose'], trigger: 'choice', detail: 'One speaker at 5900 cents.' },
  ],
  pendingExit: { to: 'execute', reason: 'The proposal is written.', turn: 7 },
};

describe('workflowGraphOf', () => {
  it('draws every phase of the refund desk under the workflow, each way out named by what fires it', () => {
    const graph = workflowGraphOf(refundDesk);

    expect(graph.nodes.map((n) => [n.id, n.parent, n.initial])).toEqual([
      ['workflow', null, false],
      ['triage', 'workflow', true],
      ['investigate', 'workflow', false],
      ['propose', 'workflow', false],
      ['execute', 'workflow', false],
      ['report', 'workflow', false],
    ]);
    expect(graph.edges.map((e) => `${e.source} -> ${e.target}: ${e.event}`)).toEqual([
      'triage -> investigate: next_phase',
      'triage -> report: next_phase',
      'investigate -> propose: next_phase',
      'investigate -> report: next_phase',
      'investigate -> triage: 3 failed db_query',
      'propose -> execute: next_phase (approval)',
      'propose -> report: next_phase',
      'execute -> report: tool.refunds_issue',
      'execute -> report: 1 failed refunds_issue',
    ]);
  });

  it('keeps nested and parallel phases nested, with their own ids', () => {
    const graph = workflowGraphOf(nested);

    expect(graph.nodes.find((n) => n.id === 'work')).toMatchObject({ type: 'parallel', parent: 'workflow' });
    expect(graph.nodes.find((n) => n.id === 'draft')).toMatchObject({ parent: 'writing', initial: true });
    expect(graph.edges.map((e) => `${e.source} -> ${e.target}: ${e.event}`).sort()).toEqual([
      'draft -> polish: next_phase',
      'facts -> sources: tool.files_read',
      'work -> done: 10 turns in the phase',
      'work -> done: next_phase (approval)',
    ]);
  });
});

describe('sessionWorkflowOf', () => {
  it('gives the graph, the active phase by its graph id, the moves and the exit that waits', () => {
    const workflow = SessionWorkflow.parse(sessionWorkflowOf(refundDesk, proposing));

    expect(workflow.active).toEqual(['propose']);
    expect(workflow.path).toEqual(proposing.path);
    expect(workflow.pendingExit).toEqual({ to: 'execute', reason: 'The proposal is written.' });
    const ids = new Set(workflow.graph.nodes.map((n) => n.id));
    for (const id of [...workflow.active, ...workflow.path.flatMap((m) => [...m.from, ...m.to]), workflow.pendingExit!.to]) expect(ids.has(id), id).toBe(true);
  });

  it('names every active phase of parallel regions, outermost first', () => {
    const phase: SessionPhase = { ...proposing, value: { work: { writing: 'polish', checking: 'facts' } }, path: [], pendingExit: null };

    expect(sessionWorkflowOf(nested, phase)?.active).toEqual(['work', 'writing', 'polish', 'checking', 'facts']);
  });

  it('is null for a session without a workflow, and for a checkpoint from before workflows', () => {
    expect(sessionWorkflowOf(null, null)).toBeNull();
    expect(sessionWorkflowOf(undefined, undefined)).toBeNull();
  });
});

describe('ledgerGuardText', () => {
  it('says each guard in a few words', () => {
    expect(ledgerGuardText({ type: 'failedCalls', atLeast: 3, tool: 'db_query' })).toBe('3 failed db_query');
    expect(ledgerGuardText({ type: 'failedCalls', atLeast: 2 })).toBe('2 failed calls');
    expect(ledgerGuardText({ type: 'succeededCalls', atLeast: 1, tool: 'calc_evaluate' })).toBe('1 ok calc_evaluate');
    expect(ledgerGuardText({ type: 'turnsInPhase', atLeast: 1 })).toBe('1 turn in the phase');
  });
});
