import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { SessionStep } from '../session/actorSystemHooks.ts';
import type { LedgerEntry } from '../../machines/ledger.ts';
import type { RollbackReport } from '../../machines/rollback.ts';
import type { RollBackInput } from '../../machines/session.ts';
import { ToolReply, type ToolUndoRequest } from '../../transport/messages.ts';
import { isNoResponders } from '../../transport/natsConnection.ts';
import type { WireNames } from '../../transport/subjects.ts';
import { decodeWireMessage, encodeWireMessage } from '../../transport/wireMessage.ts';
import type { SessionEventPublisher } from '../session/sessionEvents.ts';
import { signGrant, undoStatement } from '../../transport/callGrants.ts';
import type { StatementSigner } from '../../transport/signatures.ts';

const undoTimeoutMs = 30_000;

/**
 * The session's `rollBack` actor: carries out a rollback plan newest first, sending each undoable
 * call's captured compensation to its pool's undo endpoint, signed by `signer` when there is one
 * (workers that trust orchestrator keys undo nothing unsigned). Never rejects: a call that could
 * not be undone is reported as such, with the reason, and the rest go on.
 */
export function createUndoDispatcher(deps: {
  nats: NatsConnection; names: WireNames; ledger: () => LedgerEntry[]; events: SessionEventPublisher; logger: Logger; signer?: StatementSigner;
}): SessionStep<RollBackInput, RollbackReport> {
  return async ({ input }) => {
    const ledger = deps.ledger();
    const steps = [];
    for (const step of input.plan) {
      if (step.action !== 'undo') {
        steps.push(step);
        continue;
      }
      const entry = ledger.find((e) => e.callId === step.callId);
      const domain = step.tool.split('_')[0] as string;
      const request: ToolUndoRequest = {
        type: 'tool.undo', sessionId: input.sessionId, callId: step.callId, tool: step.tool,
        compensation: entry?.compensation ?? null, deadline: Date.now() + undoTimeoutMs, by: input.by,
      };
      if (deps.signer) request.grant = signGrant(deps.signer, undoStatement(deps.names.namespace, request, input.by, request.deadline));
      try {
        const msg = await deps.nats.request(deps.names.subjects.toolUndo(domain, step.tool), encodeWireMessage(request), { timeout: undoTimeoutMs + 250 });
        const reply = decodeWireMessage(ToolReply, msg.data, `The undo reply of ${step.tool}`);
        if (reply.ok && reply.value.status === 'ok') steps.push({ ...step, result: 'undone' as const });
        else steps.push({ ...step, result: 'failed' as const, message: reply.ok && reply.value.status === 'error' ? reply.value.failure.message : reply.ok ? 'no reason given' : reply.error });
      } catch (error) {
        const message = isNoResponders(error) ? `no worker of the ${domain} pool is running` : error instanceof Error ? error.message : String(error);
        steps.push({ ...step, result: 'failed' as const, message });
      }
    }
    const report: RollbackReport = { toTurn: input.toTurn, by: input.by, steps };
    deps.events.publish({ type: 'session.rolled_back', ...report });
    deps.logger.info({ toTurn: input.toTurn, steps: steps.map((s) => [s.tool, s.action, s.result ?? '']) }, 'rolled back');
    return report;
  };
}
