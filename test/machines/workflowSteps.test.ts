import { describe, expect, it } from 'vitest';
import type { LedgerEntry } from '../../machines/ledger.ts';
import { WorkflowDefinition } from '../../machines/workflowDefinition.ts';
import { workflowMachineOf } from '../../machines/workflowMachine.ts';
import { decidePendingExit, phaseAfterTurn, phaseFactsOf, SessionPhase, startingPhase } from '../../machines/workflowSteps.ts';

const workflow = WorkflowDefinition.parse({
  initial: 'triage',
  states: {
    triage: { tools: ['db_query'], on: { next_phase: 'investigate' } },
    investigate: {
      tools: ['db_query', 'calc_*'],
      on: { next_phase: [{ target: 'execute', requiresApproval: true }, 'report'] },
      always: [{ target: 'escalate', guard: { type: 'failedCalls', atLeast: 3, tool: 'db_query' } }],
    },
    execute: { tools: ['refunds_issue'], on: { 'tool.refunds_issue': 'report' } },
    report: { tools: [], answer: true },
    escalate: { tools: [], answer: true },
  },
});
const machine = workflowMachineOf(workflow);
const entry = (turn: number, tool: string, status: LedgerEntry['status'] = 'ok'): LedgerEntry => ({ turn, callId: `c${turn}${tool}`, toolCallId: `t${turn}${tool}`, tool, arguments: {}, status });
const at = (value: string, enteredAt = { turn: 0, ledgerIndex: 0, costUsd: 0 }) => SessionPhase.parse({ value, enteredAt, path: [], pendingExit: null });

describe('the workflow after each turn', () => {
  it('starts in the initial phase, and counts the ledger from the phase\'s entry only', () => {
    expect(startingPhase(machine)).toEqual({ value: 'triage', enteredAt: { turn: 0, ledgerIndex: 0, costUsd: 0 }, path: [], pendingExit: null });
    const ledger = [entry(1, 'db_query', 'error'), entry(2, 'db_query', 'error'), entry(3, 'db_query'), entry(3, 'calc_evaluate', 'rejected')];
    expect(phaseFactsOf(at('investigate', { turn: 2, ledgerIndex: 1, costUsd: 0 }), ledger, 4)).toEqual({
      turnsInPhase: 2, failedCalls: { db_query: 1, calc_evaluate: 1 }, succeededCalls: { db_query: 1 },
    });
  });

  it('moves on the model\'s choice, recording the move and entering the phase now', () => {
    const step = phaseAfterTurn(machine, workflow, at('triage'), { turn: 2, ledger: [entry(1, 'db_query')], costUsd: 0.01, chosenExit: { to: 'investigate', reason: 'found it' } });
    expect(step).toEqual({
      kind: 'moved',
      move: { turn: 2, from: ['triage'], to: ['investigate'], trigger: 'choice', detail: 'found it' },
      event: { type: 'workflow.next_phase', to: 'investigate' },
      phase: { value: 'investigate', enteredAt: { turn: 2, ledgerIndex: 1, costUsd: 0.01 }, path: [{ turn: 2, from: ['triage'], to: ['investigate'], trigger: 'choice', detail: 'found it' }], pendingExit: null },
    });
  });

  it('moves when a call of this turn succeeds, and on a ledger guard counted since the phase began', () => {
    expect(phaseAfterTurn(machine, workflow, at('execute', { turn: 5, ledgerIndex: 2, costUsd: 0 }), { turn: 6, ledger: [entry(1, 'db_query'), entry(2, 'db_query'), entry(6, 'refunds_issue')], costUsd: 0 }))
      .toMatchObject({ kind: 'moved', move: { trigger: 'tool', detail: 'refunds_issue', to: ['report'] } });
    expect(phaseAfterTurn(machine, workflow, at('execute'), { turn: 6, ledger: [entry(6, 'refunds_issue', 'error')], costUsd: 0 }).kind).toBe('stayed');
    // Two failures before the phase began do not count towards its three.
    const failures = [entry(1, 'db_query', 'error'), entry(1, 'db_query', 'error'), entry(3, 'db_query', 'error'), entry(4, 'db_query', 'error')];
    expect(phaseAfterTurn(machine, workflow, at('investigate', { turn: 2, ledgerIndex: 2, costUsd: 0 }), { turn: 4, ledger: failures, costUsd: 0 }).kind).toBe('stayed');
    expect(phaseAfterTurn(machine, workflow, at('investigate', { turn: 2, ledgerIndex: 1, costUsd: 0 }), { turn: 4, ledger: failures, costUsd: 0 }))
      .toMatchObject({ kind: 'moved', move: { trigger: 'guard', to: ['escalate'] } });
  });

  it('parks a choice that needs a person, then moves or stays as the person decides', () => {
    const parked = phaseAfterTurn(machine, workflow, at('investigate'), { turn: 3, ledger: [], costUsd: 0, chosenExit: { to: 'execute', reason: 'refund due' } });
    expect(parked).toEqual({ kind: 'awaiting_approval', phase: expect.objectContaining({ value: 'investigate', pendingExit: { to: 'execute', reason: 'refund due', turn: 3 } }) });
    const approved = decidePendingExit(machine, parked.phase, { approved: true, by: 'ada' }, { turn: 3, ledger: [], costUsd: 0 });
    expect(approved).toMatchObject({ kind: 'moved', move: { trigger: 'approval', by: 'ada', to: ['execute'], detail: 'refund due' }, phase: { value: 'execute', pendingExit: null } });
    const denied = decidePendingExit(machine, parked.phase, { approved: false, by: 'bo' }, { turn: 3, ledger: [], costUsd: 0 });
    expect(denied).toEqual({ kind: 'stayed', phase: expect.objectContaining({ value: 'investigate', pendingExit: null }) });
  });

  it('keeps a checkpointed phase readable: its zod schema takes what a session stores', () => {
    const moved = phaseAfterTurn(machine, workflow, at('triage'), { turn: 1, ledger: [], costUsd: 0, chosenExit: { to: 'investigate', reason: '' } });
    expect(SessionPhase.parse(JSON.parse(JSON.stringify(moved.phase)))).toEqual(moved.phase);
  });
});
