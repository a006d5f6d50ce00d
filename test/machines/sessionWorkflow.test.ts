import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, waitFor, type Actor } from 'xstate';
import { AgentDefinitionError, defineAgent } from '../../agents/defineAgent.ts';
import type { ModelResponse } from '../../machines/conversation.ts';
import { PersistedSessionSnapshot } from '../../machines/persistedSnapshot.ts';
import { sessionMachine, type ExecuteToolCallInput, type SessionMachine } from '../../machines/session.ts';
import type { SessionResult } from '../../machines/sessionOutcome.ts';
import type { ToolCallOutcome } from '../../machines/toolCallOutcome.ts';
import { WorkflowDefinition, type WorkflowSpec } from '../../machines/workflowDefinition.ts';
import { compiledWorkflow } from '../../machines/workflowMachine.ts';
import { acceptingTriage, answer, askTools, scriptedModelActor, sessionInput } from '../fixtures/sessionFakes.ts';

const refundDesk: WorkflowSpec = {
  initial: 'triage',
  states: {
    triage: { instructions: 'Find the order.', tools: ['db_*'], on: { next_phase: 'investigate' } },
    investigate: {
      instructions: 'Check what is refundable.',
      tools: ['db_query', 'calc_evaluate'],
      on: { next_phase: 'propose' },
      always: [{ target: 'triage', guard: { type: 'failedCalls', tool: 'db_query', atLeast: 2 } }],
    },
    propose: { tools: ['files_write'], on: { next_phase: [{ target: 'execute', requiresApproval: true }, 'report'] } },
    execute: { tools: ['refunds_issue'], on: { 'tool.refunds_issue': 'report' } },
    report: { tools: [], answer: true, budgets: { maxSteps: 2 } },
  },
};

const moveTo = (id: string, to: string, reason = 'done here') => askTools([{ id, name: 'next_phase', arguments: JSON.stringify({ to, reason }) }]);

/** Tools that echo their arguments, except a db_query whose SQL says "bad", which fails. */
function tools() {
  const calls: ExecuteToolCallInput[] = [];
  const logic = fromPromise<ToolCallOutcome, ExecuteToolCallInput>(async ({ input }) => {
    calls.push(input);
    if (input.call.name === 'db_query' && JSON.stringify(input.call.arguments).includes('bad')) {
      return { status: 'error', callId: input.call.callId, failure: { code: 'INVALID_INPUT', message: 'no such column', retryable: false }, durationMs: 1 };
    }
    return { status: 'ok', callId: input.call.callId, result: { echo: input.call.arguments }, durationMs: 1 };
  });
  return { logic, calls };
}

function startSession(responses: ModelResponse[], workflow: WorkflowSpec = refundDesk) {
  const model = scriptedModelActor(responses);
  const executed = tools();
  const definition = WorkflowDefinition.parse(workflow);
  const machine = sessionMachine.provide({ actors: { callModel: model.logic, triageToolCalls: acceptingTriage, executeToolCall: executed.logic, workflow: compiledWorkflow(definition) } });
  const actor = createActor(machine, { input: sessionInput({}, { workflow: definition }) });
  actor.start();
  return { actor, model, executed, machine };
}

const phasesOffered = (model: ReturnType<typeof scriptedModelActor>) => model.calls.map((call) => call.offer?.phases.join(' › '));
/** The session's workflow child's phases, as the inspector shows them. */
const workflowChildValue = (actor: Actor<SessionMachine>) => (actor.getSnapshot().children as Record<string, { getSnapshot(): { value: unknown } } | undefined>).workflow?.getSnapshot().value;
const done = async (actor: Actor<SessionMachine>) => (await waitFor(actor, (s) => s.status === 'done')).output as SessionResult;

describe('a session with a workflow', () => {
  it('offers each turn only its phase’s tools, with next_phase where the model chooses the exit, and the phase’s instructions', async () => {
    const { actor, model } = startSession([
      askTools([{ id: 'q1', name: 'db_schema' }]),
      moveTo('m1', 'investigate'),
      moveTo('m2', 'propose'),
      moveTo('m3', 'report', 'no refund is due'),
      answer('No refund is due.'),
    ]);
    const phasesOfChild: unknown[] = [];
    actor.subscribe(() => phasesOfChild.push(workflowChildValue(actor)));
    const result = await done(actor);
    expect(result.outcome).toMatchObject({ status: 'completed', output: 'No refund is due.' });
    // The workflow runs as the session's child actor too, taking the same transitions.
    expect([...new Set(phasesOfChild)]).toEqual(['triage', 'investigate', 'propose', 'report']);
    expect(model.calls.map((call) => call.offer && { tools: call.offer.tools, nextPhase: call.offer.nextPhase?.name ?? null })).toEqual([
      { tools: ['db_*'], nextPhase: 'next_phase' },
      { tools: ['db_*'], nextPhase: 'next_phase' },
      { tools: ['db_query', 'calc_evaluate'], nextPhase: 'next_phase' },
      { tools: ['files_write'], nextPhase: 'next_phase' },
      { tools: [], nextPhase: null },
    ]);
    expect(model.calls[3]?.offer?.nextPhase?.parameters).toMatchObject({ properties: { to: { enum: ['execute', 'report'] } } });
    // The phase's section follows the agent's own prompt; the stored transcript keeps the prompt alone.
    expect(model.calls[0]?.messages[0]?.content).toBe('You are a test agent.\n\nCurrent phase of your work: triage.\nFind the order.\nWhen the work of this phase is done, call next_phase with one of: investigate.');
    expect(model.calls[4]?.messages[0]?.content).toContain('This phase ends with your final answer.');
    expect(actor.getSnapshot().context.conversation[0]?.content).toBe('You are a test agent.');
    expect(result.workflow).toEqual({
      phases: ['report'],
      path: [
        { turn: 2, from: ['triage'], to: ['investigate'], trigger: 'choice', detail: 'done here' },
        { turn: 3, from: ['investigate'], to: ['propose'], trigger: 'choice', detail: 'done here' },
        { turn: 4, from: ['propose'], to: ['report'], trigger: 'choice', detail: 'no refund is due' },
      ],
    });
    // The model's choices are in the ledger as the calls they were, answered by the session.
    expect(result.ledger.filter((e) => e.tool === 'next_phase').map((e) => [e.turn, e.status, e.callId])).toEqual([[2, 'ok', null], [3, 'ok', null], [4, 'ok', null]]);
  });

  it('refuses a call of a tool the phase does not offer before it reaches a tool, and tells the model the phase, its tools and its exits', async () => {
    const { actor, model, executed } = startSession([
      askTools([{ id: 'r1', name: 'refunds_issue', arguments: '{"orderId":7}' }, { id: 'q1', name: 'db_query', arguments: '{"sql":"select 1"}' }]),
      moveTo('m1', 'execute'),
      moveTo('m2', 'investigate'),
      moveTo('m3', 'propose'),
      moveTo('m4', 'report'),
      answer('done'),
    ]);
    const result = await done(actor);
    expect(result.outcome.status).toBe('completed');
    expect(executed.calls.map((c) => c.call.name)).toEqual(['db_query']);
    const answers = actor.getSnapshot().context.conversation.filter((m) => m.role === 'tool').map((m) => JSON.parse(m.content as string) as { ok: boolean; error?: { code: string; message: string; details: unknown } });
    expect(answers[0]).toEqual({
      ok: false,
      error: {
        code: 'FORBIDDEN', retryable: false,
        message: 'refunds_issue cannot be used in the phase "triage": it did not run. The tools of this phase: db_*. To move on, call next_phase with one of: investigate.',
        details: { rule: 'workflow_phase', phase: ['triage'], allowed: ['db_*'], exits: ['investigate'] },
      },
    });
    expect(answers[1]?.ok).toBe(true);
    // Skipping a phase: "execute" is not an exit of triage.
    expect(answers[2]?.error).toMatchObject({ code: 'INVALID_INPUT', message: 'next_phase did not move the work: "to" must be one of: investigate (it was "execute").' });
    expect(result.ledger.slice(0, 3).map((e) => [e.tool, e.status, e.errorCode])).toEqual([['refunds_issue', 'rejected', 'FORBIDDEN'], ['db_query', 'ok', undefined], ['next_phase', 'rejected', 'INVALID_INPUT']]);
    expect(phasesOffered(model)).toEqual(['triage', 'triage', 'triage', 'investigate', 'propose', 'report']);
    // Both refusals were the model's mistakes: repairs, each reported.
    expect(actor.getSnapshot().context.notices.filter((n) => n.kind === 'repair').map((n) => (n as { reason: string }).reason)).toEqual([
      'refunds_issue: FORBIDDEN (workflow_phase)', 'next_phase: INVALID_INPUT (workflow_phase)',
    ]);
  });

  it('moves when the phase’s tool succeeds, and when a guard over the ledger holds', async () => {
    const { actor } = startSession([
      moveTo('m1', 'investigate'),
      askTools([{ id: 'q1', name: 'db_query', arguments: '{"sql":"bad one"}' }]),
      askTools([{ id: 'q2', name: 'db_query', arguments: '{"sql":"bad two"}' }]),
      // Two failed queries: back in triage.
      moveTo('m2', 'investigate'),
      moveTo('m3', 'propose'),
      moveTo('m4', 'execute'),
    ], { ...refundDesk, states: { ...refundDesk.states, propose: { tools: ['files_write'], on: { next_phase: ['execute', 'report'] } } } });
    await waitFor(actor, (s) => s.context.phase?.value === 'execute');
    expect(actor.getSnapshot().context.phase?.path.map((m) => `${m.trigger}:${m.to.join()}`)).toEqual([
      'choice:investigate', 'guard:triage', 'choice:investigate', 'choice:propose', 'choice:execute',
    ]);
    expect(actor.getSnapshot().context.phase?.path[1]).toEqual({ turn: 3, from: ['investigate'], to: ['triage'], trigger: 'guard', detail: '2 failed db_query' });
    actor.stop();

    const executing = startSession([
      moveTo('m1', 'investigate'), moveTo('m2', 'propose'), moveTo('m3', 'execute'),
      askTools([{ id: 'r1', name: 'refunds_issue', arguments: '{"orderId":7}' }]),
      answer('Refunded order 7.'),
    ], { ...refundDesk, states: { ...refundDesk.states, propose: { tools: ['files_write'], on: { next_phase: ['execute', 'report'] } } } });
    const result = await done(executing.actor);
    expect(result.outcome).toMatchObject({ status: 'completed', output: 'Refunded order 7.' });
    expect(result.workflow?.path.at(-1)).toEqual({ turn: 4, from: ['execute'], to: ['report'], trigger: 'tool', detail: 'refunds_issue' });
  });

  it('parks for a person when the exit needs approval: approved, it moves; denied, it stays and the model is told why', async () => {
    const { actor, model } = startSession([
      moveTo('m1', 'investigate'), moveTo('m2', 'propose'),
      moveTo('m3', 'execute', 'the proposal is written'),
      moveTo('m4', 'execute', 'revised as asked'),
      askTools([{ id: 'r1', name: 'refunds_issue', arguments: '{"orderId":7}' }]),
      answer('Refunded.'),
    ]);
    await waitFor(actor, (s) => s.matches('awaiting_phase_approval'));
    const waiting = actor.getSnapshot().context;
    expect(waiting.phase?.pendingExit).toEqual({ to: 'execute', reason: 'the proposal is written', turn: 3 });
    expect(JSON.parse(waiting.conversation.at(-1)?.content as string)).toEqual({ ok: true, result: { phase: 'execute', moved: false, waiting: 'A person approves moving to "execute" first; you will be told what they decided.' } });
    actor.send({ type: 'session.approval_deadline', at: 1_000 });
    expect(actor.getSnapshot().context.approvalDeadline).toBe(1_000);
    actor.send({ type: 'session.deny', by: 'ana', reason: 'refund 20, not 25' });
    await waitFor(actor, (s) => s.matches('awaiting_phase_approval') && s.context.turn === 4);
    const denied = actor.getSnapshot().context;
    expect(denied.phase?.value).toBe('propose');
    expect(denied.approvalDeadline).toBeNull();
    expect(model.calls[3]?.messages.at(-1)).toEqual({ role: 'user', content: 'ana did not approve moving to the phase "execute": refund 20, not 25. The work stays in the phase "propose": revise it, or choose another way on.' });
    actor.send({ type: 'session.approve', by: 'ana', at: '2026-11-30T00:00:00Z' });
    const result = await done(actor);
    expect(result.outcome.status).toBe('completed');
    expect(result.workflow?.path.slice(2)).toEqual([
      { turn: 4, from: ['propose'], to: ['execute'], trigger: 'approval', detail: 'revised as asked', by: 'ana' },
      { turn: 5, from: ['execute'], to: ['report'], trigger: 'tool', detail: 'refunds_issue' },
    ]);
    expect(result.interventions.map((i) => [i.kind, i.by, i.detail])).toEqual([['denied', 'ana', 'next_phase → execute: refund 20, not 25'], ['approved', 'ana', 'next_phase → execute']]);
    expect(phasesOffered(model)).toEqual(['triage', 'investigate', 'propose', 'propose', 'execute', 'report']);
  });

  it('sends a final answer outside an answering phase back, and ends when the phase’s own budget is spent', async () => {
    const { actor, model } = startSession([
      answer('Refunded, surely.'),
      moveTo('m1', 'investigate'), moveTo('m2', 'propose'), moveTo('m3', 'report'),
      askTools([{ id: 'x', name: 'db_query' }]),
      askTools([{ id: 'y', name: 'db_query' }]),
    ]);
    const result = await done(actor);
    expect(model.calls[1]?.messages.at(-1)).toEqual({
      role: 'user',
      content: 'Your answer was not accepted: the work is in the phase "triage", which does not end with an answer. Finish its work, then call next_phase with one of: investigate.',
    });
    // report allows two turns: the refused db_query calls spent them.
    expect(result.outcome).toMatchObject({ status: 'budget_exhausted', budget: 'maxSteps', stopReason: 'budget exhausted: maxSteps of the phase "report"' });
    expect(model.calls).toHaveLength(6);
  });

  it('keeps its phase in its persisted snapshot, and goes on from it when restored', async () => {
    const first = startSession([moveTo('m1', 'investigate'), moveTo('m2', 'propose'), moveTo('m3', 'execute')]);
    await waitFor(first.actor, (s) => s.matches('awaiting_phase_approval'));
    const persisted = first.actor.getPersistedSnapshot();
    first.actor.stop();
    const stored = PersistedSessionSnapshot.safeParse(JSON.parse(JSON.stringify(persisted)));
    expect(stored.success).toBe(true);

    const model = scriptedModelActor([askTools([{ id: 'r1', name: 'refunds_issue', arguments: '{}' }]), answer('Refunded.')]);
    const definition = WorkflowDefinition.parse(refundDesk);
    const machine = sessionMachine.provide({ actors: { callModel: model.logic, triageToolCalls: acceptingTriage, executeToolCall: tools().logic, workflow: compiledWorkflow(definition) } });
    const resumed = createActor(machine, { snapshot: JSON.parse(JSON.stringify(persisted)), input: sessionInput() });
    resumed.start();
    expect(resumed.getSnapshot().value).toBe('awaiting_phase_approval');
    expect(workflowChildValue(resumed)).toBe('propose');
    resumed.send({ type: 'session.approve', by: 'ana', at: '' });
    const result = await done(resumed);
    expect(result.workflow?.path.map((m) => m.to[0])).toEqual(['investigate', 'propose', 'execute', 'report']);
    expect(model.calls.map((c) => c.offer?.tools)).toEqual([['refunds_issue'], []]);
    expect(workflowChildValue(resumed)).toBe('report');
  });

  it('runs nested and parallel phases as XState does: the active phases offer their tools together, and a phase may name its model', async () => {
    const reviewDesk: WorkflowSpec = {
      initial: 'gather',
      states: {
        gather: { tools: ['db_query'], model: 'small-model', on: { next_phase: 'review' } },
        review: {
          type: 'parallel',
          on: { next_phase: 'report' },
          states: {
            legal: { initial: 'reading', states: { reading: { tools: ['files_read'], on: { 'tool.files_read': 'cleared' } }, cleared: { tools: [] } } },
            money: { tools: ['calc_evaluate'] },
          },
        },
        report: { tools: [], answer: true },
      },
    };
    const { actor, model } = startSession([
      moveTo('m1', 'review'),
      askTools([{ id: 'r1', name: 'files_read', arguments: '{"path":"terms.md"}' }]),
      moveTo('m2', 'report'),
      answer('Reviewed.'),
    ], reviewDesk);
    const result = await done(actor);
    expect(result.outcome.status).toBe('completed');
    expect(model.calls.map((call) => [call.model, call.offer?.phases.join(' › '), call.offer?.tools])).toEqual([
      ['small-model', 'gather', ['db_query']],
      ['scripted', 'review › legal › reading › money', ['files_read', 'calc_evaluate']],
      ['scripted', 'review › legal › cleared › money', ['calc_evaluate']],
      ['scripted', 'report', []],
    ]);
    expect(result.workflow?.path.map((m) => [m.trigger, m.to.join(' › ')])).toEqual([
      ['choice', 'review › legal › reading › money'], ['tool', 'review › legal › cleared › money'], ['choice', 'report'],
    ]);
  });

  it('leaves a session without a workflow as it was: every tool, no phase', async () => {
    const model = scriptedModelActor([answer('42')]);
    const actor = createActor(sessionMachine.provide({ actors: { callModel: model.logic, triageToolCalls: acceptingTriage, executeToolCall: tools().logic } }), { input: sessionInput() });
    actor.start();
    const result = await done(actor);
    expect(model.calls[0]?.offer).toBeNull();
    expect(result.workflow).toBeUndefined();
    expect(workflowChildValue(actor)).toBeUndefined();
  });
});

describe('defineAgent with a workflow', () => {
  it('refuses a workflow that cannot run, naming each phase at fault', () => {
    expect(() => defineAgent({
      name: 'desk', instructions: 'Refund.', tools: ['db_*'],
      workflow: { initial: 'triage', states: { triage: { tools: ['db_query', 'files_write'], on: { next_phase: 'nowhere' } }, lost: { answer: true } } },
    })).toThrow(AgentDefinitionError);
    let message = '';
    try {
      defineAgent({ name: 'desk', instructions: 'Refund.', tools: ['db_*'], workflow: { initial: 'triage', states: { triage: { tools: ['db_query', 'files_write', 'next_phase'], on: { next_phase: 'nowhere' } }, lost: { answer: true } } } });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('workflow: phase "triage": next_phase goes to "nowhere", which is not a phase (triage, lost)');
    expect(message).toContain('phase "triage": tool "files_write" is not among the agent\'s tools (db_*)');
    expect(message).toContain('phase "triage": "next_phase" would offer next_phase');
    expect(message).toContain('phase "lost" cannot be reached from "triage"');
  });

  it('accepts a workflow that can run, and keeps it parsed', () => {
    const agent = defineAgent({ name: 'desk', instructions: 'Refund.', workflow: refundDesk });
    expect(agent.workflow?.states.triage?.on?.next_phase).toEqual([{ target: 'investigate' }]);
  });
});
