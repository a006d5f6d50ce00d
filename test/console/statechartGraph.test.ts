import { describe, expect, it } from 'vitest';
import { refundDeskAgent } from '../../agents/refundDesk.ts';
import { activeStateIdsOf, statechartGraphOf } from '../../console/server/statechartGraph.ts';
import { sessionMachine } from '../../machines/session.ts';
import { compiledWorkflow } from '../../machines/workflowMachine.ts';

describe('activeStateIdsOf', () => {
  it('names the active states of a value as the graph does, outermost first', () => {
    expect(activeStateIdsOf(sessionMachine, { validating: 'triaging_tool_calls' })).toEqual(['session.validating', 'session.validating.triaging_tool_calls']);
    expect(activeStateIdsOf(sessionMachine, 'awaiting_phase_approval')).toEqual(['session.awaiting_phase_approval']);
  });

  // Regression: ids were built from the path, and a workflow's phases carry their own names as ids.
  it('uses a state’s own id where it has one, as a workflow’s phases do', () => {
    const workflow = compiledWorkflow(refundDeskAgent.workflow!);
    const ids = new Set(statechartGraphOf(workflow).nodes.map((n) => n.id));

    expect(activeStateIdsOf(workflow, 'propose')).toEqual(['propose']);
    expect(ids.has('propose')).toBe(true);
  });

  it('keeps the path of a state the machine does not have (a checkpoint older than the machine)', () => {
    expect(activeStateIdsOf(sessionMachine, { retired: 'inner' })).toEqual(['session.retired', 'session.retired.inner']);
    expect(activeStateIdsOf(sessionMachine, null)).toEqual([]);
  });
});
