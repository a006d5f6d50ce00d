import type { Context } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { notDone, type ToolContext, type ToolDefinition } from '../../tools/defineTool.ts';
import { claimHeldReason, ToolError, ToolFailureCode, toolFailure, toToolFailure, type ToolFailure } from '../../tools/toolFailure.ts';
import { validateToolArguments } from '../../tools/validation.ts';
import type { ToolReply, ToolRequest } from '../../transport/messages.ts';
import type { ExecuteDecision, IdempotencyStore, InDoubtDecision, InDoubtEvidence } from '../durability/idempotencyStore.ts';
import { executeToolRequest, type CompensationKeeper } from './handlerExecution.ts';

// How long a side-effecting call whose handler outlived its deadline keeps its claim: retries wait
// for its real outcome this long before giving up with TIMEOUT (and never run it again meanwhile).
const lateHandlerClaimMs = 10 * 60 * 1000;

// How long before its deadline a handler still running has its claim extended (a KV write's worth of time, during an election).
const claimRenewalMarginMs = 1_000;

// A decision lost to a concurrent attempt is taken again; after this many the store is misbehaving.
const maxDecisionRounds = 3;

/** Where in a side-effecting call a worker can be made to die (fault injection), to prove what survives it. */
export type CrashPoint = 'before_handler' | 'after_effect';

export interface OnceOnlyCall {
  store: IdempotencyStore;
  tool: ToolDefinition;
  request: ToolRequest;
  /** This pool member's instance id: the owner written into claims. */
  instanceId: string;
  logger: Logger;
  cancel: AbortSignal;
  trace: Context;
  keepCompensation?: CompensationKeeper;
  /** Makes a reply fit a message, as it will be sent: what is recorded is what a replay sends. */
  fit: (reply: ToolReply) => ToolReply;
  /** Called at each crash point; a fault may kill the process there. */
  reached?: (point: CrashPoint) => void;
  /** Sends the call's progress to its caller. */
  reportProgress?: ToolContext['reportProgress'];
}

const failed = (request: ToolRequest, failure: ToolFailure): ToolReply => ({ type: 'tool.reply', status: 'error', callId: request.callId, failure });

/**
 * Runs a side-effecting call at most once per call id: a recorded outcome is replayed, a live claim
 * is waited on, a claim whose handler started on a worker that died is settled by the tool's
 * `reconcile` or answered `IN_DOUBT` (never run blindly again), and otherwise this worker claims the
 * call, marks it started just before the handler, and records the reply.
 */
export async function executeOnceOnly(call: OnceOnlyCall): Promise<ToolReply> {
  const { store, tool, request, logger } = call;
  const claim = { instanceId: call.instanceId, deadline: request.deadline };
  for (let round = 0; round < maxDecisionRounds; round++) {
    let decision;
    try {
      decision = await store.begin(request.callId, claim);
    } catch (error) {
      logger.error({ err: error }, 'cannot reach the idempotency store; refusing to run a side-effecting call without it');
      return failed(request, toolFailure(ToolFailureCode.UNAVAILABLE, `${tool.name} cannot guarantee it runs only once right now (its outcome store is unreachable).`));
    }
    switch (decision.kind) {
      case 'replay':
        logger.info('replaying the recorded outcome of an earlier attempt; not executing again');
        return decision.reply;
      case 'busy': {
        logger.info({ heldBy: decision.heldBy }, 'another attempt of this call is running; waiting for its outcome');
        // Until the claim lapses, not past: a claim whose owner died is decided again (free, or in doubt) at once.
        const recorded = await store.waitForOutcome(request.callId, Math.min(request.deadline, decision.until));
        if (recorded) return recorded;
        if (decision.until < request.deadline) continue;
        return failed(request, {
          ...toolFailure(ToolFailureCode.TIMEOUT, `An earlier attempt of this ${tool.name} call is still running.`),
          details: { reason: claimHeldReason, heldBy: decision.heldBy },
        });
      }
      case 'in_doubt': {
        const settled = await settleInDoubt(call, decision);
        if (settled === 'raced') continue;
        if (settled.kind !== 'execute') return settled.reply;
        return await run(call, settled);
      }
      case 'execute':
        return await run(call, decision);
    }
  }
  return failed(request, toolFailure(ToolFailureCode.UNAVAILABLE, `${tool.name} could not settle who runs this call: its record kept changing. Try again.`));
}

async function run(call: OnceOnlyCall, decision: ExecuteDecision): Promise<ToolReply> {
  const { tool, request, logger } = call;
  let renewal: NodeJS.Timeout | undefined;
  const execution = await executeToolRequest(tool, request, logger, {
    cancel: call.cancel, trace: call.trace, fencingToken: decision.fencingToken,
    ...(call.keepCompensation ? { keepCompensation: call.keepCompensation } : {}),
    ...(call.reportProgress ? { reportProgress: call.reportProgress } : {}),
    beforeHandler: async () => {
      call.reached?.('before_handler');
      try {
        await decision.start();
      } catch (error) {
        logger.error({ err: error }, 'could not mark the call started; not running it');
        throw new ToolError(ToolFailureCode.UNAVAILABLE, `${tool.name} could not record that it is starting, so it did not start. Try again.`, { cause: error });
      }
      // A started claim past its deadline is put in doubt by the next attempt, which may run the call again
      // if the effect is not there yet: a handler still running near its deadline keeps its claim first.
      if (Date.now() < request.deadline) {
        renewal = setTimeout(() => void decision.extend(Date.now() + lateHandlerClaimMs), Math.max(0, request.deadline - Date.now() - claimRenewalMarginMs));
        renewal.unref();
      }
    },
  });
  clearTimeout(renewal);
  const reply = call.fit(execution.reply);
  const { stillRunning } = execution;
  if (stillRunning) {
    // The handler outlived its deadline and may still change something: retries must wait for it,
    // never run it again. The claim is kept, and what the handler really did is recorded when it ends.
    await decision.extend(Date.now() + lateHandlerClaimMs);
    void stillRunning.then((late) => settle(decision, call.fit(late)));
    return reply;
  }
  call.reached?.('after_effect');
  await settle(decision, reply);
  return reply;
}

/** A retryable failure is not the call's outcome (the handler did not run, or changed nothing): the claim is released so a retry may run it. */
async function settle(decision: ExecuteDecision, reply: ToolReply): Promise<void> {
  if (reply.status === 'error' && reply.failure.retryable) await decision.release();
  else await decision.commit(reply);
}

type Settlement = { kind: 'answered'; reply: ToolReply } | ExecuteDecision | 'raced';

/** Asks the tool whether the in-doubt call took effect; without an answer, the call stays in doubt. */
async function settleInDoubt(call: OnceOnlyCall, decision: InDoubtDecision): Promise<Settlement> {
  const { tool, request, logger } = call;
  const inDoubt = (why: string): Settlement => ({ kind: 'answered', reply: failed(request, inDoubtFailure(tool.name, request, decision.evidence, why)) });
  if (!tool.reconcile) return inDoubt('the tool has no reconcile to look the effect up');
  const validated = validateToolArguments(tool.name, tool.input, request.arguments);
  if (!validated.ok) return { kind: 'answered', reply: failed(request, validated.failure) };
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error('deadline passed')), Math.max(0, request.deadline - Date.now()));
  let found: unknown;
  try {
    const context: ToolContext = {
      signal: abort.signal, callId: request.callId, sessionId: request.sessionId, deadline: request.deadline, logger, trace: call.trace,
      fencingToken: decision.evidence.fencingToken, reportSpending: () => {},
    };
    found = await tool.reconcile(validated.value, context);
  } catch (error) {
    logger.warn({ err: error }, 'reconcile failed; the call stays in doubt');
    return inDoubt(`reconcile failed: ${toToolFailure(error).message}`);
  } finally {
    clearTimeout(timer);
  }
  if (found === notDone) {
    logger.info('reconcile says the in-doubt call did not take effect; running it');
    return (await decision.takeOver({ instanceId: call.instanceId, deadline: request.deadline })) ?? 'raced';
  }
  const output = tool.output.safeParse(found);
  if (!output.success) {
    logger.error({ issues: output.error.issues }, 'reconcile returned a result that breaks the output schema');
    return inDoubt('reconcile returned a result that does not match the tool\'s declared output');
  }
  const reply: ToolReply = call.fit({ type: 'tool.reply', status: 'ok', callId: request.callId, result: output.data });
  logger.info('reconcile found the in-doubt call took effect; recording its result');
  return (await decision.settle(reply)) ? { kind: 'answered', reply } : 'raced';
}

function inDoubtFailure(tool: string, request: ToolRequest, evidence: InDoubtEvidence, why: string): ToolFailure {
  return {
    code: ToolFailureCode.IN_DOUBT,
    retryable: false,
    message: `An earlier attempt of this ${tool} call started at ${evidence.startedAt} on a worker that stopped before recording what happened, so nobody knows whether it took effect (${why}). It was not run again. Do not repeat it: a person will check and tell you.`,
    details: { callId: request.callId, tool, arguments: request.arguments, ...evidence, reason: why },
  };
}
