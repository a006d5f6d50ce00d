import type { RetryPolicyInput } from '../machines/retryPolicy.ts';
import * as z from 'zod';
import type { CallToolResult, Tool, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { defineTool, type ToolContext, type ToolDefinition } from '../tools/defineTool.ts';
import { toolErrorOfMcpFailure } from './mcpFailures.ts';
import { zodOfMcpSchema } from './mcpSchemas.ts';
import { McpContentResult, toolResultOfMcp } from './mcpToolResults.ts';
import { mcpToolNames, type McpToolNames } from './mcpToolNames.ts';

/**
 * Performs one call of an MCP tool for a Troupe call, provided by the pool member's MCP connection.
 * It is handed the call's context so it can pass the deadline on (`context.signal`) and the trace;
 * whatever it throws is turned into a Troupe failure by {@link toolErrorOfMcpFailure}.
 */
export type McpToolCall = (mcpName: string, args: Record<string, unknown>, context: ToolContext) => Promise<CallToolResult>;

export interface McpToolMappingOptions {
  /** How long one attempt of each tool may run; defineTool's default when absent. */
  timeoutMs?: number;
  /** `false` when the deployment lets tools marked `destructiveHint` run without a person's approval. */
  approveDestructive?: boolean;
  /** How orchestrators retry the tools' retryable failures; {@link mcpToolRetry} when absent. */
  retry?: RetryPolicyInput;
}

/**
 * Patient enough to outlast a member reconnecting to its server (a child started again, a session
 * opened again: about a second), during which its calls fail at once as UNAVAILABLE.
 */
export const mcpToolRetry: RetryPolicyInput = { maxAttempts: 6, initialDelayMs: 250, maxDelayMs: 2_000 };

/** Something about one MCP tool the pool should log: what was lost or skipped in mapping it. */
export interface McpToolWarning {
  readonly mcpName: string;
  readonly message: string;
}

/** An MCP server's tools as Troupe serves them. */
export interface McpToolMapping {
  readonly definitions: ToolDefinition[];
  readonly names: McpToolNames;
  readonly warnings: McpToolWarning[];
}

// What a tool without an output schema returns: its structured content when it has some, else its content blocks.
const OutputWithoutSchema = z.union([McpContentResult, z.record(z.string(), z.unknown())]);

/**
 * Defines one Troupe tool per MCP tool (as listed by `tools/list`), named by {@link mcpToolNames},
 * each calling `call` and turning the answer into a result or a structured failure
 * ({@link toolResultOfMcp}, {@link toolErrorOfMcpFailure}). Pure: nothing is called until a
 * handler runs. Never throws for a server's tools, however odd their schemas: what could not be
 * kept is in `warnings`. Throws `ToolDefinitionError` only for bad configuration (the domain,
 * `timeoutMs`).
 *
 * @example
 * const { tools } = await client.listTools();
 * const mapping = mcpToolDefinitions('everything', tools, (name, args, context) =>
 *   client.request({ method: 'tools/call', params: { name, arguments: args } }, CallToolResultSchema, { signal: context.signal }));
 * for (const warning of mapping.warnings) logger.warn(warning, 'MCP tool mapped with a loss');
 */
export function mcpToolDefinitions(domain: string, tools: readonly Tool[], call: McpToolCall, options: McpToolMappingOptions = {}): McpToolMapping {
  const names = mcpToolNames(domain, tools.map((tool) => tool.name));
  const warnings: McpToolWarning[] = [];
  const warn = (mcpName: string, message: string) => warnings.push({ mcpName, message });
  const seen = new Set<string>();
  const definitions: ToolDefinition[] = [];
  for (const tool of tools) {
    const mcpName = tool.name;
    if (seen.has(mcpName)) {
      warn(mcpName, 'the server lists this tool name more than once; only the first is served');
      continue;
    }
    seen.add(mcpName);
    const name = names.troupeNameOf.get(mcpName);
    if (name === undefined) continue;
    const input = zodOfMcpSchema(tool.inputSchema);
    if (input.fallback) warn(mcpName, `input: ${input.fallback}`);
    const output = tool.outputSchema ? zodOfMcpSchema(tool.outputSchema) : undefined;
    if (output?.fallback) warn(mcpName, `output: ${output.fallback}`);
    const resultSchema: z.ZodType = output?.schema ?? OutputWithoutSchema;
    if (tool.execution?.taskSupport === 'required') {
      warn(mcpName, 'the tool runs only as an MCP task, which pools do not use: its calls will fail');
    }
    definitions.push(defineTool({
      name,
      description: descriptionOf(domain, tool),
      input: input.schema,
      // What the model and the orchestrators see is the server's own schema, not zod's rendering of it.
      inputJsonSchema: tool.inputSchema,
      output: resultSchema,
      ...flagsOf(tool.annotations, options.approveDestructive ?? true),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      retry: options.retry ?? mcpToolRetry,
      handler: async (args, context) => {
        let result: CallToolResult;
        try {
          result = await call(mcpName, args, context);
        } catch (error) {
          throw toolErrorOfMcpFailure(error);
        }
        return toolResultOfMcp(name, result, output?.schema);
      },
    }));
  }
  return { definitions, names, warnings };
}

/**
 * Side effects and approval from the MCP annotations, which are hints a server may leave out.
 *
 * The spec's defaults for an un-annotated tool are the worst case (`readOnlyHint: false`,
 * `destructiveHint: true`, `idempotentHint: false`). Side effects follow that default: a tool not
 * said to be read-only is assumed to change something, so it is not cached and its calls are
 * claimed and tracked like any write. An idempotent tool still changes something (a directory
 * created): its result must not be reused from a cache, nor its effect reported as nothing to undo. Approval does not: only an explicit
 * `destructiveHint: true` asks a person, since the default would put every tool of most servers
 * (few annotate) behind approval, which a deployment can still require by its own policy.
 */
function flagsOf(annotations: ToolAnnotations | undefined, approveDestructive: boolean): { sideEffects: boolean; requiresApproval: boolean } {
  return {
    sideEffects: annotations?.readOnlyHint !== true,
    requiresApproval: approveDestructive && annotations?.destructiveHint === true,
  };
}

/** defineTool refuses an empty description: the model needs some sentence to choose the tool by. */
function descriptionOf(domain: string, tool: Tool): string {
  const given = [tool.description, tool.title, tool.annotations?.title].find((text) => text !== undefined && text.trim() !== '');
  return given ?? `Calls the "${tool.name}" tool of the ${domain} MCP server.`;
}
