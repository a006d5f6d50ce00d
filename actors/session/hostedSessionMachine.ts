import { fromPromise } from 'xstate';
import type { ModelResponse } from '../../machines/conversation.ts';
import type { RollbackReport } from '../../machines/rollback.ts';
import type { CheckGuardrailsInput, GuardrailCheck } from '../../machines/sessionProtocol.ts';
import { sessionMachine, type CallModelInput, type ExecuteToolCallInput, type RollBackInput, type TriageToolCallsInput } from '../../machines/session.ts';
import type { ToolCallOutcome, ToolCallTriage } from '../../machines/toolCallOutcome.ts';
import { ActorSystemHooks, type SessionStep } from './actorSystemHooks.ts';
import type { WorkflowDefinition } from '../../machines/workflowDefinition.ts';
import { compiledWorkflow } from '../../machines/workflowMachine.ts';

/** A hosted session's own actors: its model calls, triage, tool calls and rollbacks, bound to its dependencies. */
export interface SessionActors {
  callModel: SessionStep<CallModelInput, ModelResponse>;
  triageToolCalls: SessionStep<TriageToolCallsInput, ToolCallTriage>;
  executeToolCall: SessionStep<ExecuteToolCallInput, ToolCallOutcome>;
  rollBack: SessionStep<RollBackInput, RollbackReport>;
  checkGuardrails: SessionStep<CheckGuardrailsInput, GuardrailCheck>;
}

/** Where each hosted session's actors are found: attach them to the session actor's system before it starts. */
export const sessionActors = new ActorSystemHooks<SessionActors>('session actors');

/** The session statechart as every host runs it, provided once for all the sessions of this process (see ActorSystemHooks). */
const hostedLoop = sessionMachine.provide({
  actors: {
    callModel: fromPromise<ModelResponse, CallModelInput>(({ input, signal, system }) => sessionActors.of(system).callModel({ input, signal })),
    triageToolCalls: fromPromise<ToolCallTriage, TriageToolCallsInput>(({ input, signal, system }) => sessionActors.of(system).triageToolCalls({ input, signal })),
    executeToolCall: fromPromise<ToolCallOutcome, ExecuteToolCallInput>(({ input, signal, system }) => sessionActors.of(system).executeToolCall({ input, signal })),
    rollBack: fromPromise<RollbackReport, RollBackInput>(({ input, signal, system }) => sessionActors.of(system).rollBack({ input, signal })),
    checkGuardrails: fromPromise<GuardrailCheck, CheckGuardrailsInput>(({ input, signal, system }) => sessionActors.of(system).checkGuardrails({ input, signal })),
  },
});

// Providing a machine costs about 0.5 ms and 30 KB: once per workflow definition, not per session.
const withWorkflow = new WeakMap<WorkflowDefinition, typeof hostedLoop>();

/** The hosted statechart for a session with `workflow` (its child actor runs it), or without one. */
export function hostedSessionMachine(workflow: WorkflowDefinition | null): typeof hostedLoop {
  if (!workflow) return hostedLoop;
  let machine = withWorkflow.get(workflow);
  if (!machine) withWorkflow.set(workflow, (machine = hostedLoop.provide({ actors: { workflow: compiledWorkflow(workflow) } })));
  return machine;
}
