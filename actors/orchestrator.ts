import type { Tracer } from '@opentelemetry/api';
import type { Msg, MsgHdrs, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';
import { assistantAgent } from '../agents/assistant.ts';
import type { AgentDefinition } from '../agents/defineAgent.ts';
import { CircuitBreakerSettings, type CircuitBreakerSettings as BreakerSettings } from '../machines/circuitBreaker.ts';
import { silentLogger } from '../observability/logger.ts';
import { troupeTracer } from '../observability/telemetry.ts';
import { SessionStartRequest, type SessionStartReply } from '../transport/messages.ts';
import { startServiceResponder } from '../transport/serviceResponder.ts';
import { queueGroups, subjects } from '../transport/subjects.ts';
import { traceContextOf } from '../transport/traceCarrier.ts';
import { decodeWireMessage, encodeWireMessage } from '../transport/wireMessage.ts';
import type { ModelEndpoint } from './modelCall.ts';
import { noUsage } from '../machines/usage.ts';
import { ensureStreams } from '../transport/streams.ts';
import { takeQueuedStarts } from './queuedStarts.ts';
import { SessionEventPublisher } from './sessionEvents.ts';
import { hostSession, type HostedSession } from './sessionHost.ts';
import { ResultShapingLimits } from '../tools/resultShaping.ts';
import { CircuitBreakers } from './circuitBreakers.ts';
import { ResultStore } from './resultStore.ts';
import { resultsTools } from './resultsTools.ts';
import { startWorker, type ToolWorker } from './toolWorker.ts';
import { ToolCatalog } from './toolCatalog.ts';

export interface OrchestratorOptions {
  nats: NatsConnection;
  model: ModelEndpoint;
  /** The model of agents that name none (`TROUPE_MODEL`). */
  defaultModel: string;
  /** The agents sessions may run; the built-in `assistant` when absent. */
  agents?: AgentDefinition[];
  /** The agent of start requests that name none; the first agent when absent. */
  defaultAgent?: string;
  logger?: Logger;
  tracer?: Tracer;
  inspect?: (event: InspectionEvent) => void;
  /** Discovery interval; pools announcing themselves are seen sooner. */
  discoveryIntervalMs?: number;
  /** When a tool's circuit opens and how long it stays open; shared by all sessions here. */
  circuitBreaker?: Partial<BreakerSettings>;
  /** When a tool result is too large for the model and gets summarised (the full one stays fetchable). */
  largeResults?: Partial<ResultShapingLimits>;
}

export interface Orchestrator {
  readonly catalog: ToolCatalog;
  /** Sessions running in this process. */
  sessions(): ReadonlyMap<string, HostedSession>;
  /**
   * Stops taking sessions, gives running ones `graceMs` to finish, cancels the rest and waits for
   * them to publish their outcome. Does not close the NATS connection.
   */
  stop(options?: { graceMs?: number }): Promise<void>;
}

/**
 * Starts an orchestrator: it discovers tools from the running pools and takes session start
 * requests from the orchestrators' queue group, so any number of orchestrators share the load.
 *
 * @example
 * const nc = await connectToNats({ url, name: 'orchestrator', logger });
 * const orchestrator = await startOrchestrator({
 *   nats: nc,
 *   model: { client: new OpenAI(), providerName: 'openai', prices: defaultPriceTable },
 *   defaultModel: 'gpt-4.1-mini',
 * });
 */
export async function startOrchestrator(options: OrchestratorOptions): Promise<Orchestrator> {
  const logger = (options.logger ?? silentLogger()).child({ component: 'orchestrator' });
  const agents = new Map((options.agents ?? [assistantAgent]).map((a) => [a.name, a]));
  const defaultAgent = options.defaultAgent ?? [...agents.keys()][0];
  if (defaultAgent === undefined || !agents.has(defaultAgent)) {
    throw new Error(`The default agent "${String(defaultAgent)}" is not among the orchestrator's agents (${[...agents.keys()].join(', ')}).`);
  }
  // Streams first: the first session's events must already be captured for replay.
  await ensureStreams(options.nats).catch((error: unknown) => logger.warn({ err: error }, 'JetStream is unavailable: session events are not replayable'));
  const catalog = new ToolCatalog({
    nats: options.nats,
    logger,
    ...(options.discoveryIntervalMs ? { refreshIntervalMs: options.discoveryIntervalMs } : {}),
  });
  await catalog.start();
  const sessions = new Map<string, HostedSession>();
  const breakers = new CircuitBreakers(CircuitBreakerSettings.parse(options.circuitBreaker ?? {}), logger, options.inspect);
  // Large results are kept in JetStream and served back by a built-in `results` pool, so any
  // orchestrator can page through any session's results. Without JetStream, summaries still work.
  let results: ResultStore | undefined;
  let resultsPool: ToolWorker | undefined;
  try {
    results = await ResultStore.open(options.nats);
    resultsPool = await startWorker({ domain: 'results', tools: resultsTools(results), nats: options.nats, logger });
  } catch (error) {
    logger.warn({ err: error }, 'JetStream is unavailable: large tool results will be summarised but not kept for results_fetch');
  }
  const deps = {
    nats: options.nats,
    catalog,
    breakers,
    largeResults: ResultShapingLimits.parse(options.largeResults ?? {}),
    ...(results ? { results } : {}),
    endpoint: options.model,
    defaultModel: options.defaultModel,
    tracer: options.tracer ?? troupeTracer(),
    logger,
    ...(options.inspect ? { inspect: options.inspect } : {}),
  };

  /** Takes a start, however it arrived (a request, or the queue): hosts the session or says why not. */
  const acceptStart = (data: Uint8Array, headers: MsgHdrs | undefined): SessionStartReply => {
    const decoded = decodeWireMessage(SessionStartRequest, data, 'The session start request');
    if (!decoded.ok) {
      logger.warn({ error: decoded.error }, 'refused a malformed session start request');
      return { type: 'session.rejected', sessionId: null, reason: decoded.error };
    }
    const request = decoded.value;
    const agentName = request.agent ?? defaultAgent;
    const agent = agents.get(agentName);
    if (!agent) {
      return { type: 'session.rejected', sessionId: request.sessionId, reason: `There is no agent "${agentName}". Agents: ${[...agents.keys()].join(', ')}.` };
    }
    if (sessions.has(request.sessionId)) {
      return { type: 'session.rejected', sessionId: request.sessionId, reason: `Session ${request.sessionId} is already running.` };
    }
    const session = hostSession(deps, { sessionId: request.sessionId, task: request.task, agent, parent: traceContextOf(headers) });
    sessions.set(session.sessionId, session);
    void session.ended.then(() => sessions.delete(session.sessionId));
    return { type: 'session.accepted', sessionId: session.sessionId, traceId: session.traceId };
  };
  const onStartRequest = (msg: Msg) => msg.respond(encodeWireMessage(acceptStart(msg.data, msg.headers)));

  const startRequests: Subscription = options.nats.subscribe(subjects.sessionStart, {
    queue: queueGroups.orchestrators,
    callback: (error, msg) => {
      if (error) logger.error({ err: error }, 'session start subscription error');
      else onStartRequest(msg);
    },
  });
  // Orchestrators answer the service protocol too, so `nats micro ls` (and `troupe up`) can see them.
  const responder = startServiceResponder(options.nats, {
    name: 'troupe-orchestrator',
    version: '0.1.0',
    description: 'Troupe orchestrator: hosts agent sessions',
    metadata: { 'troupe.kind': 'orchestrator' },
    endpoints: [{ name: 'sessions_start', subject: subjects.sessionStart, queue_group: queueGroups.orchestrators, metadata: null }],
  });
  const queue = await takeQueuedStarts(options.nats, logger, (data, headers) => {
    const reply = acceptStart(data, headers);
    // A queued start has nobody waiting on a reply: a refusal becomes the session's last event instead.
    if (reply.type === 'session.rejected' && reply.sessionId) {
      new SessionEventPublisher(options.nats, reply.sessionId, logger).publish({
        type: 'session.finished', status: 'failed', output: null, stopReason: 'rejected', error: reply.reason,
        steps: 0, toolCalls: 0, usage: noUsage, traceId: '', durationMs: 0,
      });
    }
  });
  await options.nats.flush();
  logger.info({ agents: [...agents.keys()], tools: catalog.list().map((t) => t.name) }, 'orchestrator ready');

  return {
    catalog,
    sessions: () => sessions,
    async stop({ graceMs = 10_000 } = {}) {
      await queue?.close();
      await startRequests.drain();
      const running = [...sessions.values()];
      if (running.length > 0) {
        logger.info({ sessions: running.length, graceMs }, 'waiting for running sessions before stopping');
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
        await Promise.race([Promise.all(running.map((s) => s.ended)), grace]);
        clearTimeout(timer);
        // Parked (escalated) sessions included: without checkpoints (yet) they cannot outlive this process.
        for (const session of sessions.values()) session.cancel('the orchestrator is shutting down');
        await Promise.all(running.map((s) => s.ended));
      }
      await resultsPool?.stop();
      catalog.stop();
      breakers.stop();
      responder.stop();
      logger.info('orchestrator stopped');
    },
  };
}
