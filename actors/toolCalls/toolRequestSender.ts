import { trace, type Span } from '@opentelemetry/api';
import { RequestError, TimeoutError, type Msg } from '@nats-io/transport-node';
import { delegationResult, spendingOf } from '../../agents/specialistAnswer.ts';
import { maxTimerDelayMs } from '../../machines/timerDelay.ts';
import type { SendToolRequestInput } from '../../machines/toolCall.ts';
import type { ToolCallAttempt } from '../../machines/toolCallOutcome.ts';
import { ToolFailureCode, toolFailure, type ToolFailure } from '../../tools/toolFailure.ts';
import { approvalStatement, signGrant } from '../../transport/callGrants.ts';
import { ToolReply, type SessionFinished, type ToolCallCancellation, type ToolRequest } from '../../transport/messages.ts';
import { isNoResponders } from '../../transport/natsConnection.ts';
import { traceHeaders } from '../../transport/traceCarrier.ts';
import { decodeWireMessage, encodeWireMessage } from '../../transport/wireMessage.ts';
import type { SessionStep } from '../session/actorSystemHooks.ts';
import { relaySpecialistEvents, type SpecialistEventRelay } from './specialistEventRelay.ts';
import type { ToolDispatchDependencies } from './toolDispatch.ts';

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
export function createToolRequestSender(deps: ToolDispatchDependencies, spanOf: (input: SendToolRequestInput) => Span): SessionStep<SendToolRequestInput, ToolCallAttempt> {
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
