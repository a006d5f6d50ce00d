import type { CallGrant, ToolRequest, ToolUndoRequest } from './messages.ts';
import { sha256Of, verifyStatement, type StatementSigner } from './signatures.ts';

/**
 * What an orchestrator signs so a worker can tell a call a person approved, or an undo a person
 * asked for, from one any peer made up. The statement names the deployment, the session, the
 * call, the tool, a hash of exactly what will run (the arguments, or the captured compensation),
 * who decided, and when the grant expires; a grant copied onto another call, another tool or
 * other arguments no longer matches its signature.
 */

/** The statement behind an approval grant. */
export function approvalStatement(namespace: string, request: Pick<ToolRequest, 'sessionId' | 'callId' | 'tool' | 'arguments'>, by: string, expiresAt: number) {
  return {
    statement: 'troupe.tool.approval', version: 1, namespace,
    sessionId: request.sessionId, callId: request.callId, tool: request.tool, argumentsSha256: sha256Of(request.arguments), by, expiresAt,
  };
}

/** The statement behind an undo grant. */
export function undoStatement(namespace: string, request: Pick<ToolUndoRequest, 'sessionId' | 'callId' | 'tool' | 'compensation'>, by: string, expiresAt: number) {
  return {
    statement: 'troupe.tool.undo', version: 1, namespace,
    sessionId: request.sessionId, callId: request.callId, tool: request.tool, compensationSha256: sha256Of(request.compensation ?? null), by, expiresAt,
  };
}

/** Signs `statement` as a grant that expires at `expiresAt` (the statement must say the same). */
export function signGrant(signer: StatementSigner, statement: { expiresAt: number }): CallGrant {
  return { signer: signer.publicKey, expiresAt: statement.expiresAt, signature: signer.sign(statement) };
}

/** Whether a grant holds, and if not, why, in words for the log and for the caller's error. */
export type GrantCheck = { ok: true; signer: string } | { ok: false; reason: string };

/**
 * Checks a grant against the statement the receiver rebuilt from the message it got, the keys it
 * trusts and its clock. Never throws. The checks go from what costs nothing to the signature, so
 * a refusal says the first thing wrong.
 */
export function checkGrant(
  grant: CallGrant | undefined,
  statementFor: (expiresAt: number) => unknown,
  trusted: ReadonlySet<string>,
  now: number,
): GrantCheck {
  if (!grant) return { ok: false, reason: 'it carries no orchestrator signature' };
  if (!trusted.has(grant.signer)) return { ok: false, reason: `it is signed by ${grant.signer}, which is not an orchestrator key this worker trusts` };
  if (grant.expiresAt <= now) return { ok: false, reason: `its signature expired at ${new Date(grant.expiresAt).toISOString()}` };
  if (!verifyStatement(grant.signer, statementFor(grant.expiresAt), grant.signature)) {
    return { ok: false, reason: 'its signature does not match it (the session, call, tool, arguments or approver differ from what was signed)' };
  }
  return { ok: true, signer: grant.signer };
}
