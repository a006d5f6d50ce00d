import type { ToolDefinition } from '../../tools/defineTool.ts';
import { ToolFailureCode, toolFailure, type ToolFailure } from '../../tools/toolFailure.ts';
import { approvalStatement, checkGrant, undoStatement } from '../../transport/callGrants.ts';
import type { ToolRequest, ToolUndoRequest } from '../../transport/messages.ts';
import type { ApprovalPolicy } from '../toolCalls/toolCallTriage.ts';

/** What a pool checks before running an approved call or an undo. */
export interface CallAuthority {
  /** The deployment's namespace: grants name it, so one deployment's grant is void in another. */
  namespace: string;
  /**
   * Orchestrator public keys whose grants the pool honours. Empty: approvals are taken at their
   * word and undo requests run unsigned, as in a deployment where every peer is trusted.
   */
  trustedOrchestrators: ReadonlySet<string>;
  /** The deployment's approval policy (`TROUPE_REQUIRE_APPROVAL`), on top of each tool's own flag. */
  approvalPolicy?: ApprovalPolicy;
}

/** Whether the call needs a person's approval: by the tool's own flag or by the deployment's policy. */
export function needsApproval(tool: ToolDefinition, request: Pick<ToolRequest, 'tool' | 'arguments'>, authority: CallAuthority): boolean {
  return tool.requiresApproval || (authority.approvalPolicy?.({ tool: request.tool, arguments: request.arguments }) ?? false);
}

/**
 * Why the pool must not run this call, as the FORBIDDEN failure the caller gets; undefined when it
 * may. A call that needs approval must carry one, and, when the pool trusts orchestrator keys, one
 * of them must have signed exactly this call (session, id, tool, arguments, approver) and the
 * signature not have expired.
 */
export function approvalRefusal(tool: ToolDefinition, request: ToolRequest, authority: CallAuthority, now: number = Date.now()): ToolFailure | undefined {
  if (!needsApproval(tool, request, authority)) return undefined;
  const { approval } = request;
  if (!approval) return toolFailure(ToolFailureCode.FORBIDDEN, `${tool.name} runs only with a person's approval, and this call carries none.`);
  if (authority.trustedOrchestrators.size === 0) return undefined;
  const check = checkGrant(approval.grant, (expiresAt) => approvalStatement(authority.namespace, request, approval.by, expiresAt), authority.trustedOrchestrators, now);
  return check.ok ? undefined : toolFailure(ToolFailureCode.FORBIDDEN, `${tool.name} runs only with a person's approval, signed by an orchestrator, and ${check.reason}.`);
}

/**
 * Why the pool must not undo this call, as a FORBIDDEN failure; undefined when it may. When the
 * pool trusts orchestrator keys, one of them must have signed this undo (session, call, tool, the
 * exact compensation, who asked) and the signature not have expired.
 */
export function undoRefusal(tool: string, request: ToolUndoRequest, authority: CallAuthority, now: number = Date.now()): ToolFailure | undefined {
  if (authority.trustedOrchestrators.size === 0) return undefined;
  const check = checkGrant(request.grant, (expiresAt) => undoStatement(authority.namespace, request, request.by ?? '', expiresAt), authority.trustedOrchestrators, now);
  return check.ok ? undefined : toolFailure(ToolFailureCode.FORBIDDEN, `Undoing a ${tool} call takes a rollback an orchestrator signed, and ${check.reason}.`);
}
