import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, initialTransition, toPromise, transition, waitFor, type AnyEventObject } from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import type { BudgetsInput } from '../../machines/budgets.ts';
import { RetryPolicy } from '../../machines/retryPolicy.ts';
import { RecoverySettings } from '../../machines/recovery.ts';
import type { ModelResponse } from '../../machines/conversation.ts';
import { wallClockDeadline } from '../../machines/sessionContext.ts';
import { sessionMachine, type CallModelInput, type ExecuteToolCallInput, type SessionEvent } from '../../machines/session.ts';
import type { SessionResult } from '../../machines/sessionOutcome.ts';
import type { ToolCallOutcome } from '../../machines/toolCallOutcome.ts';
import { acceptingTriage, answer, askTools, echoTools, scriptedModelActor, sessionInput } from '../fixtures/sessionFakes.ts';

async function runSession(responses: ReturnType<typeof answer>[], budgets: BudgetsInput = {}) {
  const model = scriptedModelActor(responses);
  const tools = echoTools();
  const actor = createActor(
    sessionMachine.provide({ actors: { callModel: model.logic, triageToolCalls: acceptingTriage, executeToolCall: tools.logic } }),
    { input: sessionInput(budgets) },
  );
  actor.start();
  const result = (await toPromise(actor)) as SessionResult;
  return { result, model, tools, snapshot: actor.getSnapshot() };
}

describe('sessionMachine', () => {
  it('starts by calling the model with the system prompt and the task', () => {
    const [snapshot] = initialTransition(sessionMachine, sessionInput());
    expect(snapshot.value).toBe('calling_model');
    expect(snapshot.context.turn).toBe(1);
    expect(snapshot.context.conversation).toEqual([
      { role: 'system', content: 'You are a test agent.' },
      { role: 'user', content: 'Add two numbers.' },
    ]);
  });

  // Regression (issue 15): finished tool-call actors stayed among the session's children, so each
  // checkpoint and the session's memory grew with every step.
  it('keeps no finished tool call among its children', async () => {
    const model = scriptedModelActor([askTools([{ id: 't1', name: 'echo' }, { id: 't2', name: 'echo' }]), askTools([{ id: 't3', name: 'echo' }]), answer('done')]);
    const actor = createActor(
      sessionMachine.provide({ actors: { callModel: model.logic, triageToolCalls: acceptingTriage, executeToolCall: echoTools().logic } }),
      { input: sessionInput() },
    );
    const childrenWhileCallingModel: string[][] = [];
    actor.subscribe((snapshot) => {
      if (snapshot.matches('calling_model')) childrenWhileCallingModel.push(Object.keys(snapshot.children).filter((id) => id.startsWith('tool:')));
    });
    actor.start();
    await toPromise(actor);
    expect(childrenWhileCallingModel.length).toBeGreaterThanOrEqual(3);
    expect(childrenWhileCallingModel.flat()).toEqual([]);
  });

  it('completes with the model text when the model answers without tools', async () => {
    const { result, model } = await runSession([answer('42')]);
    expect(result.outcome).toEqual({ status: 'completed', stopReason: 'answered', output: '42' });
    expect(result.steps).toBe(1);
    expect(result.usage).toEqual({ inputTokens: 10, outputTokens: 5, costUsd: 0.001 });
    model.assertAllUsed();
  });

  it('runs the tools the model asks for, answers every call in order, then asks the model again', async () => {
    const { result, model, tools, snapshot } = await runSession([
      askTools([{ id: 'a', name: 'calc_evaluate', arguments: '{"expression":"1+1"}' }, { id: 'b', name: 'files_read', arguments: '{"path":"x"}' }]),
      answer('done'),
    ]);
    expect(result.outcome.status).toBe('completed');
    expect(tools.calls.map((c) => c.call.name)).toEqual(['calc_evaluate', 'files_read']);
    expect(result.toolCalls).toBe(2);
    const secondCall = model.calls[1]?.messages ?? [];
    expect(secondCall.filter((m) => m.role === 'tool')).toEqual([
      { role: 'tool', toolCallId: 'a', content: JSON.stringify({ ok: true, result: { echo: { expression: '1+1' } } }) },
      { role: 'tool', toolCallId: 'b', content: JSON.stringify({ ok: true, result: { echo: { path: 'x' } } }) },
    ]);
    expect(snapshot.context.ledger.map((e) => [e.turn, e.tool, e.status])).toEqual([
      [1, 'calc_evaluate', 'ok'],
      [1, 'files_read', 'ok'],
    ]);
    model.assertAllUsed();
  });

  it('answers a rejected tool call with its structured error and still runs the accepted ones', async () => {
    const { model, tools, result } = await runSession([
      askTools([{ id: 'a', name: 'unknown_tool' }, { id: 'b', name: 'calc_evaluate', arguments: '{"expression":"2"}' }]),
      answer('ok'),
    ]);
    expect(tools.calls).toHaveLength(1);
    const toolMessages = (model.calls[1]?.messages ?? []).filter((m) => m.role === 'tool');
    expect(toolMessages.map((m) => m.toolCallId)).toEqual(['a', 'b']);
    expect(JSON.parse(toolMessages[0]?.content ?? '')).toMatchObject({ ok: false, error: { code: 'UNKNOWN_TOOL' } });
    expect(result.ledger.map((e) => e.status)).toEqual(['rejected', 'ok']);
    expect(result.toolCalls).toBe(1);
  });

  it('loops back to the model when every tool call was rejected', async () => {
    const { model, result } = await runSession([askTools([{ id: 'a', name: 'unknown_x' }]), answer('sorry')]);
    expect(model.calls).toHaveLength(2);
    expect(result.outcome.status).toBe('completed');
  });

  it('fails with the reason when the model call fails', async () => {
    const actor = createActor(
      sessionMachine.provide({
        actors: {
          callModel: fromPromise<ModelResponse, CallModelInput>(async () => {
            throw new Error('503 upstream unavailable');
          }),
          triageToolCalls: acceptingTriage,
          executeToolCall: echoTools().logic,
        },
      }),
      { input: sessionInput() },
    );
    actor.start();
    const result = (await toPromise(actor)) as SessionResult;
    expect(result.outcome).toMatchObject({ status: 'failed', stopReason: 'model call failed', error: '503 upstream unavailable' });
  });

  describe('repairs', () => {
    it('sends an empty reply back to the model with an instruction, then carries on', async () => {
      const { result, model, snapshot } = await runSession([answer('   '), answer('42')]);
      expect(result.outcome).toMatchObject({ status: 'completed', output: '42' });
      expect(model.calls[1]?.messages.at(-1)).toMatchObject({ role: 'user', content: expect.stringContaining('Your last reply was empty') });
      expect(snapshot.context.notices).toEqual([{ kind: 'repair', turn: 1, reason: 'empty response', consecutive: 1 }]);
    });

    it('treats a refusal as something to repair, never as the answer', async () => {
      const { result, model } = await runSession([{ ...answer(''), content: null, refusal: 'I cannot do that.' }, answer('done after all')]);
      expect(result.outcome).toMatchObject({ status: 'completed', output: 'done after all' });
      expect(model.calls[1]?.messages.at(-1)?.content).toContain('You declined with: "I cannot do that."');
    });

    it('counts turns with refused tool calls as repairs and fails after the maximum with no fallback model', async () => {
      const bad = askTools([{ id: 'a', name: 'unknown_tool' }]);
      const { result, model } = await runSession([bad, bad, bad]);
      expect(model.calls).toHaveLength(3);
      expect(result.outcome).toMatchObject({ status: 'failed', stopReason: 'malformed model output' });
      expect((result.outcome as { error: string }).error).toContain('3 turns in a row');
    });

    it('resets the count after a turn without repairs', async () => {
      const bad = askTools([{ id: 'a', name: 'unknown_tool' }]);
      const good = askTools([{ id: 'b', name: 'calc_evaluate', arguments: '{"expression":"1"}' }]);
      const { result } = await runSession([bad, bad, good, bad, bad, answer('ok')]);
      expect(result.outcome.status).toBe('completed');
    });

    it('switches to the next fallback model when the repairs run out', async () => {
      const model = scriptedModelActor([answer(''), answer(''), answer(''), answer('from the fallback')]);
      const actor = createActor(
        sessionMachine.provide({ actors: { callModel: model.logic, triageToolCalls: acceptingTriage, executeToolCall: echoTools().logic } }),
        { input: sessionInput({}, { fallbackModels: ['backup-model'] }) },
      );
      actor.start();
      const result = (await toPromise(actor)) as SessionResult;
      expect(result.outcome).toMatchObject({ status: 'completed', output: 'from the fallback' });
      expect(model.calls.map((c) => c.model)).toEqual(['scripted', 'scripted', 'scripted', 'backup-model']);
      expect(actor.getSnapshot().context.notices.filter((n) => n.kind === 'model_switched')).toEqual([
        { kind: 'model_switched', turn: 3, from: 'scripted', to: 'backup-model', reason: '3 consecutive turns of malformed output' },
      ]);
    });
  });

  describe('tool calls the model got wrong in its reply', () => {
    const toolMessagesOf = (messages: CallModelInput['messages'] = []) =>
      messages.flatMap((m) => (m.role === 'tool' ? [{ id: m.toolCallId, answer: JSON.parse(m.content) as { ok: boolean; error?: { code: string; message: string } } }] : []));

    it('asks again, naming the limit, when the model makes more tool calls than maxToolCallsPerTurn', async () => {
      const tooMany = askTools([{ id: 'a', name: 'calc_evaluate' }, { id: 'b', name: 'calc_evaluate' }, { id: 'c', name: 'files_read' }]);
      const { result, model, tools, snapshot } = await runSession(
        [tooMany, askTools([{ id: 'd', name: 'calc_evaluate' }, { id: 'e', name: 'files_read' }]), answer('done in two')],
        { maxToolCallsPerTurn: 2 },
      );
      expect(result.outcome).toMatchObject({ status: 'completed', output: 'done in two' });
      // None of the three ran; each got one answer that says why and how many are allowed.
      expect(tools.calls.map((c) => c.call.toolCallId)).toEqual(['d', 'e']);
      const answered = toolMessagesOf(model.calls[1]?.messages);
      expect(answered.map((a) => a.id)).toEqual(['a', 'b', 'c']);
      for (const { answer: reply } of answered) {
        expect(reply).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } });
        expect(reply.error?.message).toContain('You asked for 3 tool calls in one reply; at most 2 are allowed per turn, so none of them ran.');
      }
      expect(snapshot.context.notices).toEqual([
        { kind: 'repair', turn: 1, consecutive: 1, reason: 'calc_evaluate, files_read: INVALID_INPUT (maxToolCallsPerTurn)' },
      ]);
      model.assertAllUsed();
    });

    it('ends budget_exhausted at maxToolCallsPerTurn only once the repairs are exhausted', async () => {
      const tooMany = askTools([{ id: 'a', name: 'calc_evaluate' }, { id: 'b', name: 'calc_evaluate' }]);
      const { result, model, tools } = await runSession([tooMany, tooMany, { ...tooMany, content: 'still too many' }], { maxToolCallsPerTurn: 1 });
      expect(result.outcome).toEqual({
        status: 'budget_exhausted', stopReason: 'budget exhausted: maxToolCallsPerTurn', budget: 'maxToolCallsPerTurn', output: 'still too many',
      });
      expect(tools.calls).toHaveLength(0);
      model.assertAllUsed();
    });

    it('runs the first call of a duplicated tool-call id and answers the duplicate under an id of its own', async () => {
      const { result, model, tools, snapshot } = await runSession([
        askTools([{ id: 'a', name: 'calc_evaluate', arguments: '{"expression":"1+1"}' }, { id: 'a', name: 'files_read', arguments: '{"path":"x"}' }]),
        answer('ok'),
      ]);
      expect(result.outcome.status).toBe('completed');
      expect(tools.calls.map((c) => c.call.name)).toEqual(['calc_evaluate']);
      const sent = model.calls[1]?.messages ?? [];
      // The API's rule: every call of the assistant message has exactly one tool message with its id.
      const assistant = sent.find((m) => m.role === 'assistant');
      expect(assistant?.role === 'assistant' && assistant.toolCalls?.map((c) => c.id)).toEqual(['a', 'a_2']);
      const answered = toolMessagesOf(sent);
      expect(answered.map((a) => a.id)).toEqual(['a', 'a_2']);
      expect(answered[0]?.answer).toEqual({ ok: true, result: { echo: { expression: '1+1' } } });
      expect(answered[1]?.answer).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } });
      expect(answered[1]?.answer.error?.message).toBe(
        'Your reply used the tool call id "a" for more than one call. The first call with that id (calc_evaluate) is answered under it; this one (files_read) did not run, and is answered under the id "a_2". Give every tool call its own id, and ask for this call again if you still need it.',
      );
      expect(snapshot.context.ledger.map((e) => [e.toolCallId, e.tool, e.status])).toEqual([['a', 'calc_evaluate', 'ok'], ['a_2', 'files_read', 'rejected']]);
    });

    it('runs an exact repeat of a call (same id, tool and arguments) once, and says so', async () => {
      const call = { id: 'a', name: 'calc_evaluate', arguments: '{"expression":"1+1"}' };
      const { model, tools } = await runSession([askTools([call, call]), answer('ok')]);
      expect(tools.calls).toHaveLength(1);
      const answered = toolMessagesOf(model.calls[1]?.messages);
      expect(answered.map((a) => a.id)).toEqual(['a', 'a_2']);
      expect(answered[1]?.answer.error?.message).toBe(
        'This call repeats an earlier call of your reply exactly (id "a", calc_evaluate, the same arguments): it ran once, and was not run again.',
      );
    });

    it('answers a tool call that arrived without a tool name with a repair, not as an unknown tool', async () => {
      const { model, tools } = await runSession([
        askTools([{ id: 'a', name: '', arguments: '{"expression":"2"}' }, { id: 'b', name: 'calc_evaluate', arguments: '{"expression":"3"}' }]),
        answer('ok'),
      ]);
      expect(tools.calls.map((c) => c.call.toolCallId)).toEqual(['b']);
      const answered = toolMessagesOf(model.calls[1]?.messages);
      expect(answered.map((a) => a.id)).toEqual(['a', 'b']);
      expect(answered[0]?.answer.error).toMatchObject({
        code: 'INVALID_INPUT',
        message: 'A tool call of your reply (id "a", arguments {"expression":"2"}) arrived without a tool name, so it did not run. Ask for it again, naming the tool.',
      });
    });
  });

  it('sends a reply cut off at the output limit back for repair instead of taking it as the answer', async () => {
    const { result, model } = await runSession([{ ...answer('The total is 13 4'), finishReason: 'length' }, answer('The total is 13497.71.')]);
    expect(result.outcome).toMatchObject({ status: 'completed', output: 'The total is 13497.71.' });
    expect(model.calls[1]?.messages.at(-1)?.content).toContain('cut off at the output limit');
  });

  // Regression: tool calls in flight at an escalation were never answered, so the resumed conversation was invalid.
  it('answers and stops the tool calls in flight when escalated, so the resumed conversation is valid', async () => {
    const model = scriptedModelActor([askTools([{ id: 'a', name: 'calc_evaluate' }, { id: 'b', name: 'files_read' }]), answer('resumed')]);
    let stopped = 0;
    const actor = createActor(
      sessionMachine.provide({
        actors: {
          callModel: model.logic,
          triageToolCalls: acceptingTriage,
          executeToolCall: fromPromise<ToolCallOutcome, ExecuteToolCallInput>(({ signal }) => {
            signal.addEventListener('abort', () => (stopped += 1));
            return new Promise<ToolCallOutcome>(() => {});
          }),
        },
      }),
      { input: sessionInput() },
    );
    actor.start();
    await waitFor(actor, (s) => s.matches('running_tools'));
    actor.send({ type: 'session.escalate', reason: 'a person takes a look' });
    expect(stopped).toBe(2);
    const answered = actor.getSnapshot().context.conversation.filter((m) => m.role === 'tool');
    expect(answered.map((m) => m.toolCallId)).toEqual(['a', 'b']);
    expect(JSON.parse(answered[0]?.content ?? '{}')).toMatchObject({ ok: false, error: { code: 'INTERNAL', message: expect.stringContaining('abandoned when the session was escalated') } });
    actor.send({ type: 'session.answer', answer: 'carry on' });
    const result = (await toPromise(actor)) as SessionResult;
    expect(result.outcome).toMatchObject({ status: 'completed', output: 'resumed' });
  });

  describe('a call in doubt', () => {
    it('parks the session for a person with the call, its arguments and the evidence, and the answer resumes it', async () => {
      const model = scriptedModelActor([
        askTools([{ id: 'pay', name: 'files_write', arguments: '{"path":"a.txt","content":"x"}' }, { id: 'look', name: 'files_read', arguments: '{"path":"a.txt"}' }]),
        answer('checked with the person'),
      ]);
      const evidence = { heldBy: 'files-1', startedAt: '2026-11-30T04:00:00.000Z', claimExpiredAt: '2026-11-30T04:00:30.000Z', fencingToken: 7 };
      const actor = createActor(
        sessionMachine.provide({
          actors: {
            callModel: model.logic,
            triageToolCalls: acceptingTriage,
            executeToolCall: fromPromise<ToolCallOutcome, ExecuteToolCallInput>(async ({ input }) =>
              input.call.name === 'files_write'
                ? { status: 'error', callId: input.call.callId, durationMs: 3, failure: { code: 'IN_DOUBT', retryable: false, message: 'in doubt', details: evidence } }
                : { status: 'ok', callId: input.call.callId, result: 'x', durationMs: 1 }),
          },
        }),
        { input: sessionInput() },
      );
      actor.start();
      await waitFor(actor, (s) => s.matches('escalated'));
      const { context } = actor.getSnapshot();
      expect(context.outcome).toMatchObject({ status: 'escalated', stopReason: expect.stringContaining('in doubt: files_write') });
      expect(context.notices.filter((n) => n.kind === 'in_doubt')).toEqual([
        { kind: 'in_doubt', turn: 1, callId: expect.any(String), tool: 'files_write', arguments: { path: 'a.txt', content: 'x' }, evidence },
      ]);
      // Every call of the turn is answered, so the conversation stays valid when a person resumes it.
      expect(context.conversation.filter((m) => m.role === 'tool').map((m) => m.toolCallId)).toEqual(['pay', 'look']);
      expect(model.calls).toHaveLength(1);
      actor.send({ type: 'session.answer', answer: 'It went through; do not pay again.' });
      const result = (await toPromise(actor)) as SessionResult;
      expect(result.outcome).toMatchObject({ status: 'completed', output: 'checked with the person' });
      expect(model.calls[1]?.messages.at(-1)).toEqual({ role: 'user', content: 'It went through; do not pay again.' });
    });
  });

  describe('loop detection', () => {
    const same = () => askTools([{ id: `c${Math.random()}`, name: 'files_read', arguments: '{"path":"a.txt"}' }]);

    it('refocuses the model the first time it repeats itself', async () => {
      const { result, model, snapshot } = await runSession([same(), same(), same(), answer('changed course')]);
      expect(result.outcome).toMatchObject({ status: 'completed', output: 'changed course' });
      const refocus = model.calls[3]?.messages.at(-1);
      expect(refocus).toMatchObject({ role: 'user', content: expect.stringContaining('You are going in circles.') });
      expect(snapshot.context.notices.map((n) => n.kind === 'loop_detected' && n.action)).toEqual(['refocus']);
    });

    it('parks the session as escalated, with the evidence, when it loops again after the refocus', async () => {
      const model = scriptedModelActor([same(), same(), same(), same(), same(), same()]);
      const actor = createActor(
        sessionMachine.provide({ actors: { callModel: model.logic, triageToolCalls: acceptingTriage, executeToolCall: echoTools().logic } }),
        { input: sessionInput() },
      );
      actor.start();
      await waitFor(actor, (s) => s.matches('escalated'));
      const snapshot = actor.getSnapshot();
      expect(snapshot.status).toBe('active');
      expect(snapshot.context.outcome).toMatchObject({ status: 'escalated', stopReason: expect.stringContaining('loop detected after a refocus') });
      expect(snapshot.context.notices.map((n) => n.kind === 'loop_detected' && n.action)).toEqual(['refocus', 'escalate']);
      actor.stop();
    });
  });

  describe('escalated', () => {
    it('waits for a person and resumes the loop with their answer', async () => {
      // The first call is in flight when the session is escalated; the escalation abandons it.
      const model = scriptedModelActor([answer('abandoned'), answer('thanks, done')]);
      const actor = createActor(
        sessionMachine.provide({ actors: { callModel: fromPromise<ModelResponse, CallModelInput>(() => new Promise<ModelResponse>(() => {})), triageToolCalls: acceptingTriage, executeToolCall: echoTools().logic } }),
        { input: sessionInput({ maxWallClockMs: 1_000 }) },
      );
      actor.start();
      actor.send({ type: 'session.escalate', reason: 'needs a decision' });
      // Parked: the wall clock no longer ends the session.
      actor.send({ type: 'session.deadline_reached' });
      expect(actor.getSnapshot().value).toBe('escalated');
      actor.stop();
      const resumed = createActor(
        sessionMachine.provide({ actors: { callModel: model.logic, triageToolCalls: acceptingTriage, executeToolCall: echoTools().logic } }),
        { input: sessionInput() },
      );
      resumed.start();
      resumed.send({ type: 'session.escalate', reason: 'needs a decision' });
      resumed.send({ type: 'session.answer', answer: 'Use the 2025 numbers.' });
      const result = (await toPromise(resumed)) as SessionResult;
      expect(result.outcome).toMatchObject({ status: 'completed', output: 'thanks, done' });
      expect(model.calls[1]?.messages.at(-1)).toEqual({ role: 'user', content: 'Use the 2025 numbers.' });
      model.assertAllUsed();
    });
  });

  it('answers a tool call whose actor rejected with an INTERNAL failure instead of hanging', async () => {
    const model = scriptedModelActor([askTools([{ id: 'a', name: 'calc_evaluate' }]), answer('ok')]);
    const actor = createActor(
      sessionMachine.provide({
        actors: {
          callModel: model.logic,
          triageToolCalls: acceptingTriage,
          executeToolCall: fromPromise<ToolCallOutcome, ExecuteToolCallInput>(async () => {
            throw new Error('bug');
          }),
        },
      }),
      { input: sessionInput() },
    );
    actor.start();
    const result = (await toPromise(actor)) as SessionResult;
    expect(result.outcome.status).toBe('completed');
    expect(result.ledger[0]).toMatchObject({ status: 'error', errorCode: 'INTERNAL' });
  });

  describe('budgets', () => {
    it('stops at maxSteps with the partial result and the budget name', async () => {
      const { result } = await runSession(
        [{ ...askTools([{ id: 'a', name: 'calc_evaluate' }]), content: 'working on it' }],
        { maxSteps: 1 },
      );
      expect(result.outcome).toEqual({
        status: 'budget_exhausted', stopReason: 'budget exhausted: maxSteps', budget: 'maxSteps', output: 'working on it',
      });
      expect(result.toolCalls).toBe(1);
    });


    it('stops at maxTotalTokens before the next model call', async () => {
      const { result, model } = await runSession(
        [askTools([{ id: 'a', name: 'calc_evaluate' }], { inputTokens: 600, outputTokens: 400 })],
        { maxTotalTokens: 1000 },
      );
      expect(result.outcome).toMatchObject({ status: 'budget_exhausted', budget: 'maxTotalTokens' });
      expect(model.calls).toHaveLength(1);
    });

    it('stops at maxCostUsd before the next model call', async () => {
      const { result } = await runSession([askTools([{ id: 'a', name: 'calc_evaluate' }], undefined, 0.5)], { maxCostUsd: 0.5 });
      expect(result.outcome).toMatchObject({ status: 'budget_exhausted', budget: 'maxCostUsd' });
      expect(result.usage.costUsd).toBe(0.5);
    });

    it('stops at maxWallClockMs when the host reports the deadline, aborting the model call in flight', async () => {
      let aborted = false;
      const actor = createActor(
        sessionMachine.provide({
          actors: {
            callModel: fromPromise<ModelResponse, CallModelInput>(({ signal }) => {
              signal.addEventListener('abort', () => (aborted = true));
              return new Promise<ModelResponse>(() => {});
            }),
            triageToolCalls: acceptingTriage,
            executeToolCall: echoTools().logic,
          },
        }),
        { input: sessionInput({ maxWallClockMs: 5_000 }) },
      );
      actor.start();
      expect(wallClockDeadline(actor.getSnapshot().context)).toBe(5_000);
      actor.send({ type: 'session.deadline_reached' });
      const result = actor.getSnapshot().output as SessionResult;
      expect(result.outcome).toMatchObject({ status: 'budget_exhausted', budget: 'maxWallClockMs' });
      expect(aborted).toBe(true);
    });
  });

  it('ends cancelled with the caller’s reason', () => {
    const [started] = initialTransition(sessionMachine, sessionInput());
    const [next] = transition(sessionMachine, started, { type: 'session.cancel', reason: 'user pressed ctrl-c' });
    expect(next.value).toBe('cancelled');
    expect(next.status).toBe('done');
    expect(next.context.outcome).toMatchObject({ status: 'cancelled', stopReason: 'cancelled: user pressed ctrl-c' });
  });

  it('parks escalated when handed to a person', () => {
    const [started] = initialTransition(sessionMachine, sessionInput());
    const [next] = transition(sessionMachine, started, { type: 'session.escalate', reason: 'needs a human decision' });
    expect(next.value).toBe('escalated');
    expect(next.status).toBe('active');
    expect(next.context.outcome).toMatchObject({ status: 'escalated' });
  });

  describe('paths generated from the machine', () => {
    // Invoked and spawned actors answer through done/error events; the traversal plays those events
    // directly, so every transition of the chart is explored without running any actor.
    const done = (id: string, output: unknown) => ({ type: `xstate.done.actor.${id}`, output, actorId: id }) as AnyEventObject;
    const failed = (id: string) => ({ type: `xstate.error.actor.${id}`, error: new Error('boom'), actorId: id }) as AnyEventObject;
    const events = (snapshot: ReturnType<typeof sessionMachine.transition>): SessionEvent[] => {
      const always = [
        { type: 'session.cancel', reason: 'test' },
        { type: 'session.escalate', reason: 'test' },
      ] as AnyEventObject[];
      if (snapshot.matches('calling_model')) {
        always.push(
          done('callModel', answer('final')),
          done('callModel', answer('')),
          done('callModel', askTools([{ id: 'a', name: 'calc_evaluate' }])),
          done('callModel', askTools([{ id: 'a', name: 'x_y' }, { id: 'b', name: 'x_y' }])),
          failed('callModel'),
        );
      }
      if (snapshot.matches({ validating: 'triaging_tool_calls' })) {
        always.push(
          done('triageToolCalls', { accepted: [{ callId: 'c1', toolCallId: 'a', name: 'calc_evaluate', arguments: {}, retry: RetryPolicy.parse({}), fallbacks: [] }], rejected: [] }),
          done('triageToolCalls', {
            accepted: [],
            rejected: [{ toolCallId: 'a', name: 'calc_evaluate', rawArguments: '{', failure: { code: 'INVALID_INPUT', message: 'bad', retryable: false } }],
          }),
          failed('triageToolCalls'),
        );
      }
      if (snapshot.matches('running_tools')) always.push(done('tool:c1', { status: 'ok', callId: 'c1', result: 2, durationMs: 1 }));
      return always as SessionEvent[];
    };
    // Two repairs: a reply with too many tool calls is sent back once, and ends the session the second time.
    const graphInput = () => sessionInput({ maxSteps: 2, maxToolCallsPerTurn: 1 }, { recovery: RecoverySettings.parse({ maxConsecutiveRepairs: 2 }) });
    const paths = getShortestPaths(sessionMachine, {
      input: graphInput(),
      events,
      serializeState: (snapshot) =>
        JSON.stringify({
          value: snapshot.value, turn: snapshot.context.turn, repairs: snapshot.context.consecutiveRepairs, status: snapshot.status,
          stopReason: snapshot.context.outcome?.stopReason,
        }),
    });
    const finalStates = ['completed', 'budget_exhausted', 'escalated', 'failed', 'cancelled'] as const;

    it.each(finalStates)('reaches %s', (final) => {
      // Escalated is parked (waiting for a person), not done; the others are final.
      const path = paths.find((p) => p.state.value === final && (final === 'escalated' || p.state.status === 'done'));
      expect(path, `no generated path ends in ${final}`).toBeDefined();
      // Replaying the path's events through the pure transition function lands in the same final state.
      let [snapshot] = initialTransition(sessionMachine, graphInput());
      for (const step of path?.steps.slice(1) ?? []) [snapshot] = transition(sessionMachine, snapshot, step.event);
      expect(snapshot.value).toBe(final);
      expect(snapshot.context.outcome?.status).toBe(final);
    });

    it('reaches budget_exhausted for both budgets checked by the chart alone', () => {
      const budgets = new Set(
        paths.filter((p) => p.state.value === 'budget_exhausted').map((p) => (p.state.context.outcome as { budget?: string }).budget),
      );
      expect(budgets).toEqual(new Set(['maxSteps', 'maxToolCallsPerTurn']));
    });
  });
});
