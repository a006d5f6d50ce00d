import { describe, expect, it } from 'vitest';
import type { Checkpoint } from '../../actors/durability/checkpointStore.ts';
import { refundDeskAgent } from '../../agents/refundDesk.ts';
import { SessionDetail } from '../../console/consoleApi.ts';
import { controlsFor, sessionDetailOf, sessionSummaryOf, stateIdOfEvent } from '../../console/server/sessionViews.ts';
import { sessionMachine } from '../../machines/session.ts';
import type { SessionContext } from '../../machines/sessionContext.ts';
import type { SessionPhase } from '../../machines/workflowSteps.ts';
import { refundDeskSession, stamped } from './sessionStream.ts';

const reason = 'The proposal is in proposals/order-1002.md: refund 5900 cents for one broken speaker.';
const proposing: SessionPhase = {
  value: 'propose',
  enteredAt: { turn: 5, ledgerIndex: 3, costUsd: 0.0005 },
  path: [
    { turn: 2, from: ['triage'], to: ['investigate'], trigger: 'choice', detail: 'Order 1002 exists.' },
    { turn: 5, from: ['investigate'], to: ['propose'], trigger: 'choice', detail: 'One speaker at 5900 cents.' },
  ],
  pendingExit: { to: 'execute', reason, turn: 7 },
};

/** A checkpoint as the store reads it; the console reads only some of the context, each field defensively. */
function checkpointOf(value: unknown, context: Partial<SessionContext>, status: Checkpoint['status'] = 'parked'): Checkpoint {
  return {
    schemaVersion: 4, sessionId: 's-1', agent: 'refund_desk', task: 'Refund order 1002.', status, snapshot: { value, context: { turn: 7, accepted: [], ...context } },
    nextEventSeq: 30, traceContext: {}, wallClockDeadline: 0, inFlightToolCalls: [], owner: 'o-1', updatedAt: '2025-01-15T09:30:00.000Z', appliedControls: [],
  } as Checkpoint;
}

describe('controlsFor', () => {
  it('offers the same controls while a workflow’s exit waits for approval as while calls do', () => {
    expect(controlsFor(checkpointOf('awaiting_phase_approval', {}))).toEqual(['approve', 'deny', 'interrupt', 'cancel']);
    expect(controlsFor(checkpointOf('awaiting_phase_approval', {}))).toEqual(controlsFor(checkpointOf('awaiting_approval', {})));
  });
});

describe('sessionDetailOf', () => {
  it('shows the exit that waits as the approval request does, with where it goes and why, and the workflow with propose active', () => {
    const checkpoint = checkpointOf('awaiting_phase_approval', { workflow: refundDeskAgent.workflow!, phase: proposing });

    const detail = SessionDetail.parse(sessionDetailOf(checkpoint, { machine: sessionMachine, jaegerUrl: null }));

    expect(detail.activeStateIds).toEqual(['session.awaiting_phase_approval']);
    expect(detail.waiting).toEqual([{
      callId: 'next_phase:execute', tool: 'next_phase', arguments: { to: 'execute', reason },
      reason: 'the model chose to leave propose for execute, a move a person approves first',
    }]);
    expect(detail.summary.waitingForApproval).toBe(1);
    expect(detail.workflow).toMatchObject({ active: ['propose'], path: proposing.path, pendingExit: { to: 'execute', reason } });
    expect(detail.workflow?.graph.nodes.map((n) => n.id)).toEqual(['workflow', 'triage', 'investigate', 'propose', 'execute', 'report']);
  });

  it('has no workflow for a session without one, nor for a checkpoint from before workflows', () => {
    expect(sessionDetailOf(checkpointOf('calling_model', { workflow: null, phase: null }, 'running'), { machine: sessionMachine, jaegerUrl: null }).workflow).toBeNull();
    const older = checkpointOf('calling_model', {}, 'running');
    expect(sessionDetailOf(older, { machine: sessionMachine, jaegerUrl: null })).toMatchObject({ workflow: null, waiting: [] });
    expect(sessionSummaryOf(older).waitingForApproval).toBe(0);
  });

  // A page built before workflows reads the detail without the field; one built after reads an older console's as none.
  it('reads a detail without a workflow field as a session without one', () => {
    const { workflow: _workflow, ...older } = sessionDetailOf(checkpointOf('calling_model', {}, 'running'), { machine: sessionMachine, jaegerUrl: null });
    expect(SessionDetail.parse(older).workflow).toBeNull();
  });
});

describe('stateIdOfEvent', () => {
  const events = refundDeskSession();
  const stateOf = (type: string, nth = 0) => stateIdOfEvent('session', events.filter((e) => e.type === type)[nth]!);

  it('marks an approval asked for a workflow’s exit as awaiting_phase_approval, and one for calls as awaiting_approval', () => {
    expect(stateOf('approval.requested')).toBe('session.awaiting_phase_approval');
    const [call] = stamped('s-2', [{ type: 'approval.requested', turn: 1, expiresAt: '2025-01-15T09:45:00.000Z', calls: [{ callId: 'c-1', tool: 'vault_open', arguments: {} }] }]);
    expect(stateIdOfEvent('session', call!)).toBe('session.awaiting_approval');
  });

  it('marks a guardrail\'s decision as the state that checks at its point', () => {
    const decided = (point: 'input' | 'toolInput' | 'toolOutput' | 'output') => stateIdOfEvent('session', {
      type: 'guardrail.decided', sessionId: 's', seq: 1, at: '2026-12-01T00:00:00Z', turn: 1, guardrail: 'pii', point, outcome: 'pass', durationMs: 1,
    });
    expect(['input', 'toolInput', 'toolOutput', 'output'].map((point) => decided(point as 'input'))).toEqual([
      'session.checking_input', 'session.validating.checking_tool_input', 'session.checking_tool_output', 'session.checking_output',
    ]);
  });

  it('marks a move at a turn’s end as observing, and an approved one as the session leaving for preparing', () => {
    const moves = events.filter((e) => e.type === 'workflow.transitioned');
    expect(moves.map((move) => [move.trigger, stateIdOfEvent('session', move)])).toEqual([
      ['choice', 'session.observing'],
      ['choice', 'session.observing'],
      ['approval', 'session.preparing'],
      ['tool', 'session.observing'],
    ]);
  });

  it('names only states the session statechart has', () => {
    const ids = new Set<string>();
    const visit = (node: { id: string; states: Record<string, unknown> }) => {
      ids.add(node.id);
      for (const child of Object.values(node.states)) visit(child as typeof node);
    };
    visit(sessionMachine.root);
    for (const event of events) {
      const id = stateIdOfEvent('session', event);
      if (id !== null) expect(ids.has(id), `${event.type} → ${id}`).toBe(true);
    }
  });
});
