import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { SessionControlReply, SessionEvent, SessionStartReply, type SessionControl, type SessionFinished, type SessionStartRequest } from '../transport/messages.ts';
import { isNoResponders } from '../transport/natsConnection.ts';
import { subjects } from '../transport/subjects.ts';
import { decodeWireMessage, encodeWireMessage } from '../transport/wireMessage.ts';

/** No orchestrator answered the start request. */
export class NoOrchestratorError extends Error {
  constructor(cause?: unknown) {
    super('No orchestrator is running: start one with `troupe orchestrator` (or `troupe up`).', { cause });
    this.name = new.target.name;
  }
}

/** An orchestrator refused the session (unknown agent, malformed task, duplicate id). */
export class SessionRejectedError extends Error {
  readonly reason: string;
  constructor(reason: string) {
    super(`The session was refused: ${reason}`);
    this.name = new.target.name;
    this.reason = reason;
  }
}

export interface StartSessionOptions {
  task: string;
  agent?: string;
  /** Your own id (letters, digits, `-`, `_`); a random one when absent. */
  sessionId?: string;
  /** How long to wait for an orchestrator to accept. */
  acceptTimeoutMs?: number;
  /** Told about events that arrive malformed; they are skipped, never silently. */
  onInvalidEvent?: (error: string) => void;
}

/** A session started from this process, followed through its events. */
export interface SessionRun {
  readonly sessionId: string;
  readonly traceId: string;
  /** Every event of the session in order, ending with `session.finished`. One consumer. */
  readonly events: AsyncIterable<SessionEvent>;
  /** Resolves with the last event, whether or not anyone reads `events`. */
  readonly finished: Promise<SessionFinished>;
  /** Asks the hosting orchestrator to cancel; true when it accepted. */
  cancel(reason?: string): Promise<boolean>;
  /** Stops following the session (the session itself goes on). */
  detach(): void;
}

/**
 * Starts a session on whichever orchestrator takes it and follows its events. Subscribes to the
 * session's events before asking, so not even `session.started` can be missed.
 *
 * @example
 * const run = await startSession(nc, { task: 'How many orders were refunded in 2025?' });
 * for await (const event of run.events) console.log(event.type);
 * const { status, output } = await run.finished;
 */
export async function startSession(nc: NatsConnection, options: StartSessionOptions): Promise<SessionRun> {
  const sessionId = options.sessionId ?? randomUUID();
  const buffered: SessionEvent[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  let resolveFinished!: (event: SessionFinished) => void;
  const finished = new Promise<SessionFinished>((resolve) => (resolveFinished = resolve));

  const subscription = nc.subscribe(subjects.sessionEvents(sessionId), {
    callback: (_error, msg) => {
      const decoded = decodeWireMessage(SessionEvent, msg.data, 'A session event');
      if (!decoded.ok) {
        options.onInvalidEvent?.(decoded.error);
        return;
      }
      buffered.push(decoded.value);
      if (decoded.value.type === 'session.finished') {
        ended = true;
        subscription.unsubscribe();
        resolveFinished(decoded.value);
      }
      wake?.();
    },
  });
  await nc.flush();

  const request: SessionStartRequest = {
    type: 'session.start',
    sessionId,
    task: options.task,
    ...(options.agent ? { agent: options.agent } : {}),
  };
  let reply: SessionStartReply;
  try {
    const msg = await nc.request(subjects.sessionStart, encodeWireMessage(request), { timeout: options.acceptTimeoutMs ?? 10_000 });
    const decoded = decodeWireMessage(SessionStartReply, msg.data, 'The orchestrator reply');
    if (!decoded.ok) throw new Error(decoded.error);
    reply = decoded.value;
  } catch (error) {
    subscription.unsubscribe();
    if (isNoResponders(error)) throw new NoOrchestratorError(error);
    throw error;
  }
  if (reply.type === 'session.rejected') {
    subscription.unsubscribe();
    throw new SessionRejectedError(reply.reason);
  }

  async function* events(): AsyncGenerator<SessionEvent> {
    for (;;) {
      const next = buffered.shift();
      if (next) {
        yield next;
        if (next.type === 'session.finished') return;
        continue;
      }
      if (ended && buffered.length === 0) return;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  }

  return {
    sessionId,
    traceId: reply.traceId,
    events: events(),
    finished,
    async cancel(reason = 'cancelled by the client') {
      const msg = await nc.request(subjects.sessionControl(sessionId), encodeWireMessage({ type: 'session.cancel', reason }), { timeout: 5_000 });
      const decoded = decodeWireMessage(SessionControlReply, msg.data, 'The control reply');
      return decoded.ok && decoded.value.accepted;
    },
    detach() {
      ended = true;
      subscription.unsubscribe();
      wake?.();
    },
  };
}

async function sendControl(nc: NatsConnection, sessionId: string, message: SessionControl): Promise<{ accepted: boolean; reason?: string }> {
  let msg;
  try {
    msg = await nc.request(subjects.sessionControl(sessionId), encodeWireMessage(message), { timeout: 5_000 });
  } catch (error) {
    if (isNoResponders(error)) return { accepted: false, reason: `No orchestrator hosts session ${sessionId}.` };
    throw error;
  }
  const decoded = decodeWireMessage(SessionControlReply, msg.data, 'The control reply');
  if (!decoded.ok) return { accepted: false, reason: decoded.error };
  return decoded.value.reason === undefined ? { accepted: decoded.value.accepted } : { accepted: decoded.value.accepted, reason: decoded.value.reason };
}

/**
 * Answers a session that was escalated to a person: the answer goes to the model and the loop
 * resumes on the orchestrator that hosts it. Resolves with whether it was accepted, and why not.
 */
export async function answerSession(nc: NatsConnection, sessionId: string, answer: string): Promise<{ accepted: boolean; reason?: string }> {
  return await sendControl(nc, sessionId, { type: 'session.answer', answer });
}

/** Cancels a running or parked session by id, from any process. */
export async function cancelSession(nc: NatsConnection, sessionId: string, reason = 'cancelled by the client'): Promise<{ accepted: boolean; reason?: string }> {
  return await sendControl(nc, sessionId, { type: 'session.cancel', reason });
}
