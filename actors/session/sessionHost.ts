import { propagation, ROOT_CONTEXT } from '@opentelemetry/api';
import type { Subscription } from '@nats-io/transport-node';
import { createActor, type Actor, type SnapshotFrom, type StateValue } from 'xstate';
import { agentAllowsTool } from '../../agents/defineAgent.ts';
import type { RecoveryNotice } from '../../machines/recovery.ts';
import { sessionResultOf, type SessionInput, type SessionMachine } from '../../machines/session.ts';
import { hostedSessionMachine, sessionActors, type SessionActors } from './hostedSessionMachine.ts';
import { delegationFor } from '../../machines/delegation.ts';
import { wallClockDeadline } from '../../machines/sessionContext.ts';
import type { SessionResult } from '../../machines/sessionOutcome.ts';
import type { SessionFinished, ToolCallCancellation } from '../../transport/messages.ts';
import { encodeWireMessage } from '../../transport/wireMessage.ts';
import { createModelCaller } from '../model/modelCall.ts';
import { publishRecoveryNotice } from './recoveryNotices.ts';
import { SessionCheckpoints } from '../durability/sessionCheckpoints.ts';
import { announceControl, applyRecordedControl, serveSessionControl, sessionCommandDecider } from './sessionControl.ts';
import { RecordedControlInbox } from './recordedControls.ts';
import { resumedEventSeq, SessionEventPublisher } from './sessionEvents.ts';
import type { Lease } from '../durability/sessionLeases.ts';
import { SessionTrace } from './sessionTrace.ts';
import { pendingExitAsCall, publishPhaseMove } from './phaseMoves.ts';
import { createGuardrailChecker } from './guardrailChecker.ts';
import { telemetryScrubOf } from '../../guardrails/defineGuardrail.ts';
import { guardrailPhasesOf } from '../../machines/workflowValidation.ts';
import { offeredTools } from '../model/offeredTools.ts';
import { activePhasesOf } from '../../machines/workflowMachine.ts';
import type { PhaseMove } from '../../machines/workflowSteps.ts';
import type { CatalogTool } from '../toolCalls/toolCatalog.ts';
import { createToolCallTriage } from '../toolCalls/toolCallTriage.ts';
import { createToolDispatcher } from '../toolCalls/toolDispatch.ts';
import { createUndoDispatcher } from '../toolCalls/undoDispatch.ts';
import { troupeMetrics } from '../../observability/metrics.ts';
import { noUsage } from '../../machines/usage.ts';
import { scopeKey } from '../model/responseCache.ts';
import { TroupeAttribute } from '../../observability/spans.ts';

import type { HostedSession, NewSession, ResumedSession, SessionHostDependencies } from './hostedSession.ts';

/**
 * Runs one session: the session statechart with its model and tool-call actors bound to this
 * process's NATS connection, catalog and model endpoint; its spans, its event stream, its control
 * subject, and (with durability) a checkpoint about once a step under the session's lease.
 * Cleans up after itself when the session ends.
 */
export function hostSession(deps: SessionHostDependencies, start: NewSession | ResumedSession): HostedSession {
  const agent = start.agent;
  const sessionId = start.kind === 'new' ? start.sessionId : start.checkpoint.sessionId;
  const task = start.kind === 'new' ? start.task : start.checkpoint.task;
  const logger = deps.logger.child({ sessionId, agent: agent.name });
  const model = agent.model ?? deps.defaultModel;
  // What the agent's guardrails say must never leave in telemetry is scrubbed from its events and captured spans.
  const scrub = telemetryScrubOf(agent.guardrails);
  const events = new SessionEventPublisher(deps.nats, deps.names, sessionId, logger, start.kind === 'resume' ? start.checkpoint.nextEventSeq : (start.firstEventSeq ?? 0), scrub);
  // A resumed session's spans hang under the first host's session span: one session, one trace.
  const parent = start.kind === 'new' ? start.parent : propagation.extract(ROOT_CONTEXT, start.checkpoint.traceContext);
  const storedContext = start.kind === 'resume' ? (start.checkpoint.snapshot as { context?: { tenant?: string | null; user?: string | null } }).context : undefined;
  const attribution = start.kind === 'new' ? { tenant: start.tenant ?? null, user: start.user ?? null } : { tenant: storedContext?.tenant ?? null, user: storedContext?.user ?? null };
  const depth = start.kind === 'new' ? start.depth : ((start.checkpoint.snapshot as { context?: { depth?: number } }).context?.depth ?? 0);
  const sessionTrace = new SessionTrace(deps.tracer, parent, {
    sessionId, agentName: agent.name, model, depth,
    ...(start.kind === 'new' && start.parentSessionId ? { parentSessionId: start.parentSessionId } : {}),
    ...(attribution.tenant ? { tenant: attribution.tenant } : {}),
    ...(attribution.user ? { user: attribution.user } : {}),
  });
  if (start.kind === 'resume') sessionTrace.addEvent('session.resumed', { owner: deps.durability?.owner ?? 'unknown' });
  // An agent never delegates to itself; deeper circles end at the depth limit.
  const allows = (tool: CatalogTool) => agentAllowsTool(agent, tool.name) && tool.specialist !== agent.name;
  const mayDelegate = () => actor.getSnapshot().context.delegationDepthLeft > 0;
  const offered = (tool: CatalogTool) => allows(tool) && (tool.specialist === null || mayDelegate());
  const shared = { trace: sessionTrace, events, tracer: deps.tracer, logger };

  const actors = (): SessionActors => ({
      callModel: createModelCaller({
        ...shared,
        retry: agent.modelRetry,
        endpoint: deps.endpoint,
        tools: (offer) => offeredTools(deps.catalog.list(), offered, offer),
        usageSoFar: () => actor.getSnapshot().context.usage,
        attribution: { agent: agent.name, tenant: attribution.tenant },
        ...(deps.captureContent ? { captureContent: true } : {}),
        ...(scrub ? { scrub } : {}),
        ...(deps.models ? { models: deps.models } : {}),
        ...(deps.responses && agent.caching.modelRequests
          ? { cache: { store: deps.responses, ttlMs: agent.caching.modelRequests.ttlMs, scope: scopeKey(agent.caching.modelRequests.scope, { sessionId, agent: agent.name }) } }
          : {}),
      }),
      checkGuardrails: createGuardrailChecker({
        ...shared, guardrails: agent.guardrails, endpoint: deps.endpoint,
        phaseScopes: (() => { const workflow = actor.getSnapshot().context.workflow; return workflow ? guardrailPhasesOf(workflow) : new Map(); })(),
      }),
      rollBack: createUndoDispatcher({
        nats: deps.nats, names: deps.names, ledger: () => actor.getSnapshot().context.ledger, events, logger, ...(deps.signer ? { signer: deps.signer } : {}),
      }),
      triageToolCalls: createToolCallTriage({
        catalog: deps.catalog, allows, events, approvalTimeoutMs: deps.approvalTimeoutMs,
        delegationDepth: () => ({ depth: actor.getSnapshot().context.depth, left: actor.getSnapshot().context.delegationDepthLeft }),
        ...(deps.approvalPolicy ? { approvalPolicy: deps.approvalPolicy } : {}),
      }),
      executeToolCall: createToolDispatcher({
        ...shared, nats: deps.nats, names: deps.names, catalog: deps.catalog, breakers: deps.breakers, largeResults: deps.largeResults,
        ...(deps.responses && agent.caching.toolCalls
          ? { cache: { store: deps.responses, ttlMs: agent.caching.toolCalls.ttlMs, scope: scopeKey(agent.caching.toolCalls.scope, { sessionId, agent: agent.name }) } }
          : {}),
        delegationFor: (callId) => delegationFor(actor.getSnapshot().context, callId, (name) => deps.catalog.get(name)?.specialist != null),
        ...(deps.results ? { results: deps.results } : {}), ...(deps.inspect ? { inspect: deps.inspect } : {}),
        ...(deps.alerts ? { alerts: deps.alerts } : {}), ...(deps.captureContent ? { captureContent: true } : {}), ...(scrub ? { scrub } : {}),
        ...(deps.signer ? { signer: deps.signer } : {}),
        ...(deps.progress ? { progress: deps.progress } : {}),
        // Read when a call starts, after the checkpoints below exist.
        ...(deps.durability ? { writeAhead: () => checkpoints?.durable() ?? Promise.resolve() } : {}),
      }),
  });
  const inspect = deps.inspect ? { inspect: deps.inspect } : {};
  const actor: Actor<SessionMachine> =
    start.kind === 'new'
      ? createActor(hostedSessionMachine(agent.workflow ?? null), {
          id: sessionId,
          input: {
            sessionId, agentName: agent.name, model, instructions: agent.instructions, task,
            budgets: start.budgets, recovery: agent.recovery, fallbackModels: agent.fallbackModels, routing: agent.routing ?? null, contextSettings: agent.context,
            depth: start.depth, delegationDepthLeft: start.delegationDepthLeft, tenant: start.tenant ?? null, user: start.user ?? null, startedAt: Date.now(),
            workflow: agent.workflow ?? null,
            guardrailPoints: [...new Set(agent.guardrails.flatMap((guardrail) => guardrail.at))], inputChecks: agent.inputChecks,
          },
          ...inspect,
        })
      // The workflow the session started with, kept in its checkpoint, whatever the agent says now.
      : createActor(hostedSessionMachine((start.checkpoint.snapshot as { context: SessionInput }).context.workflow ?? null), {
          id: sessionId,
          // Validated as a checkpoint; its inner shape is XState's own persisted snapshot, which wins over
          // `input` (required by the types): the session's context is its input and more.
          snapshot: start.checkpoint.snapshot as unknown as SnapshotFrom<SessionMachine>,
          input: (start.checkpoint.snapshot as { context: SessionInput }).context,
          ...inspect,
        });
  sessionActors.attach(actor.system, actors());

  let resolveEnded!: () => void;
  const ended = new Promise<void>((resolve) => (resolveEnded = resolve));
  let lost = false;
  const traceContext: Record<string, string> = {};
  propagation.inject(sessionTrace.sessionContext, traceContext);
  // Open before the session runs: a command recorded from now on waits here until the host applies it.
  const recordedControls = start.kind === 'resume' && start.controls ? start.controls : new RecordedControlInbox(deps.nats, deps.names, sessionId, [], logger);
  const checkpoints =
    deps.durability && (start.kind === 'resume' || start.lease)
      ? new SessionCheckpoints({
          store: deps.durability.checkpoints,
          leases: deps.durability.leases,
          lease: start.kind === 'resume' ? start.lease : (start.lease as Lease),
          owner: deps.durability.owner,
          identity: { sessionId, agent: agent.name, task: scrub ? scrub(task) : task, traceContext: start.kind === 'resume' ? start.checkpoint.traceContext : traceContext },
          ...(start.kind === 'resume' ? { revision: start.revision, ...(start.checkpoint.journal ? { journal: start.checkpoint.journal } : {}) } : {}),
          nextEventSeq: () => events.nextSeq,
          appliedControls: () => recordedControls.applied,
          ...(deps.durability.alive ? { alive: deps.durability.alive } : {}),
          logger,
          onLost: () => {
            // Another orchestrator owns the session now: stop here without a word on its stream.
            lost = true;
            actor.stop();
            control.unsubscribe();
            recordedControls.close();
            resolveEnded();
          },
        })
      : undefined;

  // A cancelled session's calls still running on workers are cancelled there too.
  const cancelOpenToolCalls = (reason: string) => {
    const { context } = actor.getSnapshot();
    const open = context.accepted.filter((c) => context.outcomes[c.callId] === undefined).map((c) => c.callId);
    if (open.length === 0) return;
    const cancellation: ToolCallCancellation = { type: 'tool.cancel', callIds: open, reason };
    deps.nats.publish(deps.names.subjects.toolCallCancellations, encodeWireMessage(cancellation));
    logger.info({ callIds: open }, 'cancelling the tool calls still in flight on the workers');
  };
  const decide = sessionCommandDecider(actor, sessionTrace, events, logger);
  const control: Subscription = serveSessionControl(deps.nats, deps.names, sessionId, decide, logger, deps.operators);
  let announcedTurn = start.kind === 'resume' ? -1 : 0;
  let costSeen = actor.getSnapshot().context.usage.costUsd;
  let delegatedSeen = actor.getSnapshot().context.delegated.usage.costUsd;
  let noticesPublished = start.kind === 'resume' ? actor.getSnapshot().context.notices.length : 0;
  let phaseMovesPublished = start.kind === 'resume' ? (actor.getSnapshot().context.phase?.path.length ?? 0) : 0;
  let parked = false;
  let wasInterrupted = false;
  let armedApproval: number | null = null;
  let approvalTimer: NodeJS.Timeout | undefined;
  void ended.then(() => clearTimeout(approvalTimer));
  const finished = new Promise<SessionFinished>((resolve) => {
    const finish = (result: SessionResult, final: boolean) => {
      try {
        finishOnce(result, final);
      } catch (error) {
        // A fault here must not take the process (and every other session in it) down, nor leave
        // whoever waits on the session waiting, nor its lease renewed forever.
        logger.error({ err: error }, 'could not report the end of the session');
        const { outcome } = result;
        resolve({
          type: 'session.finished', sessionId, seq: events.nextSeq, at: new Date().toISOString(), status: outcome.status, output: outcome.output,
          stopReason: outcome.stopReason, steps: result.steps ?? 0, toolCalls: result.toolCalls ?? 0, usage: result.usage ?? noUsage, traceId: sessionTrace.traceId, durationMs: 0,
        });
        if (final) void (checkpoints?.end() ?? Promise.resolve()).catch(() => undefined).finally(resolveEnded);
      }
    };
    const finishOnce = (result: SessionResult, final: boolean) => {
      if (lost) return;
      // Drained, not dropped: a command already on its way when the session ended still gets its
      // answer ("the session has ended") instead of leaving its sender waiting for a timeout.
      if (final) {
        void control.drain().catch(() => undefined);
        // A command recorded from now on is answered by whoever reads the stream: the session has ended.
        recordedControls.close();
      }
      sessionTrace.end(result);
      const { outcome } = result;
      // The end is what every watcher waits for: kept at until the events stream has it.
      const event = events.publishDurably({
        type: 'session.finished',
        status: outcome.status,
        output: outcome.output,
        stopReason: outcome.stopReason,
        ...(outcome.status === 'budget_exhausted' ? { budget: outcome.budget } : {}),
        ...(outcome.status === 'failed' ? { error: outcome.error } : {}),
        steps: result.steps,
        toolCalls: result.toolCalls,
        usage: result.usage,
        ...(result.delegated.steps > 0 || result.delegated.usage.inputTokens > 0 ? { delegated: result.delegated } : {}),
        ...(result.cache.modelHits + result.cache.toolHits > 0 ? { cache: result.cache } : {}),
        traceId: sessionTrace.traceId,
        durationMs: Date.now() - actor.getSnapshot().context.startedAt,
      }).event as SessionFinished;
      logger.info({ status: outcome.status, stopReason: outcome.stopReason, steps: result.steps, usage: result.usage }, final ? 'session finished' : 'session parked, waiting for a person');
      troupeMetrics().sessions.add(1, { 'gen_ai.agent.name': agent.name, [TroupeAttribute.sessionStatus]: outcome.status, [TroupeAttribute.tenant]: attribution.tenant ?? 'none' });
      if (outcome.status === 'cancelled') cancelOpenToolCalls(outcome.stopReason);
      resolve(event);
      if (final) {
        deps.alerts?.forgetSession(sessionId);
        void (checkpoints?.end() ?? Promise.resolve()).finally(resolveEnded);
      }
    };
    actor.subscribe({
      next: (snapshot) => {
        const spent = snapshot.context.usage.costUsd;
        if (spent !== costSeen) {
          // A model call's cost belongs to the current turn. A specialist's is added to its turn by the
          // dispatcher, while that turn's span is still open: one step may already have begun the next.
          const delegatedSpent = snapshot.context.delegated.usage.costUsd;
          const modelSpent = spent - costSeen - (delegatedSpent - delegatedSeen);
          if (modelSpent !== 0) sessionTrace.addTurnCost(snapshot.context.turn, modelSpent);
          deps.alerts?.recordSpend({ sessionId, tenant: attribution.tenant, usd: spent - costSeen, totalUsd: spent });
          costSeen = spent;
          delegatedSeen = delegatedSpent;
        }
        for (; noticesPublished < snapshot.context.notices.length; noticesPublished++) {
          publishRecoveryNotice(snapshot.context.notices[noticesPublished] as RecoveryNotice, events, sessionTrace, logger);
        }
        for (const path = snapshot.context.phase?.path ?? []; phaseMovesPublished < path.length; phaseMovesPublished++) {
          publishPhaseMove(path[phaseMovesPublished] as PhaseMove, events, sessionTrace, logger);
        }
        if ((snapshot.matches('calling_model') || snapshot.matches('calling_model_beside_input_check')) && snapshot.context.turn !== announcedTurn) {
          if (announcedTurn !== -1) {
            events.publish({ type: 'turn.started', turn: snapshot.context.turn });
            const routed = snapshot.context.routingDecision;
            if (routed) {
              events.publish({ type: 'model.routed', ...routed });
              sessionTrace.recordRouting(routed);
              logger.info({ turn: routed.turn, model: routed.model, rule: routed.rule }, `routed: ${routed.reason}`);
            }
          }
          announcedTurn = snapshot.context.turn;
        }
        if (snapshot.matches('escalated') && !parked) finish(sessionResultOf(snapshot.context), false);
        parked = snapshot.matches('escalated');
        const awaitingExit = snapshot.matches('awaiting_phase_approval');
        // An exit of the workflow waits as long as a call would: its deadline comes from this host's clock, stored in the context.
        if (awaitingExit && snapshot.context.approvalDeadline === null) {
          queueMicrotask(() => actor.send({ type: 'session.approval_deadline', at: Date.now() + deps.approvalTimeoutMs }));
        }
        const deadline = snapshot.matches('awaiting_approval') || awaitingExit ? snapshot.context.approvalDeadline : null;
        if (deadline !== armedApproval) {
          clearTimeout(approvalTimer);
          armedApproval = deadline;
          if (deadline !== null) {
            const { context } = snapshot;
            const waiting = awaitingExit ? pendingExitAsCall(context) : context.accepted.filter((c) => c.requiresApproval && !c.approval);
            events.publish({
              type: 'approval.requested', turn: context.turn, expiresAt: new Date(deadline).toISOString(),
              calls: waiting.map((c) => ({ callId: c.callId, tool: c.name, arguments: c.arguments })),
            });
            sessionTrace.addEvent('approval.requested', { calls: waiting.length });
            logger.info({ calls: waiting.map((c) => c.name) }, 'waiting for approval');
            // Armed from the stored deadline, so it holds across a restart too.
            approvalTimer = setTimeout(() => {
              events.publish({ type: 'approval.decided', decision: 'expired', by: 'troupe' });
              sessionTrace.addEvent('approval.expired', { calls: waiting.length });
              actor.send({ type: 'session.approval_expired' });
            }, Math.max(0, deadline - Date.now()));
          }
        }
        const interrupted = snapshot.matches('interrupted');
        if (interrupted && !wasInterrupted) {
          events.publish({ type: 'session.interrupted', turn: snapshot.context.turn });
          sessionTrace.addEvent('session.interrupted', { turn: snapshot.context.turn });
        }
        wasInterrupted = interrupted;
      },
      // Stopped without finishing (handed over, taken by another owner) is not an end.
      complete: () => actor.getSnapshot().status === 'done' && finish(actor.getSnapshot().output as SessionResult, true),
      error: (error) => {
        // The machine handles every actor failure itself; reaching here is a bug, still reported as an outcome.
        logger.error({ err: error }, 'session actor crashed');
        const { context } = actor.getSnapshot();
        finish({
          outcome: { status: 'failed', stopReason: 'internal error', error: String(error), output: null },
          steps: context.turn, toolCalls: context.toolCalls, usage: context.usage, delegated: context.delegated, cache: context.cache, ledger: context.ledger, interventions: context.interventions,
        }, true);
      },
    });
  });

  if (start.kind === 'new') {
    const phase = actor.getSnapshot().context.phase;
    events.publish({
      type: 'session.started', agent: agent.name, model, task, traceId: sessionTrace.traceId,
      ...(start.tenant ? { tenant: start.tenant } : {}), ...(start.user ? { user: start.user } : {}),
      ...(phase ? { phases: activePhasesOf(phase.value as StateValue) } : {}),
    });
    logger.info({ model, traceId: sessionTrace.traceId }, 'session started');
  } else {
    const state = JSON.stringify(start.checkpoint.snapshot.value ?? 'unknown');
    events.publish({ type: 'session.resumed', owner: deps.durability?.owner ?? 'unknown', state, resentToolCalls: start.checkpoint.inFlightToolCalls });
    logger.info({ state, resent: start.checkpoint.inFlightToolCalls.length, fromRevision: start.revision }, 'session resumed from its checkpoint');
  }
  checkpoints?.watch(actor);
  actor.start();
  // What people decided while nobody hosted the session (a resume caught it up) comes first, then the rest as it is recorded.
  // A command sent again under the same id is not applied again; its sender is told what came of it the first time.
  const outcomes = new Map<string, ReturnType<typeof applyRecordedControl>>();
  recordedControls.deliverTo(
    (recorded) => {
      outcomes.set(recorded.id, applyRecordedControl(recorded, decide, events, logger, deps.operators));
      if (outcomes.size > 200) outcomes.delete(outcomes.keys().next().value as string);
    },
    (repeated) => {
      const first = outcomes.get(repeated.id);
      announceControl(events, repeated.id, first?.control ?? 'session.command', first?.reply ?? { accepted: true, reason: 'applied already: the same command id was sent before' });
    },
  );
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
    abandon: (reason) => checkpoints?.relinquish(reason),
    stored: async () => await checkpoints?.durable(),
    async handOver() {
      lost = true;
      control.unsubscribe();
      recordedControls.close();
      await checkpoints?.handOver();
      actor.stop();
      resolveEnded();
    },
  };
}

/**
 * Hosts a session taken over from its checkpoint, its events numbered past the last one its stream
 * stored (see `resumedEventSeq`), applying first the commands recorded while nobody hosted it: what
 * an orchestrator's and a specialist pool's resumers, and a delegation sent again, all do.
 */
export async function resumeSession(deps: SessionHostDependencies, start: ResumedSession): Promise<HostedSession> {
  const { checkpoint } = start;
  const nextEventSeq = await resumedEventSeq(deps.nats, deps.names, checkpoint.sessionId, checkpoint.nextEventSeq);
  // The commands recorded while nobody hosted it: applied before anything else, each once.
  const controls = new RecordedControlInbox(deps.nats, deps.names, checkpoint.sessionId, checkpoint.appliedControls, deps.logger.child({ sessionId: checkpoint.sessionId }));
  try {
    await controls.catchUp();
  } catch (error) {
    controls.close();
    throw error;
  }
  return hostSession(deps, { ...start, checkpoint: { ...checkpoint, nextEventSeq }, controls });
}
