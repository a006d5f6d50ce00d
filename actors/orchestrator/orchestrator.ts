import type { Msg, MsgHdrs, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { assistantAgent } from '../../agents/assistant.ts';
import type { AgentDefinition } from '../../agents/defineAgent.ts';
import { tightenBudgets } from '../../machines/budgets.ts';
import { silentLogger } from '../../observability/logger.ts';
import { SessionStartRequest, type SessionStartReply, type StartRefusal } from '../../transport/messages.ts';
import { startServiceResponder } from '../../transport/serviceResponder.ts';
import { ensureStreams } from '../../transport/streams.ts';
import { toolMetadataKeys } from '../../transport/serviceProtocol.ts';
import { wireNames } from '../../transport/subjects.ts';
import { retryWhileElecting } from '../../transport/jetStreamElections.ts';
import { traceContextOf } from '../../transport/traceCarrier.ts';
import { decodeWireMessage, encodeWireMessage } from '../../transport/wireMessage.ts';
import { takeQueuedStarts } from './queuedStarts.ts';
import { publishRefusal, resumedEventSeq } from '../session/sessionEvents.ts';
import { hostSession, resumeSession } from '../session/sessionHost.ts';
import { publishStoredEnd } from '../session/storedEnd.ts';
import type { Durability, HostedSession } from '../session/hostedSession.ts';
import type { Lease } from '../durability/sessionLeases.ts';
import { startSessionResumer } from '../durability/sessionResumer.ts';
import { openHostDurability, type HostDurability } from '../durability/hostDurability.ts';
import { openSessionRuntime, type SessionRuntimeOptions } from '../session/sessionRuntime.ts';
import type { ToolCatalog } from '../toolCalls/toolCatalog.ts';

export interface OrchestratorOptions extends SessionRuntimeOptions {
  /** The agents sessions may run; the built-in `assistant` when absent. */
  agents?: AgentDefinition[];
  /** The agent of start requests that name none; the first agent when absent. */
  defaultAgent?: string;
  logger?: Logger;
  /**
   * How long a session's lease lasts without renewal when its host keeps no heartbeat (6 s): what
   * hand-over waits for then. With heartbeats (always, from `startOrchestrator`) it is `heartbeatTtlMs`.
   */
  leaseTtlMs?: number;
  /**
   * How long this orchestrator's heartbeat lasts without renewal (1 s; `TROUPE_HEARTBEAT_TTL_MS`): its
   * sessions are resumed elsewhere within about this long after it dies. Renewed three times as often.
   */
  heartbeatTtlMs?: number;
  /**
   * How often the resumer lists the leases for sessions whose host is gone without a heartbeat to
   * say so (a lease left by a host that never had one): 5 s. A dead host with a heartbeat is noticed
   * within `heartbeatTtlMs` whatever this is.
   */
  resumeScanMs?: number;
  /** Checkpoint sessions and resume them after a crash (needs JetStream); on by default. */
  durable?: boolean;
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
  const names = wireNames(options.namespace);
  // Streams first: the first session's events must already be captured for replay.
  await retryWhileElecting(() => ensureStreams(options.nats, names), logger, 'the session streams')
    .catch((error: unknown) => logger.warn({ err: error }, 'JetStream is unavailable: session events are not replayable'));
  const runtime = await openSessionRuntime(options, logger);
  const { catalog } = runtime;
  const sessions = new Map<string, HostedSession>();
  let hostDurability: HostDurability | undefined;
  if (options.durable !== false) try {
    hostDurability = await openHostDurability(options.nats, names, {
      ...(options.leaseTtlMs ? { leaseTtlMs: options.leaseTtlMs } : {}), ...(options.heartbeatTtlMs ? { heartbeatTtlMs: options.heartbeatTtlMs } : {}),
    }, logger, () => {
      // Taken for dead while it stalled: its sessions are another orchestrator's now.
      for (const session of sessions.values()) session.abandon('another orchestrator took this one for dead');
    });
  } catch (error) {
    logger.warn({ err: error }, 'JetStream is unavailable: sessions are not checkpointed and do not survive this process');
  }
  const durability: Durability | undefined = hostDurability?.durability;
  const deps = { ...runtime.hosting, ...(durability ? { durability } : {}) };

  /** Takes a start, however it arrived (a request, or the queue): hosts the session or says why not. */
  const host = (session: HostedSession) => {
    sessions.set(session.sessionId, session);
    void session.ended.then(() => sessions.delete(session.sessionId));
  };
  const acceptStart = async (data: Uint8Array, headers: MsgHdrs | undefined): Promise<SessionStartReply> => {
    const decoded = decodeWireMessage(SessionStartRequest, data, 'The session start request');
    if (!decoded.ok) {
      logger.warn({ error: decoded.error }, 'refused a malformed session start request');
      return { type: 'session.rejected', sessionId: null, reason: decoded.error, code: 'invalid' };
    }
    const request = decoded.value;
    const agentName = request.agent ?? defaultAgent;
    const agent = agents.get(agentName);
    if (!agent) {
      return { type: 'session.rejected', sessionId: request.sessionId, reason: `There is no agent "${agentName}". Agents: ${[...agents.keys()].join(', ')}.`, code: 'invalid' };
    }
    const rejected = (code: StartRefusal, reason: string) => ({ type: 'session.rejected' as const, sessionId: request.sessionId, reason, code });
    const budgets = tightenBudgets(agent.budgets, request.budgets ?? {});
    if (!budgets.ok) {
      const asks = budgets.raised.map(({ budget, asked, limit }) => `${budget} ${asked} (its limit is ${limit})`).join(', ');
      return rejected('invalid', `The start asks for more than agent "${agent.name}" allows: ${asks}. A start may only lower its agent's budgets.`);
    }
    const taken = rejected('in_use', `Session id ${request.sessionId} is already in use.`);
    // Held but never stored: an orchestrator is starting it, or died doing so before accepting it.
    const heldBy = async (whom: string) => (!durability || (await durability.checkpoints.read(request.sessionId).catch(() => 'unreadable'))
      ? taken
      : rejected('starting', `Session id ${request.sessionId} is being started by ${whom}, which has not accepted it yet. If it does not, send the same start again in a few seconds (once its lease lapses).`));
    if (sessions.has(request.sessionId)) return await heldBy('this orchestrator');
    let lease: Lease | undefined;
    let firstEventSeq = 0;
    if (durability) {
      // The lease first, then a check that no checkpoint exists: a session id is never reused.
      lease = await durability.leases.acquire(request.sessionId, durability.owner);
      if (!lease) return await heldBy('another orchestrator');
      if (await durability.checkpoints.read(request.sessionId).catch(() => 'unreadable')) {
        await lease.release();
        return taken;
      }
      // An earlier start under this id died unaccepted, perhaps after publishing events: number past them.
      if (lease.replaced) firstEventSeq = await resumedEventSeq(options.nats, names, request.sessionId, 0);
    }
    const session = hostSession(deps, {
      kind: 'new', sessionId: request.sessionId, task: request.task, agent, budgets: budgets.budgets, parent: traceContextOf(headers),
      depth: 0, delegationDepthLeft: agent.maxDelegationDepth, ...(lease ? { lease } : {}), firstEventSeq,
      ...(request.tenant ? { tenant: request.tenant } : {}), ...(request.user ? { user: request.user } : {}),
    });
    host(session);
    // Accepted means durable: a start whose host dies before this has no acceptance, and is sent again.
    const accepted = { type: 'session.accepted' as const, sessionId: session.sessionId, traceId: session.traceId };
    try {
      await session.stored();
      return accepted;
    } catch (error) {
      // It stopped here first: it ended already, was handed over, or was lost. Its last state decides.
      await session.ended;
      if (await durability?.checkpoints.read(session.sessionId).catch(() => undefined)) return accepted;
      logger.warn({ err: error, sessionId: session.sessionId }, 'a session stopped here before its first checkpoint was stored');
      return rejected('not_stored', `The orchestrator could not store the session's first checkpoint: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  const onStartRequest = (msg: Msg) => void acceptStart(msg.data, msg.headers).then(
    (reply) => msg.respond(encodeWireMessage(reply)),
    (error: unknown) => {
      logger.error({ err: error }, 'could not start a session');
      msg.respond(encodeWireMessage({ type: 'session.rejected', sessionId: null, reason: `The orchestrator could not start it: ${String(error)}`, code: 'unavailable' }));
    },
  );
  const refuse = (sessionId: string, reason: string) => publishRefusal(options.nats, names, sessionId, reason, logger);
  const resumer = durability
    ? startSessionResumer({
        durability,
        logger,
        isHosted: (sessionId) => sessions.has(sessionId),
        resume: async (checkpoint, revision, lease) => {
          const agent = agents.get(checkpoint.agent);
          if (!agent) {
            refuse(checkpoint.sessionId, `It ran agent "${checkpoint.agent}", which this orchestrator does not have.`);
            void durability.leases.end(checkpoint.sessionId);
            return;
          }
          host(await resumeSession(deps, { kind: 'resume', checkpoint, revision, lease, agent }));
        },
        refuse,
        ended: (checkpoint) => publishStoredEnd(options.nats, names, checkpoint, logger),
        unstored: 'drop',
        ...(options.resumeScanMs ? { intervalMs: options.resumeScanMs } : {}),
      })
    : undefined;
  // A dead orchestrator's sessions are resumed as soon as its heartbeat lapses, not when each lease would.
  hostDurability?.watchDeaths(() => void resumer?.scanNow());

  const startRequests: Subscription = options.nats.subscribe(names.subjects.sessionStart, {
    queue: names.queueGroups.orchestrators,
    callback: (error, msg) => {
      if (error) logger.error({ err: error }, 'session start subscription error');
      else onStartRequest(msg);
    },
  });
  // Orchestrators answer the service protocol too, so `nats micro ls` (and `troupe up`) can see them.
  const responder = startServiceResponder(options.nats, {
    name: names.services.orchestrator,
    version: '0.1.0',
    description: 'Troupe orchestrator: hosts agent sessions',
    metadata: { [toolMetadataKeys.kind]: 'orchestrator', [toolMetadataKeys.namespace]: names.namespace },
    endpoints: [{ name: 'sessions_start', subject: names.subjects.sessionStart, queue_group: names.queueGroups.orchestrators, metadata: null }],
  });
  const queue = await takeQueuedStarts(options.nats, names, logger, async (data, headers) => {
    const reply = await acceptStart(data, headers);
    if (reply.type === 'session.accepted') return 'taken';
    // Taken again after its acceptance was not acknowledged: the session runs, and its stream must not say otherwise.
    if (reply.code === 'in_use') return 'taken';
    // Another orchestrator holds it unaccepted: it accepts it, or its lease lapses and the next delivery does.
    if (reply.code === 'starting') return 'later';
    // A queued start has nobody waiting on a reply: a refusal becomes the session's last event instead.
    if (reply.sessionId) refuse(reply.sessionId, reply.reason);
    return 'taken';
  });
  void resumer?.scanNow();
  await options.nats.flush();
  logger.info({ agents: [...agents.keys()], tools: catalog.list().map((t) => t.name) }, 'orchestrator ready');

  return {
    catalog,
    sessions: () => sessions,
    async stop({ graceMs = 10_000 } = {}) {
      resumer?.stop();
      // A connection already closed (NATS gone for good) refuses to drain: the sessions are stopped all the same.
      await Promise.resolve().then(() => queue?.close()).catch((error: unknown) => logger.warn({ err: error }, 'could not stop taking queued starts'));
      await Promise.resolve().then(() => startRequests.drain()).catch((error: unknown) => logger.warn({ err: error }, 'could not drain the start requests'));
      const running = [...sessions.values()];
      if (running.length > 0) {
        logger.info({ sessions: running.length, graceMs }, 'waiting for running sessions before stopping');
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
        await Promise.race([Promise.all(running.map((s) => s.ended)), grace]);
        clearTimeout(timer);
        // With durability the rest are handed over (checkpointed, lease released) for another orchestrator
        // to resume; without it, they cannot outlive this process and are cancelled.
        for (const session of [...sessions.values()]) {
          if (durability) await session.handOver();
          else session.cancel('the orchestrator is shutting down');
        }
        await Promise.all(running.map((s) => s.ended));
      }
      await hostDurability?.stop();
      await runtime.stop();
      responder.stop();
      logger.info('orchestrator stopped');
    },
  };
}
