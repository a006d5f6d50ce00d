import * as z from 'zod';
import type { CallToolResult, ContentBlock } from '@modelcontextprotocol/sdk/types.js';
import { ToolError, ToolFailureCode } from '../tools/toolFailure.ts';
import { toValidationIssues } from '../tools/validation.ts';

/**
 * One MCP content block as the model reads it: text as it is; images, audio and binary resources
 * as their kind, media type and size, because base64 is of no use to a model and fills its context.
 */
export const McpContentSummary = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text'), text: z.string() }),
  z.object({ type: z.enum(['image', 'audio']), mimeType: z.string(), bytes: z.number().int().nonnegative() }),
  z.object({
    type: z.literal('resource_link'), uri: z.string(), name: z.string(),
    mimeType: z.string().optional(), description: z.string().optional(),
  }),
  z.object({
    type: z.literal('resource'), uri: z.string(), mimeType: z.string().optional(),
    text: z.string().optional(), bytes: z.number().int().nonnegative().optional(),
  }),
]);
export type McpContentSummary = z.infer<typeof McpContentSummary>;

/** The result of an MCP tool that has neither an output schema nor structured content. */
export const McpContentResult = z.object({ content: z.array(McpContentSummary) });
export type McpContentResult = z.infer<typeof McpContentResult>;

/** `details.reason` of a failure the MCP tool itself reported (`isError: true`), as opposed to a protocol error. */
export const mcpToolErrorReason = 'mcp_tool_error';

/**
 * The Troupe result of an MCP tool's answer, or the {@link ToolError} it amounts to.
 *
 * - `isError: true` is the tool telling the caller its call failed (a missing file, a refused
 *   request, arguments it did not like), with text meant for the model to correct the call by:
 *   `INVALID_INPUT`, not retryable, the text as the message and `details.reason`
 *   {@link mcpToolErrorReason}. The server answered, so it must not count against the tool's
 *   circuit, which one caller's bad calls must never open for everyone.
 * - With an output schema (`output`), `structuredContent` is the result and must match it; a server
 *   that breaks its own declared schema fails the call `INTERNAL`, not retryable (it would answer the
 *   same again), with the broken fields in `details.issues`.
 * - Without one, `structuredContent` when present (it is the data; the text blocks of such a result
 *   are, by the spec, a serialisation of it), else the content blocks as {@link McpContentResult}.
 */
export function toolResultOfMcp(tool: string, result: CallToolResult, output: z.ZodObject | undefined): Record<string, unknown> {
  if (result.isError) {
    const text = result.content.filter((block) => block.type === 'text').map((block) => block.text).join('\n').trim();
    throw new ToolError(ToolFailureCode.INVALID_INPUT, text || `${tool} failed without saying why.`, {
      retryable: false,
      details: { reason: mcpToolErrorReason },
    });
  }
  if (output) {
    if (result.structuredContent === undefined) {
      throw new ToolError(ToolFailureCode.INTERNAL, `${tool} declares an output schema but its MCP server returned no structured content.`, { retryable: false });
    }
    const parsed = output.safeParse(result.structuredContent);
    if (!parsed.success) {
      const issues = toValidationIssues(parsed.error);
      throw new ToolError(
        ToolFailureCode.INTERNAL,
        `${tool}'s MCP server returned structured content that breaks the tool's own output schema: ${issues.map((i) => `\`${i.path}\`: ${i.message}`).join('; ')}.`,
        { retryable: false, details: { issues } },
      );
    }
    return parsed.data;
  }
  if (result.structuredContent !== undefined) return result.structuredContent;
  return { content: result.content.map(summaryOf) } satisfies McpContentResult;
}

function summaryOf(block: ContentBlock): McpContentSummary {
  switch (block.type) {
    case 'text':
      return { type: 'text', text: block.text };
    case 'image':
    case 'audio':
      return { type: block.type, mimeType: block.mimeType, bytes: base64Bytes(block.data) };
    case 'resource_link':
      return {
        type: 'resource_link', uri: block.uri, name: block.name,
        ...(block.mimeType !== undefined ? { mimeType: block.mimeType } : {}),
        ...(block.description !== undefined ? { description: block.description } : {}),
      };
    case 'resource': {
      const { resource } = block;
      const mimeType = resource.mimeType !== undefined ? { mimeType: resource.mimeType } : {};
      return 'text' in resource
        ? { type: 'resource', uri: resource.uri, ...mimeType, text: resource.text }
        : { type: 'resource', uri: resource.uri, ...mimeType, bytes: base64Bytes(resource.blob) };
    }
  }
}

/** The decoded size of base64 data, without decoding it. */
function base64Bytes(data: string): number {
  const padding = data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0;
  return Math.max(0, Math.floor((data.length * 3) / 4) - padding);
}
