import { randomUUID } from 'node:crypto';
import type { SessionStep } from '../session/actorSystemHooks.ts';
import type { TriageToolCallsInput } from '../../machines/session.ts';
import type { PlannedToolCall, RejectedToolCall, ToolCallTriage } from '../../machines/toolCallOutcome.ts';
import { ToolFailureCode, toolFailure } from '../../tools/toolFailure.ts';
import { parseToolArgumentsJson, validateToolArguments } from '../../tools/validation.ts';
import type { SessionEventPublisher } from '../session/sessionEvents.ts';
import type { CatalogTool, ToolCatalog } from './toolCatalog.ts';

/** A deployment's own rule: must a person approve this call, whatever the tool's definition says? */
export type ApprovalPolicy = (call: { tool: string; arguments: Record<string, unknown> }) => boolean;

/** A policy from a list of tool names and `<domain>_*` patterns, as `TROUPE_REQUIRE_APPROVAL` gives them. */
export function toolsRequiringApproval(patterns: string[]): ApprovalPolicy {
  return ({ tool }) => patterns.some((p) => (p.endsWith('*') ? tool.startsWith(p.slice(0, -1)) : tool === p));
}

export interface TriageDependencies {
  catalog: ToolCatalog;
  approvalPolicy?: ApprovalPolicy;
  /** How long a call may wait for approval before it is denied. */
  approvalTimeoutMs: number;
  /** Whether this session's agent may use a tool. */
  allows: (tool: CatalogTool) => boolean;
  /** The session's depth and how many levels of specialists it may still delegate to. */
  delegationDepth: () => { depth: number; left: number };
  events: SessionEventPublisher;
}

/**
 * The session's `triageToolCalls` actor: checks every tool call the model asked for before any
 * goes on the wire — the tool exists and the agent may use it, the arguments are a JSON object,
 * and they satisfy the schema the pool advertised. Accepted calls get their call id (the
 * idempotency key); rejected ones get the structured error the model will read.
 */
export function createToolCallTriage(deps: TriageDependencies): SessionStep<TriageToolCallsInput, ToolCallTriage> {
  return async ({ input }) => {
    const accepted: PlannedToolCall[] = [];
    const rejected: RejectedToolCall[] = [];
    const available = () => deps.catalog.list().filter(deps.allows);
    for (const request of input.toolCalls) {
      const reject = (failure: RejectedToolCall['failure']) => {
        rejected.push({ toolCallId: request.id, name: request.name, rawArguments: request.arguments, failure });
        deps.events.publish({ type: 'tool.call.rejected', turn: input.turn, toolCallId: request.id, tool: request.name, failure });
      };
      let tool = deps.catalog.get(request.name);
      // A pool may have started since the last discovery round: ask once before refusing.
      if (!tool) {
        await deps.catalog.refresh();
        // A pool that served it minutes ago is down, not gone: the call waits for it with its retries.
        tool = deps.catalog.get(request.name) ?? deps.catalog.departed(request.name);
      }
      if (!tool || !deps.allows(tool)) {
        const names = available().map((t) => t.name);
        reject(
          toolFailure(
            ToolFailureCode.UNKNOWN_TOOL,
            `There is no tool named "${request.name}". Available tools: ${names.length > 0 ? names.join(', ') : '(none are running)'}.`,
          ),
        );
        continue;
      }
      const depth = deps.delegationDepth();
      if (tool.specialist !== null && depth.left <= 0) {
        reject({
          code: ToolFailureCode.FORBIDDEN,
          retryable: false,
          message: `"${tool.name}" would delegate deeper than allowed: this session is at delegation depth ${depth.depth} and may not delegate further. Do the work with your own tools, or answer with what you have.`,
          details: { delegationDepth: depth.depth, tool: tool.name },
        });
        continue;
      }
      const parsed = parseToolArgumentsJson(tool.name, request.arguments);
      if (!parsed.ok) {
        reject(parsed.failure);
        continue;
      }
      if (typeof parsed.value !== 'object' || parsed.value === null || Array.isArray(parsed.value)) {
        reject(toolFailure(ToolFailureCode.INVALID_INPUT, `The arguments for tool "${tool.name}" must be a JSON object of named arguments.`));
        continue;
      }
      const validated = validateToolArguments(tool.name, tool.validator, parsed.value);
      if (!validated.ok) {
        reject(validated.failure);
        continue;
      }
      accepted.push({
        callId: randomUUID(), toolCallId: request.id, name: tool.name, arguments: parsed.value as Record<string, unknown>,
        retry: tool.retry, fallbacks: tool.fallbacks, sideEffects: tool.sideEffects, undoable: tool.undoable,
        requiresApproval: tool.requiresApproval || (deps.approvalPolicy?.({ tool: tool.name, arguments: parsed.value as Record<string, unknown> }) ?? false),
      });
    }
    // The deadline is stored with the session (it survives a restart); the machine reads no clock.
    return accepted.some((c) => c.requiresApproval) ? { accepted, rejected, approvalDeadline: Date.now() + deps.approvalTimeoutMs } : { accepted, rejected };
  };
}
