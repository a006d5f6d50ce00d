import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, CallToolResultSchema, ErrorCode, McpError, UrlElicitationRequiredError } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { toolErrorOfMcpFailure } from '../../mcp/mcpFailures.ts';
import { ToolError, ToolFailureCode } from '../../tools/toolFailure.ts';

describe('toolErrorOfMcpFailure', () => {
  it.each([
    [ErrorCode.InvalidParams, ToolFailureCode.INVALID_INPUT, false, 'The MCP server refused the arguments: path must be a string'],
    [ErrorCode.MethodNotFound, ToolFailureCode.UNKNOWN_TOOL, false, 'The MCP server does not serve this tool: path must be a string'],
    [ErrorCode.RequestTimeout, ToolFailureCode.TIMEOUT, true, 'The MCP server did not answer in time: path must be a string'],
    [ErrorCode.ConnectionClosed, ToolFailureCode.UNAVAILABLE, true, 'The connection to the MCP server closed before it answered: path must be a string'],
    [ErrorCode.InternalError, ToolFailureCode.INTERNAL, true, 'The MCP server failed: path must be a string'],
    [ErrorCode.ParseError, ToolFailureCode.INTERNAL, false, 'The MCP server could not take the request: path must be a string'],
    [ErrorCode.InvalidRequest, ToolFailureCode.INTERNAL, false, 'The MCP server could not take the request: path must be a string'],
    [-32099, ToolFailureCode.INTERNAL, true, 'The MCP server failed: path must be a string'],
  ])('maps JSON-RPC error %i to %s (retryable: %s)', (mcpCode, code, retryable, message) => {
    const cause = new McpError(mcpCode, 'path must be a string');
    const error = toolErrorOfMcpFailure(cause);
    expect({ code: error.code, retryable: error.retryable, message: error.message }).toEqual({ code, retryable, message });
    expect(error.details).toEqual({ mcpErrorCode: mcpCode });
    expect(error.cause).toBe(cause);
  });

  it('blames the server, not the arguments, for the SDK client\'s own output schema check', () => {
    const mismatch = toolErrorOfMcpFailure(new McpError(ErrorCode.InvalidParams, "Structured content does not match the tool's output schema: data/temperature must be number"));
    const missing = toolErrorOfMcpFailure(new McpError(ErrorCode.InvalidRequest, 'Tool get-weather has an output schema but did not return structured content'));
    for (const error of [mismatch, missing]) {
      expect(error.code).toBe(ToolFailureCode.INTERNAL);
      expect(error.retryable).toBe(false);
      expect(error.message).toMatch(/^The MCP server's answer breaks the tool's own output schema: /);
    }
  });

  it('asks for a person when the server needs a URL elicitation, passing the URLs on', () => {
    const elicitation = { mode: 'url' as const, message: 'Sign in', url: 'https://example.com/auth', elicitationId: 'e1' };
    const error = toolErrorOfMcpFailure(new UrlElicitationRequiredError([elicitation]));
    expect(error.code).toBe(ToolFailureCode.FORBIDDEN);
    expect(error.retryable).toBe(false);
    expect(error.details).toEqual({ mcpErrorCode: ErrorCode.UrlElicitationRequired, elicitations: [elicitation] });
  });

  it('treats an expired HTTP session and server errors as a retryable UNAVAILABLE, refused credentials as not retryable', () => {
    expect(toolErrorOfMcpFailure(new StreamableHTTPError(404, 'Session not found'))).toMatchObject({ code: ToolFailureCode.UNAVAILABLE, retryable: true });
    expect(toolErrorOfMcpFailure(new StreamableHTTPError(503, 'busy'))).toMatchObject({ code: ToolFailureCode.UNAVAILABLE, retryable: true });
    expect(toolErrorOfMcpFailure(new StreamableHTTPError(401, 'no'))).toMatchObject({ code: ToolFailureCode.UNAVAILABLE, retryable: false });
    expect(toolErrorOfMcpFailure(new UnauthorizedError())).toMatchObject({ code: ToolFailureCode.UNAVAILABLE, retryable: false });
    expect(toolErrorOfMcpFailure(new StreamableHTTPError(400, 'bad'))).toMatchObject({ code: ToolFailureCode.INTERNAL, retryable: false });
  });

  it('passes a ToolError through and makes anything else INTERNAL', () => {
    const own = new ToolError(ToolFailureCode.FORBIDDEN, 'no');
    expect(toolErrorOfMcpFailure(own)).toBe(own);
    expect(toolErrorOfMcpFailure(new Error('EPIPE'))).toMatchObject({ code: ToolFailureCode.INTERNAL, message: 'The MCP call failed: EPIPE' });
    expect(toolErrorOfMcpFailure('odd')).toMatchObject({ code: ToolFailureCode.INTERNAL, message: 'The MCP call failed: odd' });
  });
});

describe('toolErrorOfMcpFailure with errors raised by the SDK itself', () => {
  let client: Client | undefined;
  afterEach(async () => {
    await client?.close();
    client = undefined;
  });

  /** A low-level SDK server whose `tools/call` throws what the test names, or never answers. */
  async function connect(options: { toolCalls: boolean }): Promise<Client> {
    const server = new Server({ name: 'failing', version: '1.0.0' }, { capabilities: { tools: {} } });
    if (options.toolCalls) {
      server.setRequestHandler(CallToolRequestSchema, (request, extra) => {
        if (request.params.name === 'refuse') throw new McpError(ErrorCode.InvalidParams, 'count must be positive');
        // Never answers; let go when the client cancels or the connection closes.
        return new Promise((resolve) => extra.signal.addEventListener('abort', () => resolve({ content: [] })));
      });
    }
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(clientSide);
    return client;
  }
  const call = (c: Client, name: string, signal?: AbortSignal) =>
    c.request({ method: 'tools/call', params: { name, arguments: {} } }, CallToolResultSchema, signal ? { signal } : {}).then(
      () => { throw new Error('expected the call to fail'); },
      (error: unknown) => toolErrorOfMcpFailure(error),
    );

  it('maps an invalid-params answer to INVALID_INPUT', async () => {
    const error = await call(await connect({ toolCalls: true }), 'refuse');
    expect(error).toMatchObject({ code: ToolFailureCode.INVALID_INPUT, message: 'The MCP server refused the arguments: count must be positive' });
  });

  it('maps a server without tool calls to UNKNOWN_TOOL', async () => {
    const error = await call(await connect({ toolCalls: false }), 'anything');
    expect(error).toMatchObject({ code: ToolFailureCode.UNKNOWN_TOOL, retryable: false });
  });

  it('maps a call aborted by its deadline to TIMEOUT', async () => {
    const c = await connect({ toolCalls: true });
    const deadline = new AbortController();
    const pending = call(c, 'hang', deadline.signal);
    deadline.abort(new Error('deadline passed'));
    expect(await pending).toMatchObject({ code: ToolFailureCode.TIMEOUT, retryable: true });
  });

  it('maps a connection closed mid-call to a retryable UNAVAILABLE', async () => {
    const c = await connect({ toolCalls: true });
    const pending = call(c, 'hang');
    await c.close();
    expect(await pending).toMatchObject({ code: ToolFailureCode.UNAVAILABLE, retryable: true });
  });
});
