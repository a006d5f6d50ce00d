import type { Logger } from 'pino';
import { agentDescription, delegateToolName, specialistNamePattern, type AgentDefinition } from '../../agents/defineAgent.ts';
import { DelegatedTask, delegationResult, SpecialistAnswer, spendingOf } from '../../agents/specialistAnswer.ts';
import { acceptDelegation, delegatedBudgets } from '../../machines/delegation.ts';
import { maxTimerDelayMs } from '../../machines/timerDelay.ts';
import { silentLogger } from '../../observability/logger.ts';
import { defineTool, type ToolContext, type ToolDefinition } from '../../tools/defineTool.ts';
import { ToolError, ToolFailureCode } from '../../tools/toolFailure.ts';
import type { SessionFinished } from '../../transport/messages.ts';
import { wireNames } from '../../transport/subjects.ts';
import { CheckpointUnreadableError } from '../durability/checkpointStore.ts';
import type { Lease } from '../durability/sessionLeases.ts';
import { startSessionResumer } from '../durability/sessionResumer.ts';
import { openHostDurability, type HostDurability } from '../durability/hostDurability.ts';
import type { Durability, HostedSession } from '../session/hostedSession.ts';
import { publishRefusal, resumedEventSeq } from '../session/sessionEvents.ts';
import { hostSession, resumeSession } from '../session/sessionHost.ts';
import { openSessionRuntime, type SessionRuntimeOptions } from '../session/sessionRuntime.ts';
import { finishedElsewhere } from './specialistSessionEnd.ts';
import { finishedFromCheckpoint, publishStoredEnd } from '../session/storedEnd.ts';
import { startWorker, WorkerConfigurationError, type ToolWorker } from './toolWorker.ts';

// The delegating call waits this much longer than the specialist's own wall-clock budget, so a
// specialist stopped by that budget still gets its partial answer back before the call times out.
const answerMarginMs = 5_000;

export interface SpecialistPoolOptions extends SessionRuntimeOptions {
  agent: AgentDefinition;
  logger?: Logger;
  /**
   * Checkpoint the pool's sessions in its own KV buckets so another member resumes them if this one
   * dies, and a repeated delegation re-attaches instead of starting a second session (needs
   * JetStream); on by default.
   */
  durable?: boolean;
  /** How long a session's lease lasts without renewal when its host keeps no heartbeat; with one (always, here) hand-over follows `heartbeatTtlMs`. */
  leaseTtlMs?: number;
  /** How long this member's heartbeat lasts without renewal (1 s): its sessions move within about this long after it dies. */
  heartbeatTtlMs?: number;
}

/** One member of a specialist's pool. */
export interface SpecialistPool {
  readonly agent: string;
  readonly instanceId: string;
  /** Specialist sessions running here. */
  sessions(): ReadonlyMap<string, HostedSession>;
  /**
   * Stops taking tasks and gives running sessions `graceMs` to answer; then, durable, hands the rest
   * to the pool's other members (their delegating calls re-attach), or else cancels them (their
   * delegating sessions get a structured failure). Does not close the NATS connection.
   */
  stop(options?: { graceMs?: number }): Promise<void>;
}

/**
 * Serves `agent` as a specialist: a NATS service in the `<namespace>-agent-<name>` queue group
 * whose one endpoint is the `delegate_<name>` tool other agents see. Each call runs the agent's own
 * session statechart here, with its prompt, model and tools (called over NATS on the tool pools), budgets
 * capped by what the delegating session has left, its spans under the delegating call's span and
 * its events relayed into the delegating session's stream. A call without a valid delegation (the
 * calling session's own, with its limits) is refused before any session starts, never run on the
 * specialist's own budgets. Start more processes to scale the pool.
 *
 * Durable (the default with JetStream), a delegation is start-or-attach on its session id (one per
 * delegating call): the member that wins the session's lease runs it and checkpoints it after every
 * step; the same delegation sent again (a retry, a resumed delegating session) attaches to that
 * session or reads its end instead of starting a second one; a member that dies has its sessions
 * resumed by another member, whose answer reaches the delegating session through the specialist's
 * events.
 *
 * @example
 * const pool = await startSpecialistPool({ agent: analystAgent, nats: nc, model, defaultModel: 'gpt-4.1-mini', logger });
 * process.once('SIGTERM', () => void pool.stop().then(() => nc.drain()));
 */
export async function startSpecialistPool(options: SpecialistPoolOptions): Promise<SpecialistPool> {
  const { agent } = options;
  if (!specialistNamePattern.test(agent.name)) {
    throw new WorkerConfigurationError(`Agent "${agent.name}" cannot be served as a specialist: its tool would be ${delegateToolName(agent.name)}, and a specialist's name must be lower-case letters, digits and "_" (no "-").`);
  }
  const logger = (options.logger ?? silentLogger()).child({ component: 'specialist', specialist: agent.name });
  const names = wireNames(options.namespace);
  const runtime = await openSessionRuntime(options, logger);
  const sessions = new Map<string, HostedSession>();
  let hostDurability: HostDurability | undefined;
  if (options.durable !== false) {
    try {
      hostDurability = await openHostDurability(options.nats, names, {
        checkpointsBucket: names.buckets.specialistCheckpoints(agent.name), leasesBucket: names.buckets.specialistLeases(agent.name),
        ...(options.leaseTtlMs ? { leaseTtlMs: options.leaseTtlMs } : {}), ...(options.heartbeatTtlMs ? { heartbeatTtlMs: options.heartbeatTtlMs } : {}),
      }, logger, () => {
        // Taken for dead while it stalled: its sessions are another member's now.
        for (const session of sessions.values()) session.abandon('another member took this one for dead');
      });
    } catch (error) {
      logger.warn({ err: error }, 'JetStream is unavailable: specialist sessions are not checkpointed and do not survive this process');
    }
  }
  const durability: Durability | undefined = hostDurability?.durability;
  const deps = { ...runtime.hosting, ...(durability ? { durability } : {}) };

  const host = (session: HostedSession): HostedSession => {
    sessions.set(session.sessionId, session);
    // Nobody watches a specialist's session: one that would wait for a person goes back to the delegating agent instead.
    void session.finished.then((finished) => finished.status === 'escalated' && session.cancel('escalation returned to the delegating agent'));
    void session.ended.then(() => sessions.delete(session.sessionId));
    return session;
  };
  /** How a session hosted here ended; undefined when it was handed over or lost (it goes on elsewhere). */
  const endOf = async (session: HostedSession): Promise<SessionFinished | undefined> => {
    const finished = await Promise.race([session.finished, session.ended.then(() => undefined)]);
    await session.ended;
    return finished;
  };

  /** Starts the delegated session here, resumes it, or finds where it ran: whatever makes one session per delegation. */
  const startOrAttach = async (input: DelegatedTask, call: ToolContext, delegation: NonNullable<ToolContext['delegation']>, budgets: AgentDefinition['budgets']) => {
    const sessionId = delegation.sessionId;
    const local = sessions.get(sessionId);
    if (local) return { session: local };
    const task = input.context ? `${input.task}\n\nContext from the delegating agent:\n${input.context}` : input.task;
    const fresh = (lease?: Lease, firstEventSeq = 0) => host(hostSession(deps, {
      kind: 'new', sessionId, task, agent, budgets, parent: call.trace,
      depth: delegation.depth,
      parentSessionId: delegation.parentSessionId,
      ...(delegation.tenant ? { tenant: delegation.tenant } : {}),
      ...(delegation.user ? { user: delegation.user } : {}),
      delegationDepthLeft: Math.min(agent.maxDelegationDepth, delegation.depthLeft),
      ...(lease ? { lease } : {}),
      firstEventSeq,
    }));
    if (!durability) return { session: fresh() };
    const lease = await durability.leases.acquire(sessionId, durability.owner);
    if (!lease) {
      call.logger.info({ specialistSessionId: sessionId }, 'delegation already running on another member; waiting for its end');
      return { elsewhere: await finishedElsewhere(options.nats, names, durability.checkpoints, sessionId, call.signal) };
    }
    let stored;
    try {
      stored = await durability.checkpoints.read(sessionId);
    } catch (error) {
      if (error instanceof CheckpointUnreadableError) {
        await durability.leases.end(sessionId);
        throw new ToolError(ToolFailureCode.SPECIALIST_FAILED, `The ${agent.name} session of this delegation cannot be read back: ${error.message}`, { retryable: false });
      }
      // Out of reach for now (JetStream electing a leader): let it go for the retry to take.
      await lease.release().catch(() => undefined);
      throw error;
    }
    if (!stored) {
      // A member that died before storing its first checkpoint may have published events: number past them.
      return { session: fresh(lease, lease.replaced ? await resumedEventSeq(options.nats, names, sessionId, 0) : 0) };
    }
    if (stored.checkpoint.status === 'ended') {
      await durability.leases.end(sessionId);
      return { elsewhere: finishedFromCheckpoint(stored.checkpoint) };
    }
    call.logger.info({ specialistSessionId: sessionId }, 'delegation sent again: resuming its session here from the checkpoint');
    return { session: host(await resumeSession(deps, { kind: 'resume', checkpoint: stored.checkpoint, revision: stored.revision, lease, agent })) };
  };

  const delegate = async (input: DelegatedTask, call: ToolContext): Promise<SpecialistAnswer> => {
    // Refused before any session starts: without a valid delegation nothing bounds what it would spend.
    const accepted = acceptDelegation(call.delegation, call.sessionId);
    if (!accepted.ok) {
      call.logger.warn({ code: accepted.failure.code, reason: accepted.failure.message }, 'refused a delegation');
      throw new ToolError(accepted.failure.code, accepted.failure.message, { retryable: accepted.failure.retryable });
    }
    const { delegation } = accepted;
    const allowance = delegatedBudgets(agent.budgets, delegation.limits, call.deadline - answerMarginMs, Date.now());
    if (!allowance) {
      throw new ToolError(ToolFailureCode.TIMEOUT, `The call leaves ${agent.name} no time to work: its deadline is less than ${answerMarginMs} ms away. No session was started.`, { retryable: false });
    }
    const { budgets, capped } = allowance;
    let found;
    try {
      found = await startOrAttach(input, call, delegation, budgets);
    } catch (error) {
      if (error instanceof ToolError) throw error;
      // The pool's buckets are out of reach (JetStream electing a leader, a server restarting): try again soon.
      call.logger.warn({ err: error }, 'could not start or find the delegated session');
      throw new ToolError(ToolFailureCode.UNAVAILABLE, `The ${agent.name} pool cannot reach its session store right now: ${error instanceof Error ? error.message : String(error)}`, { retryable: true });
    }
    let finished: SessionFinished | undefined;
    if ('elsewhere' in found) {
      finished = found.elsewhere;
    } else {
      const { session } = found;
      call.logger.info({ specialistSessionId: session.sessionId, depth: delegation.depth, budgets, capped }, `delegated task taken by ${agent.name}`);
      const cancel = () => session.cancel('the delegating session stopped waiting (cancelled or past its deadline)');
      call.signal.addEventListener('abort', cancel, { once: true });
      try {
        finished = await endOf(session);
      } finally {
        call.signal.removeEventListener('abort', cancel);
      }
    }
    if (!finished) {
      // Handed to another member (this one is stopping): the delegation, sent again, attaches there.
      throw new ToolError(ToolFailureCode.UNAVAILABLE, `The ${agent.name} session moved to another member of its pool before it ended.`, { retryable: true });
    }
    call.reportSpending(spendingOf(finished));
    const result = delegationResult(agent.name, finished, capped);
    if (!result.ok) throw new ToolError(result.failure.code, result.failure.message, { retryable: result.failure.retryable, ...(result.failure.details ? { details: result.failure.details } : {}) });
    return result.answer;
  };

  const tool: ToolDefinition = defineTool({
    name: delegateToolName(agent.name),
    description: `Delegate a task to the ${agent.name} specialist: ${agentDescription(agent)} It works on its own with its own tools and answers in text.`,
    input: DelegatedTask,
    output: SpecialistAnswer,
    handler: delegate,
    // The margin must not push it past what a timer can wait (the session's own clock is bounded already).
    timeoutMs: Math.min(agent.budgets.maxWallClockMs + answerMarginMs, maxTimerDelayMs),
    // Durable, a retry re-attaches to the delegation's one session (so it may wait out a pool briefly down);
    // without checkpoints it would start a second.
    retry: durability ? { maxAttempts: 6, initialDelayMs: 500, maxDelayMs: 4_000 } : { maxAttempts: 1 },
  }) as unknown as ToolDefinition;
  let worker: ToolWorker;
  try {
    worker = await startWorker({
      domain: 'delegate', tools: [tool], nats: options.nats, logger, specialist: agent.name,
      ...(options.namespace ? { namespace: options.namespace } : {}), ...(options.tracer ? { tracer: options.tracer } : {}),
    });
  } catch (error) {
    await runtime.stop();
    throw error;
  }
  const resumer = durability
    ? startSessionResumer({
        durability,
        logger,
        isHosted: (sessionId) => sessions.has(sessionId),
        resume: async (checkpoint, revision, lease) => void host(await resumeSession(deps, { kind: 'resume', checkpoint, revision, lease, agent })),
        refuse: (sessionId, reason, stopReason) => publishRefusal(options.nats, names, sessionId, reason, logger, stopReason),
        ended: (checkpoint) => publishStoredEnd(options.nats, names, checkpoint, logger),
        // The delegating call waits on this session's end: it is told at once, not at its timeout.
        unstored: 'refuse',
      })
    : undefined;
  // A dead member's sessions are resumed as soon as its heartbeat lapses.
  hostDurability?.watchDeaths(() => void resumer?.scanNow());
  void resumer?.scanNow();
  logger.info({ tools: agent.tools ?? 'all', model: agent.model ?? options.defaultModel, durable: durability !== undefined }, `specialist ${agent.name} serving ${tool.name}`);

  return {
    agent: agent.name,
    instanceId: worker.instanceId,
    sessions: () => sessions,
    async stop({ graceMs = 10_000 } = {}) {
      resumer?.stop();
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      const drained = worker.stop();
      await Promise.race([drained, grace]);
      clearTimeout(timer);
      for (const session of [...sessions.values()]) {
        if (durability) await session.handOver();
        else session.cancel('the specialist pool member is shutting down');
      }
      await drained;
      await hostDurability?.stop();
      await runtime.stop();
      logger.info('specialist stopped');
    },
  };
}
