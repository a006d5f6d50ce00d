import type { Context, Tracer } from '@opentelemetry/api';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { ChatCompletionFunctionTool } from 'openai/resources/chat/completions';
import type { Logger } from 'pino';
import { createActor, type Actor, type InspectionEvent } from 'xstate';
import { agentAllowsTool, type AgentDefinition } from '../agents/defineAgent.ts';
import type { RecoveryNotice } from '../machines/recovery.ts';
import { sessionMachine, sessionResultOf, type SessionMachine } from '../machines/session.ts';
import { wallClockDeadline } from '../machines/sessionContext.ts';
import type { SessionResult } from '../machines/sessionOutcome.ts';
import { SessionControl, type SessionControlReply, type SessionFinished } from '../transport/messages.ts';
import { subjects } from '../transport/subjects.ts';
import { decodeWireMessage, encodeWireMessage } from '../transport/wireMessage.ts';
import { createModelCaller, type ModelEndpoint } from './modelCall.ts';
import { SessionEventPublisher } from './sessionEvents.ts';
import { SessionTrace } from './sessionTrace.ts';
import type { ResultShapingLimits } from '../tools/resultShaping.ts';
import type { CircuitBreakers } from './circuitBreakers.ts';
import type { ResultStore } from './resultStore.ts';
import type { CatalogTool, ToolCatalog } from './toolCatalog.ts';
import { createToolCallTriage } from './toolCallTriage.ts';
import { createToolDispatcher } from './toolDispatch.ts';

export interface SessionHostDependencies {
  nats: NatsConnection;
  catalog: ToolCatalog;
  breakers: CircuitBreakers;
  largeResults: ResultShapingLimits;
  results?: ResultStore;
  endpoint: ModelEndpoint;
  defaultModel: string;
  tracer: Tracer;
  logger: Logger;
  /** Sees every actor event of the session (XState inspection), e.g. for the Stately inspector. */
  inspect?: (event: InspectionEvent) => void;
}

export interface SessionRequest {
  sessionId: string;
  task: string;
  agent: AgentDefinition;
  /** The trace context the start request carried: the session span becomes its child. */
  parent: Context;
}

/** A session running in this process. */
export interface HostedSession {
  readonly sessionId: string;
  readonly traceId: string;
  readonly actor: Actor<SessionMachine>;
  /**
   * Resolves with the first `session.finished` event: a final state, or `escalated` (the session is
   * then parked, waiting for a person, and may go on). Never rejects.
   */
  readonly finished: Promise<SessionFinished>;
  /** Resolves when the session reaches a final state and its actor has stopped. */
  readonly ended: Promise<void>;
  cancel(reason: string): void;
}

function toFunctionTool(tool: CatalogTool): ChatCompletionFunctionTool {
  return { type: 'function', function: { name: tool.name, description: tool.description, parameters: tool.inputSchema } };
}

/**
 * Runs one session: the session statechart with its model and tool-call actors bound to this
 * process's NATS connection, catalog and model endpoint; its spans, its event stream and its
 * control subject (cancel). Cleans up after itself when the session ends.
 */
export function hostSession(deps: SessionHostDependencies, request: SessionRequest): HostedSession {
  const { sessionId, agent } = request;
  const logger = deps.logger.child({ sessionId, agent: agent.name });
  const model = agent.model ?? deps.defaultModel;
  const events = new SessionEventPublisher(deps.nats, sessionId, logger);
  const sessionTrace = new SessionTrace(deps.tracer, request.parent, { sessionId, agentName: agent.name, model });
  const allows = (tool: CatalogTool) => agentAllowsTool(agent, tool.name);
  const shared = { trace: sessionTrace, events, tracer: deps.tracer, logger };
  const startedAt = Date.now();

  const machine = sessionMachine.provide({
    actors: {
      callModel: createModelCaller({
        ...shared,
        retry: agent.modelRetry,
        endpoint: deps.endpoint,
        tools: () => deps.catalog.list().filter(allows).map(toFunctionTool),
        usageSoFar: () => actor.getSnapshot().context.usage,
      }),
      triageToolCalls: createToolCallTriage({ catalog: deps.catalog, allows, events }),
      executeToolCall: createToolDispatcher({
        ...shared, nats: deps.nats, catalog: deps.catalog, breakers: deps.breakers, largeResults: deps.largeResults,
        ...(deps.results ? { results: deps.results } : {}), ...(deps.inspect ? { inspect: deps.inspect } : {}),
      }),
    },
  });
  const actor: Actor<SessionMachine> = createActor(machine, {
    id: sessionId,
    input: {
      sessionId, agentName: agent.name, model, instructions: agent.instructions, task: request.task,
      budgets: agent.budgets, recovery: agent.recovery, fallbackModels: agent.fallbackModels, startedAt,
    },
    ...(deps.inspect ? { inspect: deps.inspect } : {}),
  });

  const control: Subscription = deps.nats.subscribe(subjects.sessionControl(sessionId), {
    callback: (_error, msg) => {
      const decoded = decodeWireMessage(SessionControl, msg.data, 'The control message');
      let reply: SessionControlReply;
      if (!decoded.ok) reply = { type: 'session.control.ack', accepted: false, reason: decoded.error };
      else if (actor.getSnapshot().status !== 'active') reply = { type: 'session.control.ack', accepted: false, reason: 'the session has ended' };
      else if (decoded.value.type === 'session.cancel') {
        logger.info({ reason: decoded.value.reason }, 'session cancelled');
        actor.send({ type: 'session.cancel', reason: decoded.value.reason });
        reply = { type: 'session.control.ack', accepted: true };
      } else if (!actor.getSnapshot().matches('escalated')) {
        reply = { type: 'session.control.ack', accepted: false, reason: 'the session is not waiting for an answer' };
      } else {
        logger.info('a person answered the escalated session; resuming');
        sessionTrace.resume();
        actor.send({ type: 'session.answer', answer: decoded.value.answer });
        reply = { type: 'session.control.ack', accepted: true };
      }
      msg.respond(encodeWireMessage(reply));
    },
  });

  let announcedTurn = 0;
  let noticesPublished = 0;
  let parked = false;
  const publishNotice = (notice: RecoveryNotice) => {
    switch (notice.kind) {
      case 'repair':
        events.publish({ type: 'session.repair', turn: notice.turn, reason: notice.reason, consecutive: notice.consecutive });
        sessionTrace.addEvent('session.repair', { reason: notice.reason, consecutive: notice.consecutive });
        logger.info({ turn: notice.turn, reason: notice.reason, consecutive: notice.consecutive }, 'asking the model to repair its output');
        break;
      case 'model_switched':
        events.publish({ type: 'session.model_switched', turn: notice.turn, from: notice.from, to: notice.to, reason: notice.reason });
        sessionTrace.addEvent('session.model_switched', { from: notice.from, to: notice.to });
        logger.warn({ from: notice.from, to: notice.to, reason: notice.reason }, 'switching to the fallback model');
        break;
      case 'loop_detected':
        events.publish({ type: 'loop.detected', turn: notice.turn, action: notice.action, description: notice.description, evidence: notice.evidence });
        sessionTrace.addEvent('loop.detected', { action: notice.action, 'troupe.loop.kind': notice.evidence.kind });
        logger.warn({ action: notice.action, evidence: notice.evidence }, `loop detected: ${notice.description}`);
        break;
    }
  };
  let resolveEnded!: () => void;
  const ended = new Promise<void>((resolve) => (resolveEnded = resolve));
  const finished = new Promise<SessionFinished>((resolve) => {
    const finish = (result: SessionResult, final: boolean) => {
      if (final) control.unsubscribe();
      sessionTrace.end(result);
      const { outcome } = result;
      const event = events.publish({
        type: 'session.finished',
        status: outcome.status,
        output: outcome.output,
        stopReason: outcome.stopReason,
        ...(outcome.status === 'budget_exhausted' ? { budget: outcome.budget } : {}),
        ...(outcome.status === 'failed' ? { error: outcome.error } : {}),
        steps: result.steps,
        toolCalls: result.toolCalls,
        usage: result.usage,
        traceId: sessionTrace.traceId,
        durationMs: Date.now() - startedAt,
      }) as SessionFinished;
      logger.info({ status: outcome.status, stopReason: outcome.stopReason, steps: result.steps, usage: result.usage }, final ? 'session finished' : 'session parked, waiting for a person');
      resolve(event);
      if (final) resolveEnded();
    };
    actor.subscribe({
      next: (snapshot) => {
        for (; noticesPublished < snapshot.context.notices.length; noticesPublished++) {
          publishNotice(snapshot.context.notices[noticesPublished] as RecoveryNotice);
        }
        if (snapshot.matches('calling_model') && snapshot.context.turn !== announcedTurn) {
          announcedTurn = snapshot.context.turn;
          events.publish({ type: 'turn.started', turn: announcedTurn });
        }
        if (snapshot.matches('escalated') && !parked) finish(sessionResultOf(snapshot.context), false);
        parked = snapshot.matches('escalated');
      },
      complete: () => finish(actor.getSnapshot().output as SessionResult, true),
      error: (error) => {
        // The machine handles every actor failure itself; reaching here is a bug, still reported as an outcome.
        logger.error({ err: error }, 'session actor crashed');
        const snapshot = actor.getSnapshot();
        finish({
          outcome: { status: 'failed', stopReason: 'internal error', error: String(error), output: null },
          steps: snapshot.context.turn, toolCalls: snapshot.context.toolCalls, usage: snapshot.context.usage, ledger: snapshot.context.ledger,
        }, true);
      },
    });
  });

  events.publish({ type: 'session.started', agent: agent.name, model, task: request.task, traceId: sessionTrace.traceId });
  logger.info({ model, traceId: sessionTrace.traceId }, 'session started');
  actor.start();
  // The wall-clock budget is a stored deadline; the timer is this process's, re-armed by whoever hosts the session.
  const deadlineTimer = setTimeout(() => actor.send({ type: 'session.deadline_reached' }), Math.max(0, wallClockDeadline(actor.getSnapshot().context) - Date.now()));
  deadlineTimer.unref();
  void ended.then(() => clearTimeout(deadlineTimer));

  return {
    sessionId,
    traceId: sessionTrace.traceId,
    actor,
    finished,
    ended,
    cancel: (reason) => actor.send({ type: 'session.cancel', reason }),
  };
}
