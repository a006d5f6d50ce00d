import type { ToolProgressInbox } from './toolProgressInbox.ts';
import { trace, type Span, type Tracer } from '@opentelemetry/api';
import { RequestError, TimeoutError, type Msg, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { createActor, fromPromise, toPromise, type InspectionEvent } from 'xstate';
import { backoffDelayMs, withJitter } from '../../machines/retryPolicy.ts';
import { maxTimerDelayMs } from '../../machines/timerDelay.ts';
import type { ExecuteToolCallInput } from '../../machines/session.ts';
import { toolCallMachine, type SendToolRequestInput, type ToolCallContext } from '../../machines/toolCall.ts';
import { ActorSystemHooks, type SessionStep } from '../session/actorSystemHooks.ts';
import type { ToolCallAttempt, ToolCallOutcome } from '../../machines/toolCallOutcome.ts';
import { recordSpanFailure, startToolCallSpan, TroupeAttribute } from '../../observability/spans.ts';
import { ToolFailureCode, toolFailure, type ToolFailure } from '../../tools/toolFailure.ts';
import { ToolReply, type SessionFinished, type ToolCallCancellation, type ToolRequest } from '../../transport/messages.ts';
import type { WireNames } from '../../transport/subjects.ts';
import { isNoResponders } from '../../transport/natsConnection.ts';
import { traceHeaders } from '../../transport/traceCarrier.ts';
import { decodeWireMessage, encodeWireMessage } from '../../transport/wireMessage.ts';
import { jsonBytes, shapeToolResult, type ResultShapingLimits } from '../../tools/resultShaping.ts';
import type { Delegation } from '../../machines/delegation.ts';
import { troupeMetrics } from '../../observability/metrics.ts';
import type { AlertMonitor } from '../../observability/alertMonitor.ts';
import { cacheKeyOf, type ResponseCache } from '../model/responseCache.ts';
import type { CircuitBreakerRegistry } from './circuitBreakerRegistry.ts';
import { relaySpecialistEvents, type SpecialistEventRelay } from './specialistEventRelay.ts';
import { delegationResult, spendingOf } from '../../agents/specialistAnswer.ts';
import type { ResultStore } from './resultStore.ts';
import type { SessionEventPublisher } from '../session/sessionEvents.ts';
import type { SessionTrace } from '../session/sessionTrace.ts';
import type { ToolCatalog } from './toolCatalog.ts';
import { approvalStatement, signGrant } from '../../transport/callGrants.ts';
import type { StatementSigner } from '../../transport/signatures.ts';

export interface ToolDispatchDependencies {
  nats: NatsConnection;
  /** The deployment's names: cancellations and specialists' events travel on its subjects. */
  names: WireNames;
  catalog: ToolCatalog;
  breakers: CircuitBreakerRegistry;
  trace: SessionTrace;
  events: SessionEventPublisher;
  tracer: Tracer;
  logger: Logger;
  inspect?: (event: InspectionEvent) => void;
  /** In [0, 1): the jitter source; injectable so tests can pin it. */
  random?: () => number;
  /** When a result is too large for the model, and where the full one is kept. */
  largeResults: ResultShapingLimits;
  results?: ResultStore;
  /** Told every call's outcome, for error-rate alerts. */
  alerts?: AlertMonitor;
  /** Record arguments and results on the `execute_tool` span; off by default. */
  captureContent?: boolean;
  /** Calls of tools without side effects answered from here, by tool and arguments, within the scope and time. */
  cache?: { store: ResponseCache; ttlMs: number; scope: string };
  /** What a call to a specialist carries (its session id, depth and budget share); absent where sessions cannot delegate. */
  delegationFor?: (callId: string) => Delegation;
  /** Signs each approved call (its session, id, tool, arguments, approver) until the attempt's deadline, for workers to verify. */
  signer?: StatementSigner;
  /**
   * Resolves once the session's checkpoint holding the call is stored (rejects when it never will
   * be, e.g. the session moved): side-effecting calls and delegations wait for it before they are
   * sent, so a crash can never leave one sent but unrecorded. Absent where sessions are not durable.
   */
  writeAhead?: () => Promise<void>;
  /** Where workers report calls' progress; each report becomes a `tool.call.progress` event. */
  progress?: ToolProgressInbox;
}

// The reply needs a moment to travel back after the worker gives up at the deadline.
const replyGraceMs = 250;

// Room kept in a message for its headers (the trace context) besides the body, as the worker keeps for replies.
const headerRoomBytes = 4_096;
const defaultMaxPayload = 1024 * 1024;

/** The caller's arguments make a request larger than the server carries: the model is told the limit. */
function requestTooLarge(tool: string, bytes: number, maxBytes: number): ToolFailure {
  return {
    code: ToolFailureCode.INVALID_INPUT,
    retryable: false,
    message: `The arguments for "${tool}" are too large to send: the request is ${bytes} bytes, and a request may be at most ${maxBytes} bytes. Send less per call: split the work into smaller calls, or pass a reference (a path, an id) instead of the content itself.`,
    details: { requestBytes: bytes, maxRequestBytes: maxBytes },
  };
}

// The client refuses to publish more than the server's max_payload (nats.js InvalidArgumentError).
const exceedsMaxPayload = (error: unknown): boolean => error instanceof Error && error.message.includes('max_payload');

function failureOfRequest(error: unknown, tool: string, timeoutMs: number): ToolFailure {
  if (isNoResponders(error)) {
    return toolFailure(ToolFailureCode.UNAVAILABLE, `No worker of the pool serving "${tool}" is running. The tool is unavailable right now.`);
  }
  const cause = error instanceof RequestError ? error.cause : error;
  if (cause instanceof TimeoutError) return toolFailure(ToolFailureCode.TIMEOUT, `"${tool}" did not answer within ${timeoutMs} ms.`);
  const message = error instanceof Error ? error.message : String(error);
  return toolFailure(ToolFailureCode.UNAVAILABLE, `The call to "${tool}" could not be delivered: ${message}`);
}

// A specialist member replies right after publishing its session's end; one that died never does.
const replyAfterEndGraceMs = 2_000;

/**
 * A delegation's answer: the member's reply, or, when the session's end arrives and no reply
 * follows it, that end (another member resumed and finished the session of a member that died).
 */
async function replyOrEnd(requested: Promise<Msg>, relay: SpecialistEventRelay): Promise<{ msg: Msg } | { finished: SessionFinished }> {
  requested.catch(() => undefined);
  const first = await Promise.race([requested.then((msg) => ({ msg })), relay.finished.then((finished) => ({ finished }))]);
  if ('msg' in first) return first;
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), replyAfterEndGraceMs)));
  const replied = await Promise.race([requested.then((msg) => msg, () => undefined), grace]);
  clearTimeout(timer);
  return replied ? { msg: replied } : first;
}

/**
 * One attempt: the circuit breaker's admission, then a NATS request carrying the trace context and
 * the attempt's deadline. Resolves with the attempt's outcome; never rejects.
 */
function createToolRequestSender(deps: ToolDispatchDependencies, spanOf: (input: SendToolRequestInput) => Span): SessionStep<SendToolRequestInput, ToolCallAttempt> {
  return async ({ input, signal }) => {
    const started = performance.now();
    const elapsed = () => Number((performance.now() - started).toFixed(3));
    const span = spanOf(input);
    const fail = (failure: ToolFailure): ToolCallAttempt => ({ status: 'error', failure, durationMs: elapsed() });
    const tool = deps.catalog.get(input.tool);
    if (!tool) return fail(toolFailure(ToolFailureCode.UNAVAILABLE, `No running pool serves "${input.tool}".`));
    const delegation = tool.specialist !== null ? deps.delegationFor?.(input.call.callId) : undefined;
    const request: ToolRequest = {
      type: 'tool.request', sessionId: input.sessionId, callId: input.call.callId, tool: tool.name,
      arguments: input.call.arguments, deadline: Date.now() + tool.timeoutMs,
      ...(delegation ? { delegation } : {}),
      ...(deps.progress ? { progressTo: deps.progress.subject } : {}),
    };
    const approval = input.call.approval;
    if (approval) {
      // Signed per attempt, for the tool actually called (a fallback's too) and only until this attempt's deadline.
      const grant = deps.signer ? { grant: signGrant(deps.signer, approvalStatement(deps.names.namespace, request, approval.by, request.deadline)) } : {};
      request.approval = { by: approval.by, at: approval.at, ...grant };
    }
    const body = encodeWireMessage(request);
    // A request NATS cannot carry is the caller's doing: refused before the circuit is asked, so
    // it never counts against the pool and never takes a probe's turn.
    const bytes = Buffer.byteLength(body);
    const maxBytes = (deps.nats.info?.max_payload ?? defaultMaxPayload) - headerRoomBytes;
    if (bytes > maxBytes) return fail(requestTooLarge(tool.name, bytes, maxBytes));
    const admission = deps.breakers.admit(tool.name);
    if (!admission.admitted) {
      return fail({
        code: ToolFailureCode.UNAVAILABLE,
        retryable: false,
        message: `"${tool.name}" is unavailable: its recent calls kept failing, so its circuit is ${admission.state}. It will be tried again in about ${Math.ceil(admission.retryInMs / 1000)} s; use another approach meanwhile.`,
      });
    }
    // Subscribed before the request goes out, so the specialist's first event is not missed.
    const relay = delegation && tool.specialist !== null
      ? relaySpecialistEvents(deps.nats, deps.names, delegation, { agent: tool.specialist, callId: input.call.callId }, deps.events, deps.logger)
      : undefined;
    // A stopped call (its session cancelled or escalated) relays nothing more into the stream, and its
    // specialist is told to stop: nobody will read its answer, so it must not go on spending.
    if (relay) {
      signal.addEventListener('abort', () => {
        relay.stop();
        const cancellation: ToolCallCancellation = { type: 'tool.cancel', callIds: [input.call.callId], reason: 'the delegating session stopped waiting for this answer' };
        deps.nats.publish(deps.names.subjects.toolCallCancellations, encodeWireMessage(cancellation));
      }, { once: true });
    }
    const attemptOfReply = (msg: Msg): ToolCallAttempt => {
      const decoded = decodeWireMessage(ToolReply, msg.data, `The reply of ${tool.name}`);
      if (!decoded.ok) {
        deps.logger.error({ callId: input.call.callId, error: decoded.error }, 'malformed tool reply');
        return fail(toolFailure(ToolFailureCode.INTERNAL, `The worker sent a malformed reply: ${decoded.error}`));
      }
      const reply = decoded.value;
      // Only a specialist spends on the session's behalf: spending any other pool reports is ignored.
      const spent = delegation && reply.spent ? { spent: reply.spent } : {};
      return reply.status === 'ok'
        ? { status: 'ok', result: reply.result, durationMs: elapsed(), ...(reply.compensation !== undefined ? { compensation: reply.compensation } : {}), ...spent }
        : { ...fail(reply.failure), ...spent };
    };
    let attempt: ToolCallAttempt;
    let sent = true;
    const unwatch = deps.progress?.watch(input.call.callId, (reported) => {
      deps.events.publish({
        type: 'tool.call.progress', turn: input.turn, callId: input.call.callId, tool: tool.name, progress: reported.progress,
        ...(reported.total !== undefined ? { total: reported.total } : {}), ...(reported.message !== undefined ? { message: reported.message } : {}),
      });
    });
    try {
      const parent = trace.setSpan(deps.trace.turnContext(input.turn), span);
      // The grace must not push the wait past what a timer can hold (it would fire at once).
      const timeout = Math.min(tool.timeoutMs + replyGraceMs, maxTimerDelayMs);
      const requested = deps.nats.request(tool.subject, body, { timeout, headers: traceHeaders(parent) });
      const answered = relay && tool.specialist !== null ? await replyOrEnd(requested, relay) : { msg: await requested };
      if ('finished' in answered) {
        // The member that took the call is gone; the pool finished the session elsewhere.
        const { finished } = answered;
        deps.logger.info({ callId: input.call.callId, specialistSessionId: finished.sessionId }, 'delegation answered from its session\'s end: the member that took it did not reply');
        const result = delegationResult(tool.specialist as string, finished);
        attempt = result.ok
          ? { status: 'ok', result: result.answer, durationMs: elapsed(), spent: spendingOf(finished) }
          : { ...fail(result.failure), spent: spendingOf(finished) };
      } else {
        attempt = attemptOfReply(answered.msg);
      }
    } catch (error) {
      // The server this connection reached may carry less than the one measured above.
      sent = !exceedsMaxPayload(error);
      attempt = fail(sent ? failureOfRequest(error, tool.name, tool.timeoutMs) : requestTooLarge(tool.name, bytes, (deps.nats.info?.max_payload ?? defaultMaxPayload) - headerRoomBytes));
    } finally {
      relay?.stop();
      unwatch?.();
    }
    const changed = sent
      ? deps.breakers.record(tool.name, attempt.status === 'error' ? attempt.failure : undefined, admission.ticket, input.sessionId)
      : deps.breakers.release(tool.name, admission.ticket);
    if (changed) {
      deps.events.publish({ type: 'tool.breaker.changed', tool: changed.tool, from: changed.from, to: changed.to });
      span.addEvent('circuit_breaker.changed', { 'troupe.tool.name': changed.tool, from: changed.from, to: changed.to });
    }
    if (attempt.status === 'error') deps.logger.warn({ callId: input.call.callId, tool: tool.name, attempt: input.attempt, code: attempt.failure.code }, attempt.failure.message);
    return attempt;
  };
}

/** What a tool call's statechart does for the session it runs in: one set per session's dispatcher. */
interface ToolCallHooks {
  sendToolRequest: SessionStep<SendToolRequestInput, ToolCallAttempt>;
  retryDelayMs(callId: string): number;
  announceStart(context: ToolCallContext): void;
  announceRetry(context: ToolCallContext): void;
  announceFallback(context: ToolCallContext): void;
  announceFinish(context: ToolCallContext): void;
}

const toolCallHooks = new ActorSystemHooks<ToolCallHooks>('tool-call hooks');

// One tool-call statechart for every call in this process (see ActorSystemHooks).
const hostedToolCallMachine = toolCallMachine.provide({
  actors: { sendToolRequest: fromPromise<ToolCallAttempt, SendToolRequestInput>(({ input, signal, system }) => toolCallHooks.of(system).sendToolRequest({ input, signal })) },
  delays: { retryBackoff: ({ context, system }) => toolCallHooks.of(system).retryDelayMs(context.call.callId) },
  actions: {
    announceStart: ({ context, system }) => toolCallHooks.of(system).announceStart(context),
    announceRetry: ({ context, system }) => toolCallHooks.of(system).announceRetry(context),
    announceFallback: ({ context, system }) => toolCallHooks.of(system).announceFallback(context),
    announceFinish: ({ context, system }) => toolCallHooks.of(system).announceFinish(context),
  },
});

/**
 * The session's `executeToolCall` actor: runs the call as a `toolCall` statechart (retries with
 * backoff and jitter, fallbacks, the circuit breaker) and resolves with its outcome. It owns the
 * call's `execute_tool` span, which covers every attempt, and announces retries and fallbacks as
 * events, span events and log lines. Aborting it (the session ended) stops the call.
 */
export function createToolDispatcher(deps: ToolDispatchDependencies): SessionStep<ExecuteToolCallInput, ToolCallOutcome> {
  const random = deps.random ?? Math.random;
  const spans = new Map<string, Span>();
  // XState starts an invoked actor before it runs custom entry actions, so the first attempt may
  // need the call's span before announceStart: whichever comes first starts it.
  const spanOf = (input: { sessionId: string; turn: number; call: { callId: string; name: string } }): Span => {
    let span = spans.get(input.call.callId);
    if (!span) {
      span = startToolCallSpan(deps.tracer, deps.trace.turnContext(input.turn), {
        sessionId: input.sessionId, tool: input.call.name, callId: input.call.callId, side: 'orchestrator',
      });
      spans.set(input.call.callId, span);
    }
    return span;
  };
  const sendToolRequest = createToolRequestSender(deps, spanOf);
  // Each call's backoff, as its last retry chose it (with jitter): read by the statechart's delay.
  const retryDelays = new Map<string, number>();
  const hooks: ToolCallHooks = {
    sendToolRequest,
    retryDelayMs: (callId) => retryDelays.get(callId) ?? 0,
    announceStart: (context) => {
      const { call, turn } = context;
      spanOf(context);
      deps.events.publish({ type: 'tool.call.started', turn, callId: call.callId, tool: call.name, arguments: call.arguments });
    },
    announceRetry: (context) => {
      const { call, turn } = context;
      const nextDelayMs = withJitter(backoffDelayMs(call.retry, context.attempt), random());
      retryDelays.set(call.callId, nextDelayMs);
      const failure = context.lastFailure as ToolFailure;
      deps.events.publish({ type: 'tool.call.retrying', turn, callId: call.callId, tool: context.tool, attempt: context.attempt + 1, delayMs: nextDelayMs, failure });
      spans.get(call.callId)?.addEvent('retry', { 'troupe.retry.attempt': context.attempt + 1, 'troupe.retry.delay_ms': nextDelayMs, 'error.type': failure.code });
      troupeMetrics().toolRetries.add(1, { 'gen_ai.tool.name': context.tool, 'error.type': failure.code });
      deps.logger.info({ callId: call.callId, tool: context.tool, attempt: context.attempt + 1, delayMs: nextDelayMs, code: failure.code }, 'retrying tool call');
    },
    announceFallback: (context) => {
      const { call, turn } = context;
      const from = context.fallbackIndex === 0 ? call.name : (call.fallbacks[context.fallbackIndex - 1] ?? call.name);
      const failure = context.lastFailure as ToolFailure;
      deps.events.publish({ type: 'tool.call.fallback', turn, callId: call.callId, from, to: context.tool, failure });
      spans.get(call.callId)?.addEvent('fallback', { from, to: context.tool, 'error.type': failure.code });
      deps.logger.info({ callId: call.callId, from, to: context.tool }, 'falling back to another tool');
    },
    announceFinish: (context) => {
      const { call, outcome } = context;
      const span = spans.get(call.callId);
      spans.delete(call.callId);
      if (!outcome || !span) return;
      const pool = deps.catalog.get(call.name)?.domain ?? 'unknown';
      troupeMetrics().toolCalls.add(1, {
        'gen_ai.tool.name': call.name, [TroupeAttribute.toolDomain]: pool, [TroupeAttribute.toolStatus]: outcome.status,
        ...(outcome.status === 'error' ? { 'error.type': outcome.failure.code } : {}),
      });
      troupeMetrics().toolCallDuration.record(outcome.durationMs / 1000, { 'gen_ai.tool.name': call.name, [TroupeAttribute.toolStatus]: outcome.status });
      deps.alerts?.recordToolCall({ tool: call.name, pool, ok: outcome.status === 'ok' });
      if (deps.captureContent) {
        span.setAttribute('gen_ai.tool.call.arguments', JSON.stringify(call.arguments));
        if (outcome.status === 'ok') span.setAttribute('gen_ai.tool.call.result', JSON.stringify(outcome.result) ?? 'null');
      }
      span.setAttribute(TroupeAttribute.toolStatus, outcome.status);
      span.setAttribute('troupe.tool.attempts', context.totalAttempts);
      if (outcome.status === 'error') recordSpanFailure(span, outcome.failure.code, outcome.failure.message);
      span.end();
    },
  };
  return async ({ input, signal }) => {
    const { call, turn } = input;
    // Write-ahead: once sent, a call must be re-sent with this id after any crash, never re-planned.
    if (deps.writeAhead && (call.sideEffects || deps.catalog.get(call.name)?.specialist != null)) {
      try {
        await deps.writeAhead();
      } catch (error) {
        deps.logger.warn({ callId: call.callId, tool: call.name, err: error }, 'not sending a side-effecting call whose checkpoint will not be stored');
        return {
          status: 'error', callId: call.callId, durationMs: 0,
          failure: { code: ToolFailureCode.UNAVAILABLE, retryable: false, message: `${call.name} was not sent: ${error instanceof Error ? error.message : String(error)}.` },
        };
      }
      if (signal.aborted) return { status: 'error', callId: call.callId, durationMs: 0, failure: { code: ToolFailureCode.INTERNAL, retryable: false, message: `${call.name} was not sent: its session stopped.` } };
    }
    // Only calls that change nothing, need nobody's approval and start no session of their own are reused.
    const cacheable = deps.cache && !call.sideEffects && !call.requiresApproval && deps.catalog.get(call.name)?.specialist == null;
    const cacheKey = cacheable && deps.cache ? cacheKeyOf([deps.cache.scope, call.name, call.arguments]) : undefined;
    const reused = cacheKey ? deps.cache?.store.get<{ result: unknown }>(cacheKey) : undefined;
    if (reused) {
      deps.events.publish({ type: 'tool.call.started', turn, callId: call.callId, tool: call.name, arguments: call.arguments });
      // Shaped like a fresh result: a large one is summarised for the model and kept under this call's id.
      const shaped = await shapeLargeResult(deps, input.sessionId, call.callId, call.name, reused.result);
      deps.events.publish({
        type: 'tool.call.finished', turn, callId: call.callId, tool: call.name, status: 'ok', result: shaped.result, durationMs: 0, attempts: 1, cached: true,
        ...(shaped.summarised ? { summarised: true } : {}),
      });
      deps.trace.addEvent('tool.cache_hit', { 'gen_ai.tool.name': call.name, 'gen_ai.tool.call.id': call.callId });
      deps.logger.info({ callId: call.callId, tool: call.name }, 'tool call answered from the cache');
      return { status: 'ok', callId: call.callId, result: shaped.result, durationMs: 0, attempts: 1, cached: true };
    }
    const actor = createActor(hostedToolCallMachine, { input, id: `tool:${call.callId}`, ...(deps.inspect ? { inspect: deps.inspect } : {}) });
    toolCallHooks.attach(actor.system, hooks);
    const stop = () => {
      actor.stop();
      const span = spans.get(call.callId);
      spans.delete(call.callId);
      span?.addEvent('cancelled');
      span?.end();
    };
    signal.addEventListener('abort', stop, { once: true });
    actor.start();
    let outcome: ToolCallOutcome;
    try {
      outcome = await toPromise(actor);
    } finally {
      signal.removeEventListener('abort', stop);
      retryDelays.delete(call.callId);
    }
    const attempts = outcome.attempts ?? 1;
    // A specialist's spend belongs to this turn: added now, while the turn's span is still open.
    if (outcome.spent && outcome.spent.usage.costUsd > 0) deps.trace.addTurnCost(turn, outcome.spent.usage.costUsd);
    if (outcome.status === 'error') {
      deps.events.publish({ type: 'tool.call.finished', turn, callId: call.callId, tool: call.name, status: 'error', failure: outcome.failure, durationMs: outcome.durationMs, attempts });
      return outcome;
    }
    // Large results are not kept in the cache (they live in the result store): the cache stays small.
    if (cacheKey && jsonBytes(outcome.result) <= deps.largeResults.maxBytes) deps.cache?.store.set(cacheKey, { result: outcome.result }, deps.cache.ttlMs);
    const shaped = await shapeLargeResult(deps, input.sessionId, call.callId, call.name, outcome.result);
    deps.events.publish({
      type: 'tool.call.finished', turn, callId: call.callId, tool: call.name, status: 'ok', result: shaped.result, durationMs: outcome.durationMs, attempts,
      ...(outcome.servedBy ? { servedBy: outcome.servedBy } : {}), ...(shaped.summarised ? { summarised: true } : {}),
    });
    return { ...outcome, result: shaped.result };
  };
}

/** Keeps a result too large for the model in the result store, for this session only, and hands the model a summary instead. */
async function shapeLargeResult(deps: ToolDispatchDependencies, sessionId: string, callId: string, tool: string, result: unknown): Promise<{ result: unknown; summarised: boolean }> {
  const bytes = jsonBytes(result);
  if (bytes <= deps.largeResults.maxBytes) return { result, summarised: false };
  let fetchable = false;
  if (deps.results) {
    try {
      await deps.results.put(sessionId, callId, result);
      fetchable = true;
    } catch (error) {
      deps.logger.warn({ err: error, callId }, 'could not keep a large result; the model gets the summary only');
    }
  }
  deps.logger.info({ callId, tool, bytes, fetchable }, 'result too large for the model: sending a summary');
  return { result: shapeToolResult(callId, result, deps.largeResults, fetchable), summarised: true };
}
