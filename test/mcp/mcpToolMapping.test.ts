import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CallToolResultSchema, ErrorCode, McpError, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mcpToolDefinitions, type McpToolCall } from '../../mcp/mcpToolMapping.ts';
import { mcpToolErrorReason } from '../../mcp/mcpToolResults.ts';
import { defaultToolTimeoutMs, toolInputJsonSchema, type ToolDefinition } from '../../tools/defineTool.ts';
import { ToolFailureCode } from '../../tools/toolFailure.ts';
import { callTool, toolErrorOf } from '../fixtures/callTool.ts';

const tool = (overrides: Partial<Tool> & { name: string }): Tool => ({
  inputSchema: { type: 'object', properties: {} },
  description: 'A tool.',
  ...overrides,
});

/** A `call` answering one scripted result per call; an unexpected call fails the test. */
function scriptedCall(...answers: Array<CallToolResult | Error>) {
  const calls: Array<{ mcpName: string; args: Record<string, unknown> }> = [];
  const call: McpToolCall = async (mcpName, args) => {
    calls.push({ mcpName, args });
    const answer = answers.shift();
    if (answer === undefined) throw new Error(`unexpected MCP call of ${mcpName}`);
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { call, calls, unused: () => answers.length };
}

const noCalls: McpToolCall = async (mcpName) => {
  throw new Error(`unexpected MCP call of ${mcpName}`);
};

const byName = (definitions: ToolDefinition[], name: string) => {
  const found = definitions.find((d) => d.name === name);
  if (!found) throw new Error(`no tool ${name}`);
  return found;
};

describe('mcpToolDefinitions', () => {
  it('serves each MCP tool under its mapped name with the MCP description, and reports the mapping', () => {
    const { definitions, names, warnings } = mcpToolDefinitions('everything', [
      tool({ name: 'get-sum', description: 'Returns the sum of two numbers' }),
      tool({ name: 'echo', description: 'Echoes back the input string' }),
    ], noCalls);
    expect(definitions.map((d) => [d.name, d.domain, d.description])).toEqual([
      ['everything_get_sum', 'everything', 'Returns the sum of two numbers'],
      ['everything_echo', 'everything', 'Echoes back the input string'],
    ]);
    expect(names.mcpNameOf.get('everything_get_sum')).toBe('get-sum');
    expect(warnings).toEqual([]);
  });

  it('describes a tool by its title, or by a generated sentence, when it has no description', () => {
    const { definitions } = mcpToolDefinitions('srv', [
      tool({ name: 'a', description: undefined, title: 'Tool A' }),
      tool({ name: 'b', description: '  ', annotations: { title: 'Tool B' } }),
      tool({ name: 'c', description: undefined }),
    ], noCalls);
    expect(definitions.map((d) => d.description)).toEqual(['Tool A', 'Tool B', 'Calls the "c" tool of the srv MCP server.']);
  });

  it.each([
    ['read-only', { readOnlyHint: true }, false, false],
    ['idempotent (still a change: not cached, undo tracked)', { idempotentHint: true }, true, false],
    ['not annotated', undefined, true, false],
    ['annotated without hints', {}, true, false],
    ['explicitly not destructive', { readOnlyHint: false, destructiveHint: false }, true, false],
    ['destructive', { destructiveHint: true }, true, true],
    ['idempotent and destructive (write_file)', { readOnlyHint: false, idempotentHint: true, destructiveHint: true }, true, true],
  ])('sets side effects and approval for a tool %s', (_, annotations, sideEffects, requiresApproval) => {
    const [definition] = mcpToolDefinitions('fs', [tool({ name: 't', ...(annotations ? { annotations } : {}) })], noCalls).definitions;
    expect({ sideEffects: definition?.sideEffects, requiresApproval: definition?.requiresApproval }).toEqual({ sideEffects, requiresApproval });
  });

  it('does not ask approval for destructive tools when the deployment says so', () => {
    const [definition] = mcpToolDefinitions('fs', [tool({ name: 'delete', annotations: { destructiveHint: true } })], noCalls, { approveDestructive: false }).definitions;
    expect(definition?.requiresApproval).toBe(false);
  });

  it('takes the timeout from the options, defineTool\'s default otherwise', () => {
    expect(mcpToolDefinitions('srv', [tool({ name: 'a' })], noCalls, { timeoutMs: 5_000 }).definitions[0]?.timeoutMs).toBe(5_000);
    expect(mcpToolDefinitions('srv', [tool({ name: 'a' })], noCalls).definitions[0]?.timeoutMs).toBe(defaultToolTimeoutMs);
  });

  it('defines a tool whose input schema zod cannot convert, with a warning, and passes its arguments on', async () => {
    const { call, calls } = scriptedCall({ content: [{ type: 'text', text: 'done' }] });
    const { definitions, warnings } = mcpToolDefinitions('srv', [tool({
      name: 'search',
      inputSchema: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'], if: { required: ['a'] }, then: { required: ['b'] } },
    })], call);
    expect(warnings).toEqual([{ mcpName: 'search', message: expect.stringMatching(/^input: the schema cannot be converted whole \(Conditional schemas/) }]);
    expect(toolInputJsonSchema(byName(definitions, 'srv_search'))).toMatchObject({ properties: { query: { type: 'string' } }, required: ['query'] });
    expect(await callTool(definitions, 'srv_search', { query: 'mcp', extra: 1 })).toEqual({ content: [{ type: 'text', text: 'done' }] });
    expect(calls).toEqual([{ mcpName: 'search', args: { query: 'mcp', extra: 1 } }]);
  });

  it('serves a tool listed twice once, with a warning', () => {
    const { definitions, warnings } = mcpToolDefinitions('srv', [tool({ name: 'a' }), tool({ name: 'a', description: 'again' })], noCalls);
    expect(definitions).toHaveLength(1);
    expect(warnings).toEqual([{ mcpName: 'a', message: 'the server lists this tool name more than once; only the first is served' }]);
  });

  it('warns about a tool that runs only as an MCP task', () => {
    const { warnings } = mcpToolDefinitions('srv', [tool({ name: 'research', execution: { taskSupport: 'required' } })], noCalls);
    expect(warnings.map((w) => w.message)).toEqual(['the tool runs only as an MCP task, which pools do not use: its calls will fail']);
  });

  it('checks structured content against the output schema', async () => {
    const { call, unused } = scriptedCall(
      { content: [], structuredContent: { temperature: 20 } },
      { content: [], structuredContent: { temperature: 'warm' } },
    );
    const { definitions } = mcpToolDefinitions('weather', [tool({
      name: 'now',
      outputSchema: { type: 'object', properties: { temperature: { type: 'number' } }, required: ['temperature'] },
    })], call);
    expect(await callTool(definitions, 'weather_now', {})).toEqual({ temperature: 20 });
    const error = await toolErrorOf(callTool(definitions, 'weather_now', {}));
    expect(error).toMatchObject({ code: ToolFailureCode.INTERNAL, retryable: false });
    expect(error.message).toMatch(/breaks the tool's own output schema: `temperature`/);
    expect(unused()).toBe(0);
  });

  it('fails with the tool\'s own text when it answers isError, and maps a protocol error by its code', async () => {
    const { call } = scriptedCall(
      { isError: true, content: [{ type: 'text', text: 'Access denied: /etc is outside the allowed directories' }] },
      new McpError(ErrorCode.RequestTimeout, 'Request timed out'),
    );
    const { definitions } = mcpToolDefinitions('fs', [tool({ name: 'read_file' })], call);
    expect(await toolErrorOf(callTool(definitions, 'fs_read_file', {}))).toMatchObject({
      code: ToolFailureCode.INVALID_INPUT, retryable: false, message: 'Access denied: /etc is outside the allowed directories', details: { reason: mcpToolErrorReason },
    });
    expect(await toolErrorOf(callTool(definitions, 'fs_read_file', {}))).toMatchObject({ code: ToolFailureCode.TIMEOUT, retryable: true });
  });
});

describe('mcpToolDefinitions with server-everything over stdio', () => {
  const serverScript = fileURLToPath(new URL('../../node_modules/@modelcontextprotocol/server-everything/dist/index.js', import.meta.url));
  const client = new Client({ name: 'troupe-test', version: '0.1.0' });
  let tools: Tool[] = [];
  // The way a pool's connection calls: plain tools/call, so the mapping (not the SDK client) judges the answer.
  const call: McpToolCall = (name, args, context) =>
    client.request({ method: 'tools/call', params: { name, arguments: args } }, CallToolResultSchema, {
      signal: context.signal,
      timeout: Math.max(1, context.deadline - Date.now()),
    });

  beforeAll(async () => {
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [serverScript, 'stdio'], stderr: 'ignore' }));
    tools = (await client.listTools()).tools;
  });
  afterAll(async () => {
    await client.close();
  });

  it('defines every tool the server lists under a unique valid name', () => {
    const { definitions, names } = mcpToolDefinitions('everything', tools, call);
    expect(tools.length).toBeGreaterThan(5);
    expect(definitions).toHaveLength(tools.length);
    expect(new Set(definitions.map((d) => d.name)).size).toBe(tools.length);
    expect(names.troupeNameOf.get('get-structured-content')).toBe('everything_get_structured_content');
    expect(byName(definitions, 'everything_echo')).toMatchObject({ sideEffects: false, requiresApproval: false });
    const echo = tools.find((t) => t.name === 'echo');
    if (!echo) throw new Error('server-everything lists no echo tool');
    const { $schema: _, ...echoSchema } = echo.inputSchema;
    // Advertised as the server wrote it, not as zod would write it back.
    expect(toolInputJsonSchema(byName(definitions, 'everything_echo'))).toEqual(echoSchema);
  });

  it('calls echo and returns its text', async () => {
    const { definitions } = mcpToolDefinitions('everything', tools, call);
    expect(await callTool(definitions, 'everything_echo', { message: 'hello' })).toEqual({ content: [{ type: 'text', text: 'Echo: hello' }] });
  });

  it('calls get-structured-content and returns its structured content, checked against its output schema', async () => {
    const { definitions } = mcpToolDefinitions('everything', tools, call);
    expect(await callTool(definitions, 'everything_get_structured_content', { location: 'Chicago' })).toEqual({
      temperature: 36, conditions: 'Light rain / drizzle', humidity: 82,
    });
  });

  it('calls get-tiny-image and summarises the image instead of returning its base64', async () => {
    const { definitions } = mcpToolDefinitions('everything', tools, call);
    const result = await callTool(definitions, 'everything_get_tiny_image', {});
    expect(result.content).toContainEqual({ type: 'image', mimeType: 'image/png', bytes: expect.any(Number) });
    expect(JSON.stringify(result).length).toBeLessThan(1_000);
  });

  it('turns the server\'s refusal of bad arguments into INVALID_INPUT', async () => {
    const { definitions } = mcpToolDefinitions('everything', tools, call);
    // Straight to the handler, past Troupe's own check, as if the schemas disagreed.
    const error = await toolErrorOf(callTool([{ ...byName(definitions, 'everything_get_sum'), input: byName(definitions, 'everything_get_env').input }], 'everything_get_sum', { a: 'one' }));
    expect(error.code).toBe(ToolFailureCode.INVALID_INPUT);
    expect(error.message).toMatch(/Input validation error/);
  });
});
