import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { ToolError, ToolFailureCode } from '../tools/toolFailure.ts';

// The SDK's `Client.callTool` checks structured content against the tool's output schema itself and
// reports a mismatch as "invalid params" (a missing one as "invalid request"): that would blame the
// caller's arguments, or the protocol, for the server's answer.
const clientSideOutputCheck = /^(Structured content does not match the tool's output schema|Failed to validate structured content|Tool .* has an output schema but did not return structured content)/;

/**
 * Turns anything an MCP call threw (as opposed to a result with `isError`) into the Troupe failure
 * it means; never throws. Used by the tool handlers of an MCP pool and by its connection code.
 *
 * - JSON-RPC errors (`McpError`): invalid params → `INVALID_INPUT`; method not found →
 *   `UNKNOWN_TOOL` (the server does not serve tool calls, or no longer this one); request timeout
 *   (also what the SDK reports when the call's signal aborts) → `TIMEOUT`; connection closed →
 *   `UNAVAILABLE`, retryable, since another pool member (or this one, reconnected) can take it;
 *   internal error → `INTERNAL`; parse error and invalid request → `INTERNAL`, not retryable (client
 *   and server disagree about the protocol; the same request fails again); URL elicitation required →
 *   `FORBIDDEN`, not retryable, with the URLs a person must visit in `details.elicitations`.
 * - Streamable HTTP failures: an expired session (404), throttling, timeouts and server errors →
 *   `UNAVAILABLE`, retryable; refused credentials (401, 403, or the SDK's `UnauthorizedError`) →
 *   `UNAVAILABLE`, not retryable (every member has the same credentials); other 4xx → `INTERNAL`,
 *   not retryable.
 * - A `ToolError` passes through; anything else is `INTERNAL` with its message.
 *
 * The JSON-RPC code, when there is one, is kept in `details.mcpErrorCode`; the error in `cause`.
 */
export function toolErrorOfMcpFailure(error: unknown): ToolError {
  if (error instanceof ToolError) return error;
  if (error instanceof McpError) return toolErrorOfMcpError(error);
  if (error instanceof StreamableHTTPError) {
    const status = error.code ?? -1;
    if (status === 401 || status === 403) {
      return new ToolError(ToolFailureCode.UNAVAILABLE, `The MCP server refused this pool's credentials (HTTP ${status}): ${error.message}`, { retryable: false, cause: error });
    }
    const transient = status === 404 || status === 408 || status === 429 || status < 400 || status >= 500;
    return transient
      ? new ToolError(ToolFailureCode.UNAVAILABLE, `The MCP server could not be reached (HTTP ${status}): ${error.message}`, { retryable: true, cause: error })
      : new ToolError(ToolFailureCode.INTERNAL, `The MCP server rejected the request (HTTP ${status}): ${error.message}`, { retryable: false, cause: error });
  }
  if (error instanceof UnauthorizedError) {
    return new ToolError(ToolFailureCode.UNAVAILABLE, `The MCP server refused this pool's credentials: ${error.message}`, { retryable: false, cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ToolError(ToolFailureCode.INTERNAL, `The MCP call failed: ${message}`, { cause: error });
}

function toolErrorOfMcpError(error: McpError): ToolError {
  // McpError prefixes "MCP error <code>: " to the message, once more for each SDK the error went
  // through (an SDK server's McpError arrives with two); the reader needs only the message.
  const said = error.message.replace(/^(MCP error -?\d+: )+/, '');
  const details = { mcpErrorCode: error.code };
  const fail = (code: ToolFailureCode, message: string, retryable?: boolean, extra: Record<string, unknown> = {}) =>
    new ToolError(code, message, { cause: error, details: { ...details, ...extra }, ...(retryable === undefined ? {} : { retryable }) });
  if ((error.code === ErrorCode.InvalidParams || error.code === ErrorCode.InvalidRequest) && clientSideOutputCheck.test(said)) {
    return fail(ToolFailureCode.INTERNAL, `The MCP server's answer breaks the tool's own output schema: ${said}`, false);
  }
  switch (error.code) {
    case ErrorCode.InvalidParams:
      return fail(ToolFailureCode.INVALID_INPUT, `The MCP server refused the arguments: ${said}`, false);
    case ErrorCode.MethodNotFound:
      return fail(ToolFailureCode.UNKNOWN_TOOL, `The MCP server does not serve this tool: ${said}`, false);
    case ErrorCode.RequestTimeout:
      return fail(ToolFailureCode.TIMEOUT, `The MCP server did not answer in time: ${said}`);
    case ErrorCode.ConnectionClosed:
      return fail(ToolFailureCode.UNAVAILABLE, `The connection to the MCP server closed before it answered: ${said}`, true);
    case ErrorCode.ParseError:
    case ErrorCode.InvalidRequest:
      return fail(ToolFailureCode.INTERNAL, `The MCP server could not take the request: ${said}`, false);
    case ErrorCode.UrlElicitationRequired: {
      const elicitations = (error.data as { elicitations?: unknown } | undefined)?.elicitations;
      return fail(ToolFailureCode.FORBIDDEN, `The MCP server needs a person to complete a step in a browser first: ${said}`, false, elicitations === undefined ? {} : { elicitations });
    }
    default:
      return fail(ToolFailureCode.INTERNAL, `The MCP server failed: ${said}`);
  }
}
