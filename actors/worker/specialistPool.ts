import type { Logger } from 'pino';
import * as z from 'zod';
import { agentDescription, delegateToolName, specialistNamePattern, type AgentDefinition } from '../../agents/defineAgent.ts';
import { acceptDelegation, delegatedBudgets, type DelegatedSpending } from '../../machines/delegation.ts';
import { maxTimerDelayMs } from '../../machines/timerDelay.ts';
import { Usage } from '../../machines/usage.ts';
import { silentLogger } from '../../observability/logger.ts';
import { defineTool, type ToolContext, type ToolDefinition } from '../../tools/defineTool.ts';
import { ToolError, ToolFailureCode } from '../../tools/toolFailure.ts';
import type { SessionFinished } from '../../transport/messages.ts';
import { hostSession } from '../session/sessionHost.ts';
import type { HostedSession } from '../session/hostedSession.ts';
import { openSessionRuntime, type SessionRuntimeOptions } from '../session/sessionRuntime.ts';
import { startWorker, WorkerConfigurationError, type ToolWorker } from './toolWorker.ts';

/** What the delegating model writes: the task, self-contained, and the facts it needs. */
export const DelegatedTask = z.object({
  task: z.string().trim().min(1, 'the task is empty').describe('What the specialist should do. It sees nothing of your conversation: say everything it needs.'),
  context: z.string().optional().describe('Facts from your conversation the specialist needs (figures, names, constraints).'),
});
export type DelegatedTask = z.infer<typeof DelegatedTask>;

/** What the delegating model gets back when the specialist answers. */
export const SpecialistAnswer = z.object({
  agent: z.string(),
  status: z.literal('completed'),
  answer: z.string(),
  /** The specialist's own session: `troupe sessions show` and its trace tell the details. */
  sessionId: z.string(),
  steps: z.number().int().nonnegative(),
  toolCalls: z.number().int().nonnegative(),
  usage: Usage,
});
export type SpecialistAnswer = z.infer<typeof SpecialistAnswer>;

// The delegating call waits this much longer than the specialist's own wall-clock budget, so a
// specialist stopped by that budget still gets its partial answer back before the call times out.
const answerMarginMs = 5_000;

export interface SpecialistPoolOptions extends SessionRuntimeOptions {
  agent: AgentDefinition;
  logger?: Logger;
}

/** One member of a specialist's pool. */
export interface SpecialistPool {
  readonly agent: string;
  readonly instanceId: string;
  /** Specialist sessions running here. */
  sessions(): ReadonlyMap<string, HostedSession>;
  /**
   * Stops taking tasks, gives running sessions `graceMs` to answer, then cancels the rest (their
   * delegating sessions get a structured failure). Does not close the NATS connection.
   */
  stop(options?: { graceMs?: number }): Promise<void>;
}

const spendingOf = (finished: SessionFinished): DelegatedSpending => ({ usage: finished.usage, steps: finished.steps, toolCalls: finished.toolCalls });

/** The structured failure the delegating model reads when the specialist ends without an answer. */
function specialistFailure(agent: string, finished: SessionFinished, capped: string[]): ToolError {
  const why =
    finished.status === 'budget_exhausted'
      ? `it ran out of its ${finished.budget} budget${finished.budget && capped.includes(finished.budget) ? ', capped at what your session had left' : ''}`
      : finished.status === 'escalated'
        ? `it got stuck and would have needed a person (${finished.stopReason})`
        : finished.status === 'cancelled'
          ? `it was cancelled (${finished.stopReason})`
          : `it failed (${finished.error ?? finished.stopReason})`;
  return new ToolError(
    ToolFailureCode.SPECIALIST_FAILED,
    `Specialist ${agent} stopped without an answer: ${why}.${finished.output ? ' Its partial answer is in details.partialAnswer.' : ''} Decide whether to retry with a narrower task, do the work yourself, or report what is missing.`,
    {
      retryable: false,
      details: {
        agent,
        status: finished.status,
        stopReason: finished.stopReason,
        ...(finished.budget ? { budget: finished.budget, cappedByParent: capped.includes(finished.budget) } : {}),
        ...(finished.error ? { error: finished.error } : {}),
        partialAnswer: finished.output,
        sessionId: finished.sessionId,
        steps: finished.steps,
        toolCalls: finished.toolCalls,
      },
    },
  );
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
  const runtime = await openSessionRuntime(options, logger);
  const sessions = new Map<string, HostedSession>();

  const delegate = async (input: DelegatedTask, call: ToolContext): Promise<SpecialistAnswer> => {
    // Refused before any session starts: without a valid delegation nothing bounds what it would spend.
    const accepted = acceptDelegation(call.delegation, call.sessionId);
    if (!accepted.ok) {
      call.logger.warn({ code: accepted.failure.code, reason: accepted.failure.message }, 'refused a delegation');
      throw new ToolError(accepted.failure.code, accepted.failure.message, { retryable: accepted.failure.retryable });
    }
    const { delegation } = accepted;
    const sessionId = delegation.sessionId;
    if (sessions.has(sessionId)) throw new ToolError(ToolFailureCode.UNAVAILABLE, `This delegation (${sessionId}) is already running.`, { retryable: false });
    const now = Date.now();
    const allowance = delegatedBudgets(agent.budgets, delegation.limits, call.deadline - answerMarginMs, now);
    if (!allowance) {
      throw new ToolError(ToolFailureCode.TIMEOUT, `The call leaves ${agent.name} no time to work: its deadline is less than ${answerMarginMs} ms away. No session was started.`, { retryable: false });
    }
    const { budgets, capped } = allowance;
    const task = input.context ? `${input.task}\n\nContext from the delegating agent:\n${input.context}` : input.task;
    const session = hostSession(runtime.hosting, {
      kind: 'new', sessionId, task, agent: { ...agent, budgets }, parent: call.trace,
      depth: delegation.depth,
      parentSessionId: delegation.parentSessionId,
      ...(delegation.tenant ? { tenant: delegation.tenant } : {}),
      ...(delegation.user ? { user: delegation.user } : {}),
      delegationDepthLeft: Math.min(agent.maxDelegationDepth, delegation.depthLeft),
    });
    sessions.set(sessionId, session);
    call.logger.info({ specialistSessionId: sessionId, depth: delegation.depth, budgets, capped }, `delegated task taken by ${agent.name}`);
    const cancel = () => session.cancel('the delegating session stopped waiting (cancelled or past its deadline)');
    call.signal.addEventListener('abort', cancel, { once: true });
    try {
      const finished = await session.finished;
      // Nobody watches a specialist's session: one that would wait for a person goes back to the delegating agent instead.
      if (finished.status === 'escalated') session.cancel('escalation returned to the delegating agent');
      await session.ended;
      call.reportSpending(spendingOf(finished));
      if (finished.status !== 'completed') throw specialistFailure(agent.name, finished, capped);
      return {
        agent: agent.name, status: 'completed', answer: finished.output ?? '', sessionId,
        steps: finished.steps, toolCalls: finished.toolCalls, usage: finished.usage,
      };
    } finally {
      call.signal.removeEventListener('abort', cancel);
      sessions.delete(sessionId);
    }
  };

  const tool: ToolDefinition = defineTool({
    name: delegateToolName(agent.name),
    description: `Delegate a task to the ${agent.name} specialist: ${agentDescription(agent)} It works on its own with its own tools and answers in text.`,
    input: DelegatedTask,
    output: SpecialistAnswer,
    handler: delegate,
    // The margin must not push it past what a timer can wait (the session's own clock is bounded already).
    timeoutMs: Math.min(agent.budgets.maxWallClockMs + answerMarginMs, maxTimerDelayMs),
    // A delegation is a whole session: never re-run behind the delegating model's back.
    retry: { maxAttempts: 1 },
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
  logger.info({ tools: agent.tools ?? 'all', model: agent.model ?? options.defaultModel }, `specialist ${agent.name} serving ${tool.name}`);

  return {
    agent: agent.name,
    instanceId: worker.instanceId,
    sessions: () => sessions,
    async stop({ graceMs = 10_000 } = {}) {
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      const drained = worker.stop();
      await Promise.race([drained, grace]);
      clearTimeout(timer);
      for (const session of sessions.values()) session.cancel('the specialist pool member is shutting down');
      await drained;
      await runtime.stop();
      logger.info('specialist stopped');
    },
  };
}
