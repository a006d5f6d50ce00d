import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { CheckpointStore } from '../../actors/durability/checkpointStore.ts';
import { checkpointOncePaused, controlOutcomeMarks, manualCallAnswer, rollbackReportAfter } from '../../client/controlOutcomes.ts';
import {
  answerSession, approveSession, callToolInSession, cancelSession, continueSession, denySession, handBackSession, interruptSession,
  redirectSession, rollbackSession, takeOverSession, type ControlOptions, type ControlResult,
} from '../../client/sessionClient.ts';
import { rollbackPlan } from '../../machines/rollback.ts';
import type { SessionContext } from '../../machines/sessionContext.ts';
import type { StatementSigner } from '../../transport/signatures.ts';
import type { WireNames } from '../../transport/subjects.ts';
import type { ControlName, ControlRequests, ControlResponse } from '../consoleApi.ts';
import { ConsoleRequestError } from './consoleHttp.ts';

type Body<C extends ControlName> = import('zod').output<(typeof ControlRequests)[C]>;

export interface ConsoleControlDeps {
  nc: NatsConnection;
  names: WireNames;
  logger: Logger;
  signer: StatementSigner | undefined;
}

/** One action a person took on the page: kept for the page's list and logged, with who did it. */
export interface ConsoleAction {
  at: string;
  by: string;
  sessionId: string;
  control: ControlName;
  status: ControlResponse['status'];
  reason: string | null;
}

/**
 * Sends a control from the page through the same client functions `troupe sessions` uses, so the
 * session's host applies it the same way and records it (with `by` where the command carries one).
 * Refused here only what cannot apply at all: a session that does not exist, or has ended.
 */
export async function sendConsoleControl<C extends ControlName>(sessionId: string, control: C, body: Body<C>, deps: ConsoleControlDeps): Promise<ControlResponse> {
  const by = `${(body as { by?: string }).by ?? 'an operator'} (console)`;
  const store = await CheckpointStore.openForReading(deps.nc, deps.names);
  const stored = await store?.read(sessionId, { journal: false });
  if (!store || !stored) throw new ConsoleRequestError(404, 'not_found', `There is no session ${sessionId}.`);
  if (stored.checkpoint.status === 'ended') {
    const outcome = (stored.checkpoint.snapshot.context as SessionContext).outcome?.status ?? 'ended';
    throw new ConsoleRequestError(409, 'conflict', `Session ${sessionId} has ended (${outcome}): there is nothing to ${control}.`);
  }
  const where: ControlOptions = { namespace: deps.names.namespace, by, ...(deps.signer ? { signer: deps.signer } : {}) };
  const respond = (result: ControlResult, extra: Partial<ControlResponse> = {}): ControlResponse => ({
    status: result.status, accepted: result.accepted, reason: result.reason ?? null, controlId: result.controlId, by, ...extra,
  });
  const b = body as Record<string, unknown>;
  switch (control) {
    case 'approve':
      return respond(await approveSession(deps.nc, sessionId, { ...where, by, ...(b.callIds ? { callIds: b.callIds as string[] } : {}) }));
    case 'deny':
      return respond(await denySession(deps.nc, sessionId, {
        ...where, by, ...(b.reason ? { reason: b.reason as string } : {}), ...(b.callIds ? { callIds: b.callIds as string[] } : {}),
      }));
    case 'interrupt':
      return respond(await interruptSession(deps.nc, sessionId, where));
    case 'redirect':
      return respond(await redirectSession(deps.nc, sessionId, b.instruction as string, where));
    case 'cancel':
      return respond(await cancelSession(deps.nc, sessionId, (b.reason as string | undefined) ?? `cancelled by ${by}`, where));
    case 'resume':
      return respond(await continueSession(deps.nc, sessionId, where));
    case 'answer':
      return respond(await answerSession(deps.nc, sessionId, b.answer as string, where));
    case 'takeover':
      return respond(await takeOverSession(deps.nc, sessionId, by, where));
    case 'handback':
      return respond(await handBackSession(deps.nc, sessionId, b.instruction as string | undefined, where));
    case 'call': {
      const marks = await controlOutcomeMarks(store, sessionId);
      const sent = await callToolInSession(deps.nc, sessionId, b.tool as string, b.arguments as Record<string, unknown>, where);
      if (!sent.accepted) return respond(sent);
      const answer = await manualCallAnswer(store, sessionId, marks.manualCalls);
      return respond(sent, answer !== undefined ? { answer } : { reason: 'the call was accepted but its answer did not arrive within 60 s' });
    }
    case 'rollback': {
      const toTurn = b.toTurn as number;
      const paused = await checkpointOncePaused(deps.nc, deps.names, store, sessionId);
      if (!paused) throw new ConsoleRequestError(404, 'not_found', `There is no session ${sessionId}.`);
      const plan = rollbackPlan((paused.checkpoint.snapshot.context as SessionContext).ledger, toTurn);
      if (b.dryRun) return { status: 'applied', accepted: true, reason: plan.length === 0 ? `nothing was executed after turn ${toTurn}` : null, controlId: null, by, plan };
      const marks = await controlOutcomeMarks(store, sessionId);
      const sent = await rollbackSession(deps.nc, sessionId, { ...where, toTurn, by });
      if (!sent.accepted) return respond(sent, { plan });
      const report = await rollbackReportAfter(store, sessionId, marks.rollbacks);
      return respond(sent, report ? { plan: report.steps } : { plan, reason: 'the rollback was accepted but its report did not arrive within 30 s' });
    }
    default:
      throw new ConsoleRequestError(404, 'not_found', `There is no control ${JSON.stringify(control)}.`);
  }
}
