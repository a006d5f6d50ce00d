import { trace, type Tracer } from '@opentelemetry/api';
import { RequestError, TimeoutError, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { fromPromise } from 'xstate';
import type { ExecuteToolCallInput } from '../machines/session.ts';
import type { ToolCallOutcome } from '../machines/toolCallOutcome.ts';
import { recordSpanFailure, startToolCallSpan, TroupeAttribute } from '../observability/spans.ts';
import { ToolFailureCode, toolFailure, type ToolFailure } from '../tools/toolFailure.ts';
import { ToolReply, type ToolRequest } from '../transport/messages.ts';
import { isNoResponders } from '../transport/natsConnection.ts';
import { traceHeaders } from '../transport/traceCarrier.ts';
import { decodeWireMessage, encodeWireMessage } from '../transport/wireMessage.ts';
import type { SessionEventPublisher } from './sessionEvents.ts';
import type { SessionTrace } from './sessionTrace.ts';
import type { ToolCatalog } from './toolCatalog.ts';

export interface ToolDispatchDependencies {
  nats: NatsConnection;
  catalog: ToolCatalog;
  trace: SessionTrace;
  events: SessionEventPublisher;
  tracer: Tracer;
  logger: Logger;
}

// The reply needs a moment to travel back after the worker gives up at the deadline.
const replyGraceMs = 250;

function failureOfRequest(error: unknown, tool: string, timeoutMs: number): ToolFailure {
  const cause = error instanceof RequestError ? error.cause : error;
  if (isNoResponders(error)) {
    return toolFailure(ToolFailureCode.UNAVAILABLE, `No worker of the pool serving "${tool}" is running. The tool is unavailable right now.`);
  }
  if (cause instanceof TimeoutError) {
    return toolFailure(ToolFailureCode.TIMEOUT, `"${tool}" did not answer within ${timeoutMs} ms.`);
  }
  const message = error instanceof Error ? error.message : String(error);
  return toolFailure(ToolFailureCode.UNAVAILABLE, `The call to "${tool}" could not be delivered: ${message}`);
}

/**
 * The session's `executeToolCall` actor: sends one validated call to its pool as a NATS request
 * carrying the trace context and a deadline, and resolves with its outcome. It never rejects:
 * no responders, a timeout, or a malformed reply become structured failures the model reads.
 */
export function createToolDispatcher(deps: ToolDispatchDependencies) {
  return fromPromise<ToolCallOutcome, ExecuteToolCallInput>(async ({ input }) => {
    const { call } = input;
    const started = performance.now();
    const tool = deps.catalog.get(call.name);
    const span = startToolCallSpan(deps.tracer, deps.trace.turnContext(input.turn), {
      sessionId: input.sessionId, tool: call.name, callId: call.callId, side: 'orchestrator',
    });
    deps.events.publish({ type: 'tool.call.started', turn: input.turn, callId: call.callId, tool: call.name, arguments: call.arguments });
    const finish = (outcome: ToolCallOutcome): ToolCallOutcome => {
      span.setAttribute(TroupeAttribute.toolStatus, outcome.status);
      if (outcome.status === 'error') recordSpanFailure(span, outcome.failure.code, outcome.failure.message);
      span.end();
      deps.events.publish(
        outcome.status === 'ok'
          ? { type: 'tool.call.finished', turn: input.turn, callId: call.callId, tool: call.name, status: 'ok', result: outcome.result, durationMs: outcome.durationMs }
          : { type: 'tool.call.finished', turn: input.turn, callId: call.callId, tool: call.name, status: 'error', failure: outcome.failure, durationMs: outcome.durationMs },
      );
      return outcome;
    };
    const elapsed = () => Number((performance.now() - started).toFixed(3));
    if (!tool) {
      return finish({ status: 'error', callId: call.callId, durationMs: elapsed(),
        failure: toolFailure(ToolFailureCode.UNAVAILABLE, `No pool serves "${call.name}" any more.`) });
    }
    span.setAttribute(TroupeAttribute.toolDomain, tool.domain);
    const request: ToolRequest = {
      type: 'tool.request', sessionId: input.sessionId, callId: call.callId, tool: call.name,
      arguments: call.arguments, deadline: Date.now() + tool.timeoutMs,
    };
    try {
      const msg = await deps.nats.request(tool.subject, encodeWireMessage(request), {
        timeout: tool.timeoutMs + replyGraceMs,
        headers: traceHeaders(trace.setSpan(deps.trace.turnContext(input.turn), span)),
      });
      const decoded = decodeWireMessage(ToolReply, msg.data, `The reply of ${call.name}`);
      if (!decoded.ok) {
        deps.logger.error({ callId: call.callId, error: decoded.error }, 'malformed tool reply');
        return finish({ status: 'error', callId: call.callId, durationMs: elapsed(),
          failure: toolFailure(ToolFailureCode.INTERNAL, `The worker sent a malformed reply: ${decoded.error}`) });
      }
      const reply = decoded.value;
      return finish(
        reply.status === 'ok'
          ? { status: 'ok', callId: call.callId, result: reply.result, durationMs: elapsed() }
          : { status: 'error', callId: call.callId, failure: reply.failure, durationMs: elapsed() },
      );
    } catch (error) {
      const failure = failureOfRequest(error, call.name, tool.timeoutMs);
      deps.logger.warn({ callId: call.callId, tool: call.name, code: failure.code }, failure.message);
      return finish({ status: 'error', callId: call.callId, failure, durationMs: elapsed() });
    }
  });
}
