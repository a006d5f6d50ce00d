import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { McpServerConnection, McpServerUnreachableError, type McpServerTarget } from '../../mcp/mcpServerConnection.ts';
import { silentLogger } from '../../observability/logger.ts';
import { freePort } from '../../testing/natsServer.ts';
import { ToolError } from '../../tools/toolFailure.ts';
import { eventually } from '../fixtures/troupeProcess.ts';

/** The reference server from the npm registry, run with this Node: no npx, no network. */
const everything = fileURLToPath(new URL('../../node_modules/@modelcontextprotocol/server-everything/dist/index.js', import.meta.url));
const stdioTarget: McpServerTarget = { kind: 'stdio', command: process.execPath, args: [everything, 'stdio'] };

const opened: McpServerConnection[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const connection of opened.splice(0)) await connection.close();
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

async function open(target: McpServerTarget, onToolsChanged?: (names: string[]) => void): Promise<McpServerConnection> {
  const connection = await McpServerConnection.open({
    target, logger: silentLogger(), clientName: 'troupe-test', backoff: { initialMs: 50, maxMs: 200 },
    ...(onToolsChanged ? { onToolsChanged: (tools) => onToolsChanged(tools.map((t) => t.name)) } : {}),
  });
  opened.push(connection);
  return connection;
}

const call = (connection: McpServerConnection, name: string, args: Record<string, unknown>, extra: { signal?: AbortSignal; onProgress?: (p: { progress: number; total?: number }) => void } = {}) =>
  connection.callTool(name, args, { signal: extra.signal ?? new AbortController().signal, deadline: Date.now() + 20_000, ...(extra.onProgress ? { onProgress: extra.onProgress } : {}) });

/** The stdio servers' pids, found in the process table by their command line. */
function serverPids(): number[] {
  const wanted = `${process.execPath} ${everything} stdio`;
  return execSync('ps -eo pid=,args=').toString().split('\n')
    .map((line) => /^\s*(\d+)\s+(.*)$/.exec(line))
    .filter((match) => match?.[2] === wanted)
    .map((match) => Number(match?.[1]));
}

describe('McpServerConnection over stdio, to the reference server', () => {
  it('lists the tools and calls one', async () => {
    const connection = await open(stdioTarget);
    expect(connection.tools.map((t) => t.name)).toEqual(expect.arrayContaining(['echo', 'get-sum', 'trigger-long-running-operation']));
    const result = await call(connection, 'echo', { message: 'hello' });
    expect(JSON.stringify(result.content)).toContain('hello');
  }, 30_000);

  it('passes progress notifications on, and cancels a call when its signal aborts', async () => {
    const connection = await open(stdioTarget);
    const progress: number[] = [];
    await call(connection, 'trigger-long-running-operation', { duration: 0.3, steps: 3 }, { onProgress: (p) => progress.push(p.progress) });
    // The last notification may arrive after the result, when nobody listens for it any more.
    expect(progress.slice(0, 2)).toEqual([1, 2]);
    const abort = new AbortController();
    const started = Date.now();
    const cancelled = call(connection, 'trigger-long-running-operation', { duration: 10, steps: 2 }, { signal: abort.signal });
    setTimeout(() => abort.abort(new Error('the deadline passed')), 200);
    await expect(cancelled).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(5_000);
    // The connection is still good after a cancelled call.
    expect(JSON.stringify((await call(connection, 'echo', { message: 'still here' })).content)).toContain('still here');
  }, 30_000);

  it('fails calls at once as UNAVAILABLE while its child is gone, and reconnects to a new one', async () => {
    const connection = await open(stdioTarget);
    const before = serverPids();
    expect(before.length).toBeGreaterThan(0);
    for (const pid of before) process.kill(pid, 'SIGKILL');
    await eventually('the connection noticing', async () => !connection.connected, 10_000);
    const failed = await call(connection, 'echo', { message: 'x' }).then(() => undefined, (error: unknown) => error);
    expect(failed).toBeInstanceOf(ToolError);
    expect(failed).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    await eventually('the connection back', async () => connection.connected, 15_000);
    expect(JSON.stringify((await call(connection, 'echo', { message: 'back' })).content)).toContain('back');
    expect(serverPids().some((pid) => !before.includes(pid))).toBe(true);
  }, 40_000);

  it('refuses to open on a command that is not an MCP server, saying which', async () => {
    await expect(McpServerConnection.open({ target: { kind: 'stdio', command: process.execPath, args: ['-e', 'process.exit(3)'] }, logger: silentLogger(), clientName: 'troupe-test' }))
      .rejects.toThrow(McpServerUnreachableError);
  }, 30_000);
});

describe('McpServerConnection over Streamable HTTP, to the reference server', () => {
  it('calls a tool with the headers it was given', async () => {
    const port = await freePort();
    const server = spawn(process.execPath, [everything, 'streamableHttp'], { env: { ...process.env, PORT: String(port) }, stdio: 'ignore' });
    children.push(server);
    const url = new URL(`http://127.0.0.1:${port}/mcp`);
    await eventually('the HTTP server', async () => (await fetch(url, { method: 'GET' }).catch(() => undefined)) !== undefined, 15_000);
    const connection = await open({ kind: 'http', url, headers: { authorization: 'Bearer test' } });
    const result = await call(connection, 'get-sum', { a: 2, b: 3 });
    expect(JSON.stringify(result.content)).toContain('5');
  }, 30_000);
});
