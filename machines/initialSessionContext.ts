import { nothingDelegated } from './delegation.ts';
import type { SessionContext, SessionInput } from './sessionContext.ts';
import { noCacheUse } from './sessionOutcome.ts';
import { noUsage } from './usage.ts';
import { compiledWorkflow } from './workflowMachine.ts';
import { startingPhase } from './workflowSteps.ts';

/** A new session's context: its input, the system prompt and the task as the conversation, nothing spent, nothing decided. */
export function initialSessionContext(input: SessionInput): SessionContext {
  return {
    ...input,
    conversation: [
      { role: 'system', content: input.instructions },
      { role: 'user', content: input.task },
    ],
    ledger: [],
    turn: 0,
    toolCalls: 0,
    usage: noUsage,
    delegated: nothingDelegated,
    routingDecision: null,
    summary: null,
    contextCalibration: 1,
    cache: noCacheUse,
    lastResponse: null,
    accepted: [],
    rejected: [],
    outcomes: {},
    outcome: null,
    consecutiveRepairs: 0,
    loopCheckFromTurn: 1,
    refocused: false,
    notices: [],
    approvalDeadline: null,
    interruptRequested: false,
    pendingInstructions: [],
    interventions: [],
    rollbacks: [],
    takenOverBy: null,
    manualCalls: [],
    phase: input.workflow ? startingPhase(compiledWorkflow(input.workflow)) : null,
    phaseChoice: null,
    // The task is the conversation's second message.
    uncheckedInput: input.guardrailPoints.includes('input') ? [1] : [],
    heldResponse: null,
  };
}
