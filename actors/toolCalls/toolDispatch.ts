import type { ToolProgressInbox } from './toolProgressInbox.ts';
import type { Span, Tracer } from '@opentelemetry/api';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { createActor, fromPromise, toPromise, type InspectionEvent } from 'xstate';
import { backoffDelayMs, withJitter } from '../../machines/retryPolicy.ts';
import type { ExecuteToolCallInput } from '../../machines/session.ts';
import { toolCallMachine, type SendToolRequestInput, type ToolCallContext } from '../../machines/toolCall.ts';
import { ActorSystemHooks, type SessionStep } from '../session/actorSystemHooks.ts';
import type { ToolCallAttempt, ToolCallOutcome } from '../../machines/toolCallOutcome.ts';
import { recordSpanFailure, startToolCallSpan, TroupeAttribute } from '../../observability/spans.ts';
import { ToolFailureCode, type ToolFailure } from '../../tools/toolFailure.ts';
import type { WireNames } from '../../transport/subjects.ts';
import { jsonBytes, shapeToolResult, type ResultShapingLimits } from '../../tools/resultShaping.ts';
import type { Delegation } from '../../machines/delegation.ts';
import { troupeMetrics } from '../../observability/metrics.ts';
import type { AlertMonitor } from '../../observability/alertMonitor.ts';
import { cacheKeyOf, type ResponseCache } from '../model/responseCache.ts';
import type { CircuitBreakerRegistry } from './circuitBreakerRegistry.ts';
import type { ResultStore } from './resultStore.ts';
import type { SessionEventPublisher } from '../session/sessionEvents.ts';
import type { SessionTrace } from '../session/sessionTrace.ts';
import type { ToolCatalog } from './toolCatalog.ts';
import { createToolRequestSender } from './toolRequestSender.ts';
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
  /** Applied to the content captured on spans (see `Guardrail.scrub`). */
  scrub?: (text: string) => string;
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
        const captured = (text: string) => (deps.scrub ? deps.scrub(text) : text);
        span.setAttribute('gen_ai.tool.call.arguments', captured(JSON.stringify(call.arguments)));
        if (outcome.status === 'ok') span.setAttribute('gen_ai.tool.call.result', captured(JSON.stringify(outcome.result) ?? 'null'));
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
