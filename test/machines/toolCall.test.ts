import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, initialTransition, SimulatedClock, transition, waitFor, type AnyEventObject } from 'xstate';
import { RetryPolicy, type RetryPolicyInput } from '../../machines/retryPolicy.ts';
import { toolCallMachine, type SendToolRequestInput, type ToolCallContext, type ToolCallInput } from '../../machines/toolCall.ts';
import type { PlannedToolCall, ToolCallAttempt, ToolCallOutcome } from '../../machines/toolCallOutcome.ts';
import type { ToolFailure, ToolFailureCode } from '../../tools/toolFailure.ts';

function plannedCall(overrides: { retry?: RetryPolicyInput; fallbacks?: string[] } = {}): PlannedToolCall {
  return {
    callId: 'call-1',
    toolCallId: 'model-1',
    name: 'calc_evaluate',
    arguments: { expression: '1+1' },
    retry: RetryPolicy.parse(overrides.retry ?? {}),
    fallbacks: overrides.fallbacks ?? [],
  };
}

function toolCallInput(call: PlannedToolCall = plannedCall()): ToolCallInput {
  return { sessionId: 's-1', turn: 3, call };
}

const ok = (result: unknown, durationMs = 1): ToolCallAttempt => ({ status: 'ok', result, durationMs });
const failure = (code: ToolFailureCode, retryable: boolean, message = `${code} happened`): ToolFailure => ({ code, message, retryable });
const failed = (f: ToolFailure, durationMs = 1): ToolCallAttempt => ({ status: 'error', failure: f, durationMs });

interface ScriptedReply {
  /** The tool the attempt must go to; any other is a test failure. */
  tool: string;
  reply: ToolCallAttempt | Error;
}

/**
 * A `sendToolRequest` that plays `replies` in order, records each request with the simulated time
 * it was made, and fails loudly on a call it was not scripted for or one sent to the wrong tool.
 */
function scriptedToolRequests(replies: ScriptedReply[], clock?: SimulatedClock) {
  const calls: Array<SendToolRequestInput & { at: number }> = [];
  const problems: string[] = [];
  const logic = fromPromise<ToolCallAttempt, SendToolRequestInput>(async ({ input }) => {
    calls.push({ ...input, at: clock?.now() ?? 0 });
    const scripted = replies[calls.length - 1];
    if (!scripted) {
      problems.push(`unexpected request #${calls.length} to ${input.tool}: the test scripted ${replies.length}`);
      throw new Error(problems.at(-1));
    }
    if (scripted.tool !== input.tool) {
      problems.push(`request #${calls.length} went to ${input.tool}, the test expected ${scripted.tool}`);
      throw new Error(problems.at(-1));
    }
    if (scripted.reply instanceof Error) throw scripted.reply;
    return scripted.reply;
  });
  return {
    logic,
    calls,
    assertAllUsed() {
      expect(problems).toEqual([]);
      expect(calls.length, `the test scripted ${replies.length} requests`).toBe(replies.length);
    },
  };
}

type Announcement = [name: 'start' | 'retry' | 'fallback' | 'finish', tool: string, attempt: number];

/** Announcement actions that record what was announced, with the tool and attempt at that moment. */
function announcements() {
  const log: Announcement[] = [];
  const note = (name: Announcement[0]) => ({ context }: { context: ToolCallContext }) => {
    log.push([name, context.tool, context.attempt]);
  };
  return {
    log,
    actions: { announceStart: note('start'), announceRetry: note('retry'), announceFallback: note('fallback'), announceFinish: note('finish') },
  };
}

/**
 * Runs a tool call on a simulated clock: whenever the machine backs off, the clock moves one
 * millisecond at a time until the next attempt goes out, so every request's `at` is its exact time.
 */
async function runToolCall(call: PlannedToolCall, replies: ScriptedReply[], options: { retryBackoffMs?: number } = {}) {
  const clock = new SimulatedClock();
  const requests = scriptedToolRequests(replies, clock);
  const announced = announcements();
  const machine = toolCallMachine.provide({
    actors: { sendToolRequest: requests.logic },
    actions: announced.actions,
    ...(options.retryBackoffMs === undefined ? {} : { delays: { retryBackoff: () => options.retryBackoffMs ?? 0 } }),
  });
  const actor = createActor(machine, { input: toolCallInput(call), clock });
  actor.start();
  for (;;) {
    const snapshot = await waitFor(actor, (s) => s.status !== 'active' || s.matches('backing_off'), { timeout: 1_000 });
    if (snapshot.status !== 'active') break;
    const pending = requests.calls.length;
    for (let waited = 0; requests.calls.length === pending; waited++) {
      if (waited > 100_000) throw new Error('the backoff never ended');
      clock.increment(1);
    }
    expect(requests.calls.length, 'one backoff started more than one attempt').toBe(pending + 1);
  }
  const snapshot = actor.getSnapshot();
  expect(snapshot.status).toBe('done');
  return { outcome: snapshot.output as ToolCallOutcome, requests, log: announced.log, snapshot };
}

const done = (output: ToolCallAttempt) => ({ type: 'xstate.done.actor.sendToolRequest', output, actorId: 'sendToolRequest' }) as AnyEventObject;
const backoffElapsed = { type: 'xstate.after.retryBackoff.toolCall.backing_off' } as AnyEventObject;

describe('toolCallMachine', () => {
  describe('as a pure transition function', () => {
    it('starts by announcing the call and sending the first attempt to the call’s own tool', () => {
      const call = plannedCall();
      const [snapshot, actions] = initialTransition(toolCallMachine, toolCallInput(call));
      expect(snapshot.value).toBe('attempting');
      expect(snapshot.context).toMatchObject({ attempt: 1, totalAttempts: 0, tool: 'calc_evaluate', fallbackIndex: -1, outcome: null });
      expect(actions.map((a) => a.type)).toEqual(['announceStart', 'xstate.spawnChild']);
      expect(actions[1]?.params).toMatchObject({ id: 'sendToolRequest', input: { sessionId: 's-1', turn: 3, call, tool: 'calc_evaluate', attempt: 1 } });
    });

    it('backs off after a retryable failure, announcing the retry and scheduling the policy’s delay', () => {
      const [started] = initialTransition(toolCallMachine, toolCallInput(plannedCall({ retry: { initialDelayMs: 150 } })));
      const timeout = failure('TIMEOUT', true);
      const [next, actions] = transition(toolCallMachine, started, done(failed(timeout, 7)));
      expect(next.value).toBe('backing_off');
      expect(next.context).toMatchObject({ attempt: 1, totalAttempts: 1, elapsedMs: 7, lastFailure: timeout, outcome: null });
      expect(actions.map((a) => a.type)).toEqual(['xstate.stopChild', 'announceRetry', 'xstate.raise']);
      expect(actions[2]?.params).toMatchObject({ event: backoffElapsed, delay: 150 });
    });

    it('starts the next attempt on the same tool when the backoff elapses', () => {
      const [started] = initialTransition(toolCallMachine, toolCallInput());
      const [backingOff] = transition(toolCallMachine, started, done(failed(failure('INTERNAL', true))));
      const [next, actions] = transition(toolCallMachine, backingOff, backoffElapsed);
      expect(next.value).toBe('attempting');
      expect(next.context.attempt).toBe(2);
      expect(actions.find((a) => a.type === 'xstate.spawnChild')?.params).toMatchObject({ input: { tool: 'calc_evaluate', attempt: 2 } });
    });

    it('schedules a longer delay for each further retry', () => {
      let [snapshot] = initialTransition(toolCallMachine, toolCallInput(plannedCall({ retry: { maxAttempts: 4, initialDelayMs: 100, multiplier: 3 } })));
      const delays: unknown[] = [];
      for (let i = 0; i < 3; i++) {
        const [backingOff, actions] = transition(toolCallMachine, snapshot, done(failed(failure('TIMEOUT', true))));
        delays.push(actions.find((a) => a.type === 'xstate.raise')?.params?.delay);
        [snapshot] = transition(toolCallMachine, backingOff, backoffElapsed);
      }
      expect(delays).toEqual([100, 300, 900]);
    });

    it('succeeds with the result, the attempt count and the tool that served it', () => {
      const [started] = initialTransition(toolCallMachine, toolCallInput());
      const [next, actions] = transition(toolCallMachine, started, done(ok(2, 4)));
      expect(next.value).toBe('succeeded');
      expect(next.status).toBe('done');
      expect(next.output).toEqual({ status: 'ok', callId: 'call-1', result: 2, durationMs: 4, attempts: 1, servedBy: 'calc_evaluate' });
      expect(actions.map((a) => a.type)).toEqual(['xstate.stopChild', 'announceFinish']);
    });

    it('fails with the last failure when the final attempt fails retryably', () => {
      let [snapshot] = initialTransition(toolCallMachine, toolCallInput(plannedCall({ retry: { maxAttempts: 2 } })));
      [snapshot] = transition(toolCallMachine, snapshot, done(failed(failure('TIMEOUT', true, 'first'))));
      [snapshot] = transition(toolCallMachine, snapshot, backoffElapsed);
      const last = failure('TIMEOUT', true, 'second');
      const [next] = transition(toolCallMachine, snapshot, done(failed(last)));
      expect(next.value).toBe('failed');
      expect(next.output).toEqual({ status: 'error', callId: 'call-1', failure: last, durationMs: 2, attempts: 2 });
    });

    it('switches to the next fallback at attempt 1 when the tool is unavailable', () => {
      const [started] = initialTransition(toolCallMachine, toolCallInput(plannedCall({ fallbacks: ['calc_backup', 'calc_last'] })));
      const [next, actions] = transition(toolCallMachine, started, done(failed(failure('UNAVAILABLE', false))));
      expect(next.value).toBe('attempting');
      expect(next.context).toMatchObject({ tool: 'calc_backup', fallbackIndex: 0, attempt: 1, totalAttempts: 1 });
      expect(actions.map((a) => a.type)).toEqual(['xstate.stopChild', 'announceFallback', 'xstate.spawnChild']);
      expect(actions[2]?.params).toMatchObject({ input: { tool: 'calc_backup', attempt: 1, call: { arguments: { expression: '1+1' } } } });
    });

    it('fails with an INTERNAL failure when the request actor errors', () => {
      const [started] = initialTransition(toolCallMachine, toolCallInput());
      const [next, actions] = transition(toolCallMachine, started, {
        type: 'xstate.error.actor.sendToolRequest', error: new Error('socket closed'), actorId: 'sendToolRequest',
      } as AnyEventObject);
      expect(next.value).toBe('failed');
      expect(next.output).toMatchObject({ status: 'error', callId: 'call-1', failure: { code: 'INTERNAL', retryable: false } });
      expect(actions.map((a) => a.type)).toContain('announceFinish');
    });
  });

  describe('running with a scripted sendToolRequest', () => {
    it('succeeds on the first attempt, served by the call’s own tool', async () => {
      const { outcome, requests, log } = await runToolCall(plannedCall(), [{ tool: 'calc_evaluate', reply: ok({ value: 2 }, 12) }]);
      expect(outcome).toEqual({ status: 'ok', callId: 'call-1', result: { value: 2 }, durationMs: 12, attempts: 1, servedBy: 'calc_evaluate' });
      expect(requests.calls.map(({ sessionId, turn, tool, attempt, call }) => ({ sessionId, turn, tool, attempt, callId: call.callId })))
        .toEqual([{ sessionId: 's-1', turn: 3, tool: 'calc_evaluate', attempt: 1, callId: 'call-1' }]);
      expect(log).toEqual([['start', 'calc_evaluate', 1], ['finish', 'calc_evaluate', 1]]);
      requests.assertAllUsed();
    });

    it('retries a retryable failure after the backoff and succeeds on the second attempt', async () => {
      const { outcome, requests, log } = await runToolCall(plannedCall(), [
        { tool: 'calc_evaluate', reply: failed(failure('TIMEOUT', true), 5) },
        { tool: 'calc_evaluate', reply: ok(2, 3) },
      ]);
      expect(outcome).toEqual({ status: 'ok', callId: 'call-1', result: 2, durationMs: 8, attempts: 2, servedBy: 'calc_evaluate' });
      expect(log).toEqual([['start', 'calc_evaluate', 1], ['retry', 'calc_evaluate', 1], ['finish', 'calc_evaluate', 2]]);
      expect(requests.calls.map((c) => [c.attempt, c.at])).toEqual([[1, 0], [2, 200]]);
      requests.assertAllUsed();
    });

    it('waits exactly the backoff delay: nothing at delay − 1 ms, the second attempt at delay ms', async () => {
      const clock = new SimulatedClock();
      const requests = scriptedToolRequests([
        { tool: 'calc_evaluate', reply: failed(failure('INTERNAL', true)) },
        { tool: 'calc_evaluate', reply: ok(2) },
      ], clock);
      const actor = createActor(toolCallMachine.provide({ actors: { sendToolRequest: requests.logic } }), {
        input: toolCallInput(plannedCall({ retry: { initialDelayMs: 300 } })), clock,
      });
      actor.start();
      await waitFor(actor, (s) => s.matches('backing_off'), { timeout: 1_000 });
      clock.increment(299);
      expect(actor.getSnapshot().value).toBe('backing_off');
      expect(requests.calls).toHaveLength(1);
      clock.increment(1);
      expect(actor.getSnapshot().value).toBe('attempting');
      expect(requests.calls).toHaveLength(2);
      expect(requests.calls[1]).toMatchObject({ attempt: 2, at: 300 });
      const final = await waitFor(actor, (s) => s.status === 'done', { timeout: 1_000 });
      expect(final.output).toMatchObject({ status: 'ok', attempts: 2 });
      requests.assertAllUsed();
    });

    it('grows the delay between attempts by the multiplier', async () => {
      const timeout = failed(failure('TIMEOUT', true));
      const { requests } = await runToolCall(plannedCall({ retry: { maxAttempts: 4, initialDelayMs: 100, multiplier: 3, maxDelayMs: 10_000 } }), [
        { tool: 'calc_evaluate', reply: timeout },
        { tool: 'calc_evaluate', reply: timeout },
        { tool: 'calc_evaluate', reply: timeout },
        { tool: 'calc_evaluate', reply: ok(2) },
      ]);
      expect(requests.calls.map((c) => c.at)).toEqual([0, 100, 400, 1_300]);
      requests.assertAllUsed();
    });

    it('uses the retryBackoff delay the host provides', async () => {
      const { requests } = await runToolCall(plannedCall(), [
        { tool: 'calc_evaluate', reply: failed(failure('TIMEOUT', true)) },
        { tool: 'calc_evaluate', reply: ok(2) },
      ], { retryBackoffMs: 37 });
      expect(requests.calls.map((c) => c.at)).toEqual([0, 37]);
      requests.assertAllUsed();
    });

    it('stops at maxAttempts with the last failure in the outcome', async () => {
      const { outcome, requests, log } = await runToolCall(plannedCall({ retry: { maxAttempts: 3 } }), [
        { tool: 'calc_evaluate', reply: failed(failure('TIMEOUT', true, 'first timeout'), 1) },
        { tool: 'calc_evaluate', reply: failed(failure('INTERNAL', true, 'second crash'), 2) },
        { tool: 'calc_evaluate', reply: failed(failure('TIMEOUT', true, 'third timeout'), 4) },
      ]);
      expect(outcome).toEqual({
        status: 'error', callId: 'call-1', durationMs: 7, attempts: 3,
        failure: { code: 'TIMEOUT', message: 'third timeout', retryable: true },
      });
      expect(log.filter(([name]) => name === 'retry')).toEqual([['retry', 'calc_evaluate', 1], ['retry', 'calc_evaluate', 2]]);
      requests.assertAllUsed();
    });

    it('never retries when maxAttempts is 1', async () => {
      const { outcome, requests } = await runToolCall(plannedCall({ retry: { maxAttempts: 1 } }), [
        { tool: 'calc_evaluate', reply: failed(failure('TIMEOUT', true)) },
      ]);
      expect(outcome).toMatchObject({ status: 'error', attempts: 1, failure: { code: 'TIMEOUT' } });
      requests.assertAllUsed();
    });

    it('never retries INVALID_INPUT, nor falls back on it', async () => {
      const invalid = failure('INVALID_INPUT', false, 'expression: expected a string');
      const { outcome, requests, log } = await runToolCall(plannedCall({ fallbacks: ['calc_backup'] }), [
        { tool: 'calc_evaluate', reply: failed(invalid) },
      ]);
      expect(outcome).toEqual({ status: 'error', callId: 'call-1', failure: invalid, durationMs: 1, attempts: 1 });
      expect(log).toEqual([['start', 'calc_evaluate', 1], ['finish', 'calc_evaluate', 1]]);
      requests.assertAllUsed();
    });

    it('does not retry a failure marked not retryable, whatever its code', async () => {
      const { outcome, requests } = await runToolCall(plannedCall(), [
        { tool: 'calc_evaluate', reply: failed(failure('INTERNAL', false)) },
      ]);
      expect(outcome).toMatchObject({ status: 'error', attempts: 1, failure: { code: 'INTERNAL', retryable: false } });
      requests.assertAllUsed();
    });

    it('tries the fallbacks in order with the same arguments when tools are unavailable', async () => {
      const call = plannedCall({ fallbacks: ['calc_backup', 'calc_last'] });
      const { outcome, requests, log } = await runToolCall(call, [
        { tool: 'calc_evaluate', reply: failed(failure('UNAVAILABLE', false, 'primary down')) },
        { tool: 'calc_backup', reply: failed(failure('UNAVAILABLE', false, 'backup down')) },
        { tool: 'calc_last', reply: ok(2) },
      ]);
      expect(outcome).toEqual({ status: 'ok', callId: 'call-1', result: 2, durationMs: 3, attempts: 3, servedBy: 'calc_last' });
      expect(requests.calls.map((c) => [c.tool, c.attempt, c.call])).toEqual([
        ['calc_evaluate', 1, call], ['calc_backup', 1, call], ['calc_last', 1, call],
      ]);
      expect(log).toEqual([
        ['start', 'calc_evaluate', 1], ['fallback', 'calc_backup', 1], ['fallback', 'calc_last', 1], ['finish', 'calc_last', 1],
      ]);
      requests.assertAllUsed();
    });

    it('goes straight to the fallback on a breaker-style refusal (UNAVAILABLE, not retryable)', async () => {
      const { outcome, requests, log } = await runToolCall(plannedCall({ retry: { maxAttempts: 5 }, fallbacks: ['calc_backup'] }), [
        { tool: 'calc_evaluate', reply: failed(failure('UNAVAILABLE', false, 'circuit open')) },
        { tool: 'calc_backup', reply: ok(2) },
      ]);
      expect(outcome).toMatchObject({ status: 'ok', servedBy: 'calc_backup', attempts: 2 });
      expect(requests.calls.map((c) => c.at)).toEqual([0, 0]);
      expect(log.map(([name]) => name)).not.toContain('retry');
      requests.assertAllUsed();
    });

    it('retries a retryable UNAVAILABLE on its tool first, then resets the attempt counter on the fallback', async () => {
      const { outcome, requests, log } = await runToolCall(plannedCall({ retry: { maxAttempts: 2 }, fallbacks: ['calc_backup'] }), [
        { tool: 'calc_evaluate', reply: failed(failure('UNAVAILABLE', true)) },
        { tool: 'calc_evaluate', reply: failed(failure('UNAVAILABLE', true)) },
        { tool: 'calc_backup', reply: failed(failure('TIMEOUT', true)) },
        { tool: 'calc_backup', reply: ok(2) },
      ]);
      expect(outcome).toMatchObject({ status: 'ok', servedBy: 'calc_backup', attempts: 4 });
      expect(requests.calls.map((c) => [c.tool, c.attempt, c.at])).toEqual([
        ['calc_evaluate', 1, 0], ['calc_evaluate', 2, 200], ['calc_backup', 1, 200], ['calc_backup', 2, 400],
      ]);
      expect(log).toEqual([
        ['start', 'calc_evaluate', 1], ['retry', 'calc_evaluate', 1], ['fallback', 'calc_backup', 1],
        ['retry', 'calc_backup', 1], ['finish', 'calc_backup', 2],
      ]);
      requests.assertAllUsed();
    });

    it('fails with the last failure when every fallback is unavailable', async () => {
      const last = failure('UNAVAILABLE', false, 'last one down too');
      const { outcome, requests, log } = await runToolCall(plannedCall({ fallbacks: ['calc_backup', 'calc_last'] }), [
        { tool: 'calc_evaluate', reply: failed(failure('UNAVAILABLE', false, 'primary down')) },
        { tool: 'calc_backup', reply: failed(failure('UNAVAILABLE', false, 'backup down')) },
        { tool: 'calc_last', reply: failed(last) },
      ]);
      expect(outcome).toEqual({ status: 'error', callId: 'call-1', failure: last, durationMs: 3, attempts: 3 });
      expect(log.at(-1)).toEqual(['finish', 'calc_last', 1]);
      requests.assertAllUsed();
    });

    it('does not fall back on a failure other than UNAVAILABLE', async () => {
      const { outcome, requests } = await runToolCall(plannedCall({ retry: { maxAttempts: 1 }, fallbacks: ['calc_backup'] }), [
        { tool: 'calc_evaluate', reply: failed(failure('TIMEOUT', true)) },
      ]);
      expect(outcome).toMatchObject({ status: 'error', failure: { code: 'TIMEOUT' } });
      requests.assertAllUsed();
    });

    it('ends with an INTERNAL failure instead of crashing when sendToolRequest rejects', async () => {
      const { outcome, requests, log, snapshot } = await runToolCall(plannedCall(), [
        { tool: 'calc_evaluate', reply: new Error('connection reset') },
      ]);
      expect(snapshot.value).toBe('failed');
      expect(outcome).toMatchObject({ status: 'error', callId: 'call-1', failure: { code: 'INTERNAL', retryable: false } });
      expect(outcome.status === 'error' && outcome.failure.message).toContain('connection reset');
      expect(log).toEqual([['start', 'calc_evaluate', 1], ['finish', 'calc_evaluate', 1]]);
      requests.assertAllUsed();
    });

    it('does not retry after sendToolRequest rejects on a later attempt', async () => {
      const { outcome, requests } = await runToolCall(plannedCall({ retry: { maxAttempts: 5 } }), [
        { tool: 'calc_evaluate', reply: failed(failure('TIMEOUT', true)) },
        { tool: 'calc_evaluate', reply: new Error('bug in the sender') },
      ]);
      expect(outcome).toMatchObject({ status: 'error', failure: { code: 'INTERNAL' } });
      requests.assertAllUsed();
    });

    it('announces the start once and the finish once however many attempts and tools it takes', async () => {
      const { log, requests } = await runToolCall(plannedCall({ retry: { maxAttempts: 2 }, fallbacks: ['calc_backup'] }), [
        { tool: 'calc_evaluate', reply: failed(failure('TIMEOUT', true)) },
        { tool: 'calc_evaluate', reply: failed(failure('UNAVAILABLE', true)) },
        { tool: 'calc_backup', reply: failed(failure('INTERNAL', true)) },
        { tool: 'calc_backup', reply: failed(failure('INTERNAL', true)) },
      ]);
      expect(log.filter(([name]) => name === 'start')).toHaveLength(1);
      expect(log.filter(([name]) => name === 'finish')).toHaveLength(1);
      expect(log[0]?.[0]).toBe('start');
      expect(log.at(-1)?.[0]).toBe('finish');
      requests.assertAllUsed();
    });

    it('fails loudly when no sendToolRequest is provided', async () => {
      const actor = createActor(toolCallMachine, { input: toolCallInput() });
      actor.start();
      const final = await waitFor(actor, (s) => s.status === 'done', { timeout: 1_000 });
      expect(final.output).toMatchObject({ status: 'error', failure: { code: 'INTERNAL' } });
      expect(final.output?.status === 'error' && final.output.failure.message).toContain('was not provided');
    });
  });
});
