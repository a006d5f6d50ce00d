import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import type { BudgetOverrides } from '../machines/budgets.ts';
import { SessionControlReply, SessionStartReply, type SessionControl, decodeSessionEvents, type SessionEvent, type SessionFinished, type SessionStartRequest, type StartRefusal } from '../transport/messages.ts';
import { ensureStreams, lastStoredSessionEvent } from '../transport/streams.ts';
import { followSessionEvents, type SessionEventFeed } from './sessionEventFeed.ts';
import { isNoResponders, isRequestTimeout } from '../transport/natsConnection.ts';
import { wireNames, type WireNames } from '../transport/subjects.ts';
import { decodeWireMessage, encodeWireMessage } from '../transport/wireMessage.ts';
import { signControl } from '../transport/controlSignatures.ts';
import type { StatementSigner } from '../transport/signatures.ts';

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
  /** Why, for code to act on (see `StartRefusal`); absent from an orchestrator that did not say. */
  readonly code: StartRefusal | undefined;
  constructor(reason: string, code?: StartRefusal) {
    super(`The session was refused: ${reason}`);
    this.name = new.target.name;
    this.reason = reason;
    this.code = code;
  }
}

/** Which deployment's sessions a client function reaches. */
export interface NamespaceOption {
  /** The deployment's namespace (`TROUPE_NAMESPACE`); `troupe` when absent. */
  namespace?: string;
}

/** How a command reaches a session: its deployment, and the operator key it is signed with. */
export interface ControlOptions extends NamespaceOption {
  /**
   * The operator's key (`statementSigner` of its nkey seed): orchestrators that know their
   * operators accept only signed commands, and record the operator's name as who did it.
   */
  signer?: StatementSigner;
  /** The command's id: the same command sent again with it (a retry) is applied once. A new one when absent. */
  controlId?: string;
  /** How long to wait for the session's host to apply the command before answering `recorded` (3 s). */
  applyWithinMs?: number;
  /**
   * Who sends it, recorded with the session's interventions (and on `session.redirected`). The
   * signing operator's name replaces it when commands are signed.
   */
  by?: string;
}

export interface StartSessionOptions extends NamespaceOption {
  task: string;
  agent?: string;
  /** Whom the work is for: the session's spend is reported per tenant and per user (metrics, alerts, events). */
  tenant?: string;
  user?: string;
  /**
   * Budgets tighter than the agent's, for this session only (e.g. `{ maxSteps: 5, maxCostUsd: 0.1 }`);
   * the agent's own where absent. Asking for more than the agent allows is refused (`invalid`).
   */
  budgets?: BudgetOverrides;
  /** Your own id (letters, digits, `-`, `_`); a random one when absent. */
  sessionId?: string;
  /**
   * How long to wait for an orchestrator to accept (10 s). Within it the same start is sent again when a
   * try goes unanswered or its orchestrator has not accepted yet; past it `startSession` throws.
   */
  acceptTimeoutMs?: number;
  /**
   * When no orchestrator is running: queue the start (the default; one picks it up when it starts)
   * or fail at once with NoOrchestratorError. Queuing needs JetStream.
   */
  whenNoOrchestrator?: 'queue' | 'fail';
  /** Told about events that arrive malformed; they are skipped, never silently. */
  onInvalidEvent?: (error: string) => void;
}

/** A session started from this process, followed through its events. */
export interface SessionRun {
  readonly sessionId: string;
  /** The trace id, once an orchestrator has taken the session (at once, unless it was queued). */
  readonly traceId: string | undefined;
  /** True when no orchestrator was running and the start waits in the queue. */
  readonly queued: boolean;
  /** Every event of the session in order, ending with `session.finished`. One consumer. */
  readonly events: AsyncIterable<SessionEvent>;
  /** Resolves with the first `session.finished` (final, or escalated and parked), whether or not anyone reads `events`. */
  readonly finished: Promise<SessionFinished>;
  /** Asks the hosting orchestrator to cancel; true when it accepted. */
  cancel(reason?: string): Promise<boolean>;
  /** Stops following the session (the session itself goes on). */
  detach(): void;
}

// Per connection, the namespaces whose streams are known to exist.
const ensured = new WeakMap<NatsConnection, Set<string>>();
async function ensureStreamsOnce(nc: NatsConnection, names: WireNames): Promise<void> {
  if (ensured.get(nc)?.has(names.namespace)) return;
  // Without JetStream, sessions still run; only replay and queued starts are unavailable.
  await ensureStreams(nc, names).then(
    () => void ensured.set(nc, (ensured.get(nc) ?? new Set()).add(names.namespace)),
    () => undefined,
  );
}

/**
 * Starts a session on whichever orchestrator takes it and follows its events from the first.
 * When none is running, the start is queued in JetStream and taken by the first orchestrator
 * that starts; the events follow all the same.
 *
 * @example
 * const run = await startSession(nc, { task: 'How many orders were refunded in 2025?' });
 * for await (const event of run.events) console.log(event.type);
 * const { status, output } = await run.finished;
 */
export async function startSession(nc: NatsConnection, options: StartSessionOptions): Promise<SessionRun> {
  const names = wireNames(options.namespace);
  const sessionId = options.sessionId ?? randomUUID();
  await ensureStreamsOnce(nc, names);
  const feed = await followSessionEvents(nc, sessionId, { namespace: names.namespace, ...(options.onInvalidEvent ? { onInvalidEvent: options.onInvalidEvent } : {}) });
  const request: SessionStartRequest = {
    type: 'session.start',
    sessionId,
    task: options.task,
    ...(options.agent ? { agent: options.agent } : {}),
    ...(options.tenant ? { tenant: options.tenant } : {}),
    ...(options.user ? { user: options.user } : {}),
    ...(options.budgets ? { budgets: options.budgets } : {}),
  };
  let traceId: string | undefined;
  let queued = false;
  try {
    traceId = await sendStart(nc, names, request, options.acceptTimeoutMs ?? 10_000);
  } catch (error) {
    if (!isNoResponders(error) || options.whenNoOrchestrator === 'fail' || !feed.replayable) {
      feed.stop();
      throw isNoResponders(error) ? new NoOrchestratorError(error) : error;
    }
    // The message id makes a retried publish of the same start a no-op in the queue.
    await jetstream(nc).publish(names.subjects.queuedSessionStarts, encodeWireMessage(request), { msgID: sessionId });
    queued = true;
  }
  void feed.finished.then((event) => (traceId ??= event.traceId));
  return {
    sessionId,
    get traceId() {
      return traceId;
    },
    queued,
    events: feed.events,
    finished: feed.finished,
    async cancel(reason = 'cancelled by the client') {
      return (await cancelSession(nc, sessionId, reason, { namespace: names.namespace })).accepted;
    },
    detach: () => feed.stop(),
  };
}

// How long one try waits for an answer before the same start is sent again, and the pause after a `starting`.
const startTryMs = 3_000;
const startPauseMs = 500;

/**
 * Sends the start until an orchestrator accepts it, within `acceptTimeoutMs`, and resolves its trace id
 * (undefined when an earlier try turned out accepted). A start is idempotent by its session id, so
 * sending it again is safe: a try whose orchestrator died unaccepted is taken by another, and one whose
 * acceptance was lost answers `in_use`, which is then this client's own session.
 */
async function sendStart(nc: NatsConnection, names: WireNames, request: SessionStartRequest, acceptTimeoutMs: number): Promise<string | undefined> {
  const deadline = Date.now() + acceptTimeoutMs;
  for (let attempt = 0; ; attempt++) {
    const timeout = Math.max(1, Math.min(startTryMs, deadline - Date.now()));
    let reply: SessionStartReply;
    try {
      const decoded = decodeWireMessage(SessionStartReply, (await nc.request(names.subjects.sessionStart, encodeWireMessage(request), { timeout })).data, 'The orchestrator reply');
      if (!decoded.ok) throw new Error(decoded.error);
      reply = decoded.value;
    } catch (error) {
      if (!isRequestTimeout(error) || Date.now() >= deadline) throw error;
      continue;
    }
    if (reply.type === 'session.accepted') return reply.traceId;
    if (reply.code === 'in_use' && attempt > 0) return undefined;
    if (reply.code !== 'starting' || Date.now() + startPauseMs >= deadline) throw new SessionRejectedError(reply.reason, reply.code);
    await new Promise((resolve) => setTimeout(resolve, startPauseMs));
  }
}

/**
 * Follows a session that is already running (or finished) from another process: replays its
 * events from the first and follows the rest, like `troupe run --attach <id>`.
 */
export async function attachSession(
  nc: NatsConnection,
  sessionId: string,
  options: { onInvalidEvent?: (error: string) => void } & NamespaceOption = {},
): Promise<SessionEventFeed> {
  await ensureStreamsOnce(nc, wireNames(options.namespace));
  return await followSessionEvents(nc, sessionId, options);
}

/** What became of a command: `applied` or `refused` by the session's host, or `recorded` while nobody hosts it. */
export interface ControlResult {
  /**
   * `applied`: the host acted on it. `refused`: it does not apply (`reason` says why). `recorded`: kept
   * in JetStream while no orchestrator hosts the session (one is taking it over); the one that resumes
   * it applies it before anything else, and says so on the session's events (`control.applied`).
   */
  status: 'applied' | 'refused' | 'recorded';
  /** True when applied, or recorded to be applied. */
  accepted: boolean;
  reason?: string;
  /** The command's id: sent again with the same id (`controlId`), it is applied once. */
  controlId: string;
}

// How long a command waits to be applied before its sender is told it is recorded.
const defaultApplyWithinMs = 3_000;

/**
 * Records the command in the session's command stream, then waits for its host to say what came of
 * it. The stream's message id is the command id, so a command sent twice is recorded once; the host
 * keeps the ids it applied in the session's checkpoint, so it is applied once. Without JetStream, the
 * command is asked of the host directly, as before.
 */
async function sendControl(nc: NatsConnection, sessionId: string, message: SessionControl, options: ControlOptions): Promise<ControlResult> {
  const names = wireNames(options.namespace);
  const controlId = options.controlId ?? randomUUID();
  const subject = names.subjects.sessionControls(sessionId);
  const body = new TextEncoder().encode(encodeWireMessage(message));
  // Listening before recording: a host may apply it at once.
  const outcome = controlOutcome(nc, names.subjects.sessionEvents(sessionId), controlId, options.applyWithinMs ?? defaultApplyWithinMs);
  try {
    await jetstream(nc).publish(subject, body, { msgID: controlId, timeout: 5_000, ...(options.signer ? { headers: signControl(options.signer, subject, body) } : {}) });
  } catch (error) {
    outcome.cancel();
    if (!isNoResponders(error) && !/no stream|not enabled/i.test(String(error))) throw error;
    return { ...(await askHost(nc, names, sessionId, message, options)), controlId };
  }
  const applied = await outcome.event;
  if (applied) {
    return applied.accepted
      ? { status: 'applied', accepted: true, controlId }
      : { status: 'refused', accepted: false, controlId, ...(applied.reason !== undefined ? { reason: applied.reason } : {}) };
  }
  // Not applied in time: the session has ended, never existed, or waits for an orchestrator to take it over.
  const last = await lastStoredSessionEvent(nc, names, sessionId);
  if (last === 'none') return { status: 'refused', accepted: false, reason: `There is no session ${sessionId}.`, controlId };
  if (last?.type === 'session.finished' && last.status !== 'escalated') return { status: 'refused', accepted: false, reason: 'the session has ended', controlId };
  return { status: 'recorded', accepted: true, reason: 'recorded: no orchestrator hosts the session right now; the one that resumes it applies this first', controlId };
}

/** Resolves with the `control.applied` event of `controlId`, or undefined after `withinMs`. */
function controlOutcome(nc: NatsConnection, eventsSubject: string, controlId: string, withinMs: number): { event: Promise<Extract<SessionEvent, { type: 'control.applied' }> | undefined>; cancel(): void } {
  let settle!: (event: Extract<SessionEvent, { type: 'control.applied' }> | undefined) => void;
  const event = new Promise<Extract<SessionEvent, { type: 'control.applied' }> | undefined>((resolve) => (settle = resolve));
  const subscription = nc.subscribe(eventsSubject, {
    callback: (error, msg) => {
      if (error) return;
      const applied = decodeSessionEvents(msg.data, 'A session event').events.find((event) => event.type === 'control.applied' && event.controlId === controlId);
      if (applied?.type === 'control.applied') done(applied);
    },
  });
  const timer = setTimeout(() => done(undefined), withinMs);
  const done = (found: Extract<SessionEvent, { type: 'control.applied' }> | undefined) => {
    clearTimeout(timer);
    subscription.unsubscribe();
    settle(found);
  };
  return { event, cancel: () => done(undefined) };
}

/** Without JetStream: the command asked of the session's host directly, answered at once. */
async function askHost(nc: NatsConnection, names: WireNames, sessionId: string, message: SessionControl, options: ControlOptions): Promise<Omit<ControlResult, 'controlId'>> {
  const subject = names.subjects.sessionControl(sessionId);
  const body = new TextEncoder().encode(encodeWireMessage(message));
  let msg;
  try {
    msg = await nc.request(subject, body, { timeout: 5_000, ...(options.signer ? { headers: signControl(options.signer, subject, body) } : {}) });
  } catch (error) {
    if (isNoResponders(error)) return { status: 'refused', accepted: false, reason: `No orchestrator hosts session ${sessionId}.` };
    throw error;
  }
  const decoded = decodeWireMessage(SessionControlReply, msg.data, 'The control reply');
  if (!decoded.ok) return { status: 'refused', accepted: false, reason: decoded.error };
  const { accepted, reason } = decoded.value;
  return { status: accepted ? 'applied' : 'refused', accepted, ...(reason !== undefined ? { reason } : {}) };
}

/**
 * Answers a session that was escalated to a person: the answer goes to the model and the loop
 * resumes on the orchestrator that hosts it. Resolves with whether it was accepted, and why not.
 */
export async function answerSession(nc: NatsConnection, sessionId: string, answer: string, options: ControlOptions = {}): Promise<ControlResult> {
  return await sendControl(nc, sessionId, { type: 'session.answer', answer, ...sender(options) }, options);
}

/** Approves calls waiting for approval (the listed call ids, or all of them). */
export async function approveSession(nc: NatsConnection, sessionId: string, options: { by?: string; callIds?: string[] } & ControlOptions = {}): Promise<ControlResult> {
  return await sendControl(nc, sessionId, { type: 'session.approve', by: options.by ?? 'a person', ...(options.callIds ? { callIds: options.callIds } : {}) }, options);
}

/** Denies calls waiting for approval; the model is told, with the reason. */
export async function denySession(nc: NatsConnection, sessionId: string, options: { by?: string; reason?: string; callIds?: string[] } & ControlOptions = {}): Promise<ControlResult> {
  return await sendControl(nc, sessionId, {
    type: 'session.deny', by: options.by ?? 'a person', reason: options.reason ?? 'denied', ...(options.callIds ? { callIds: options.callIds } : {}),
  }, options);
}

/** Pauses a session at its next safe point (before its next model call). */
export async function interruptSession(nc: NatsConnection, sessionId: string, options: ControlOptions = {}): Promise<ControlResult> {
  return await sendControl(nc, sessionId, { type: 'session.interrupt', ...sender(options) }, options);
}

/** Gives a session a new instruction; it reaches the model before its next call, and resumes an interrupted session. */
export async function redirectSession(nc: NatsConnection, sessionId: string, instruction: string, options: ControlOptions = {}): Promise<ControlResult> {
  return await sendControl(nc, sessionId, { type: 'session.redirect', instruction, ...sender(options) }, options);
}

/** Undoes a paused session's executed calls after `toTurn`, newest first; the report arrives as a `session.rolled_back` event. */
export async function rollbackSession(nc: NatsConnection, sessionId: string, options: { toTurn: number; by?: string } & ControlOptions): Promise<ControlResult> {
  return await sendControl(nc, sessionId, { type: 'session.rollback', toTurn: options.toTurn, by: options.by ?? 'a person' }, options);
}

/** Takes an escalated session over: the model waits while the person calls tools through it. */
export async function takeOverSession(nc: NatsConnection, sessionId: string, by = 'a person', options: ControlOptions = {}): Promise<ControlResult> {
  return await sendControl(nc, sessionId, { type: 'session.takeover', by }, options);
}

/** A tool call by the person who took the session over; its events and ledger entry follow like the model's. */
export async function callToolInSession(
  nc: NatsConnection, sessionId: string, tool: string, args: Record<string, unknown>, options: ControlOptions = {},
): Promise<ControlResult> {
  return await sendControl(nc, sessionId, { type: 'session.manual_call', tool, arguments: args }, options);
}

/** Gives a taken-over session back to the model, with what the person did and an optional instruction. */
export async function handBackSession(nc: NatsConnection, sessionId: string, instruction?: string, options: ControlOptions = {}): Promise<ControlResult> {
  return await sendControl(nc, sessionId, { type: 'session.handback', ...(instruction ? { instruction } : {}) }, options);
}

/** Resumes an interrupted session as it was. */
export async function continueSession(nc: NatsConnection, sessionId: string, options: ControlOptions = {}): Promise<ControlResult> {
  return await sendControl(nc, sessionId, { type: 'session.continue', ...sender(options) }, options);
}

/** Cancels a running or parked session by id, from any process. */
export async function cancelSession(nc: NatsConnection, sessionId: string, reason = 'cancelled by the client', options: ControlOptions = {}): Promise<ControlResult> {
  return await sendControl(nc, sessionId, { type: 'session.cancel', reason, ...sender(options) }, options);
}

const sender = (options: ControlOptions) => (options.by ? { by: options.by } : {});
