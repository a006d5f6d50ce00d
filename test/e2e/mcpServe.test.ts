import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMcpServeArgs } from '../../cli/mcpServeCommand.ts';
import { freePort } from '../../testing/natsServer.ts';
import { startProcessStack, type ProcessStack } from '../fixtures/processStack.ts';
import { eventually, startTroupe, type TroupeProcess } from '../fixtures/troupeProcess.ts';

/** `troupe mcp serve` driven by the MCP SDK's own Client, over stdio and Streamable HTTP. */

const cliMain = fileURLToPath(new URL('../../cli/main.ts', import.meta.url));

const filesystem = fileURLToPath(new URL('../../node_modules/@modelcontextprotocol/server-filesystem/dist/index.js', import.meta.url));

let stack: ProcessStack;
beforeAll(async () => {
  stack = await startProcessStack();
  await stack.startWorker('calc');
  // A pool whose write_file is destructive: a session calling it waits for a person.
  await stack.startWorker('fs', {}, ['--mcp', '--', process.execPath, filesystem, mkdtempSync(join(tmpdir(), 'troupe-mcp-serve-fs-'))]);
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

async function stdioClient(args: string[] = []): Promise<Client> {
  const client = new Client({ name: 'troupe-test', version: '1' });
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [cliMain, 'mcp', 'serve', ...args], env: { ...process.env, ...stack.env } as Record<string, string>, stderr: 'ignore' }));
  return client;
}

describe('troupe mcp serve over stdio', () => {
  it('lists the agents as tools and runs one to completion, its events as progress notifications', async () => {
    const client = await stdioClient(['--agent', 'assistant']);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual(['assistant']);
      expect(tools[0]?.inputSchema).toMatchObject({ required: ['task'] });
      const progress: string[] = [];
      const result = await client.request({ method: 'tools/call', params: { name: 'assistant', arguments: { task: 'Please compute two plus two.' } } }, CallToolResultSchema, {
        onprogress: (p) => void progress.push(p.message ?? ''), timeout: 60_000,
      });
      expect(result.isError).toBeFalsy();
      expect(result.structuredContent).toMatchObject({ status: 'completed', steps: 2, toolCalls: 1, traceId: expect.stringMatching(/^[0-9a-f]{32}$/) });
      expect(JSON.stringify(result.content)).toContain('4');
      expect(progress.some((line) => line.includes('calc_evaluate'))).toBe(true);
    } finally {
      await client.close();
    }
  }, 90_000);

  it('cancels the session when the client cancels the call', async () => {
    const client = await stdioClient();
    try {
      const abort = new AbortController();
      let sessionId: string | undefined;
      const call = client.request({ method: 'tools/call', params: { name: 'assistant', arguments: { task: '[mcp-slow] Take your time.' } } }, CallToolResultSchema, {
        signal: abort.signal, timeout: 60_000,
        onprogress: (p) => {
          sessionId ??= /session (\S+)/.exec(p.message ?? '')?.[1];
          if (sessionId) abort.abort(new Error('the person changed their mind'));
        },
      });
      await expect(call).rejects.toThrow();
      expect(sessionId).toBeDefined();
      // Cancelled long before the model's 20 s answer: the session ends cancelled, not completed.
      await eventually('the session cancelled', async () => /"status":\s*"cancelled"/.test((await stack.troupe(['sessions', 'show', sessionId as string, '--json'])).output), 15_000);
    } finally {
      await client.close();
    }
  }, 90_000);

  it('answers at once, with what waits and how to approve it, when the session stops for a person\'s approval', async () => {
    const client = await stdioClient();
    try {
      const result = await client.request({ method: 'tools/call', params: { name: 'assistant', arguments: { task: '[mcp-write] Leave a note.' } } }, CallToolResultSchema, { timeout: 60_000 });
      expect(result.structuredContent).toMatchObject({ status: 'awaiting_approval', stopReason: expect.stringContaining('fs_write_file') });
      const sessionId = (result.structuredContent as { sessionId: string }).sessionId;
      expect(JSON.stringify(result.content)).toContain(`troupe sessions approve ${sessionId}`);
      // The session itself still waits for the person, hosted as before.
      const shown = await stack.troupe(['sessions', 'show', sessionId, '--json']);
      expect(shown.output).toMatch(/awaiting_approval|waiting/);
    } finally {
      await client.close();
    }
  }, 90_000);

  it('refuses an agent it does not have, and a task that is not one, as invalid params', async () => {
    const client = await stdioClient();
    try {
      await expect(client.callTool({ name: 'nobody', arguments: { task: 'x' } })).rejects.toThrow(/There is no agent "nobody"/);
      await expect(client.callTool({ name: 'assistant', arguments: { task: '' } })).rejects.toThrow(/non-empty string/);
    } finally {
      await client.close();
    }
  }, 60_000);
});

describe('troupe mcp serve over Streamable HTTP', () => {
  let server: TroupeProcess;
  let port: number;
  beforeAll(async () => {
    port = await freePort();
    server = startTroupe(['mcp', 'serve', '--http', String(port)], stack.env);
    await eventually('the MCP endpoint', async () => server.output().includes('MCP server at'), 30_000, [server]);
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('runs an agent for a client that connects over HTTP', async () => {
    const client = new Client({ name: 'troupe-test', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)));
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(expect.arrayContaining(['assistant', 'analyst']));
      const progress: string[] = [];
      const result = await client.request({ method: 'tools/call', params: { name: 'assistant', arguments: { task: 'Please compute two plus two.' } } }, CallToolResultSchema, {
        timeout: 60_000, onprogress: (p) => void progress.push(p.message ?? ''),
      });
      expect(result.structuredContent).toMatchObject({ status: 'completed' });
      expect(progress.some((line) => line.includes('calc_evaluate'))).toBe(true);
    } finally {
      await client.close();
    }
  }, 90_000);

  it('refuses to serve beyond this machine without a token', () => {
    expect(() => parseMcpServeArgs(['--http', '8080', '--host', '0.0.0.0'], {})).toThrow(/give --token/);
    expect(parseMcpServeArgs(['--http', '8080', '--host', '0.0.0.0'], { TROUPE_MCP_TOKEN: 's3cret' }).http).toMatchObject({ host: '0.0.0.0', token: 's3cret' });
  });
});
