import { execSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToolCatalog } from '../../actors/toolCalls/toolCatalog.ts';
import { approveSession, startSession } from '../../client/sessionClient.ts';
import type { SessionEvent } from '../../transport/messages.ts';
import { freePort } from '../../testing/natsServer.ts';
import { ensureConsoleAppBuilt } from '../fixtures/consoleApp.ts';
import { ofType } from '../fixtures/eventsOfType.ts';
import { startProcessStack, type ProcessStack } from '../fixtures/processStack.ts';
import { eventually, startTroupe, type TroupeProcess } from '../fixtures/troupeProcess.ts';

const testScripts = fileURLToPath(new URL('../fixtures/scripts/', import.meta.url));

/**
 * MCP servers from the npm registry served as Troupe pools: each `troupe worker <domain> --mcp`
 * process starts its own server over stdio, and sessions call its tools through NATS.
 */

const serverScript = (name: string) => fileURLToPath(new URL(`../../node_modules/@modelcontextprotocol/${name}/dist/index.js`, import.meta.url));
const everything = serverScript('server-everything');
const filesystem = serverScript('server-filesystem');
const growingServer = fileURLToPath(new URL('../fixtures/mcp/growingServer.ts', import.meta.url));

let stack: ProcessStack;
let everythingPool: TroupeProcess;
const fsRoot = mkdtempSync(join(tmpdir(), 'troupe-mcp-fs-'));

beforeAll(async () => {
  stack = await startProcessStack();
  everythingPool = await stack.startWorker('everything', {}, ['--mcp', '--', process.execPath, everything, 'stdio']);
  await stack.startWorker('fs', {}, ['--mcp', '--', process.execPath, filesystem, fsRoot]);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

async function run(task: string, onEvent: (event: SessionEvent, sessionId: string) => void | Promise<void> = () => {}) {
  const session = await startSession(stack.client, { namespace: stack.namespace, task });
  const events: SessionEvent[] = [];
  for await (const event of session.events) {
    events.push(event);
    await onEvent(event, session.sessionId);
  }
  return { events, finished: await session.finished };
}

/** The MCP server children of a worker process, by their command line. */
function mcpChildrenOf(worker: TroupeProcess): number[] {
  return execSync('ps -eo pid=,ppid=').toString().split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number))
    .filter(([pid, ppid]) => pid !== undefined && pid > 0 && ppid === worker.child.pid)
    .map(([pid]) => pid as number);
}

describe('an MCP server as a pool', () => {
  it('serves the reference server\'s tools under <domain>_<tool>: a bad argument is refused by the schema, a good call answers', async () => {
    const { events, finished } = await run('[mcp-sum] Add two and three.');
    expect(finished, JSON.stringify(finished)).toMatchObject({ status: 'completed', output: expect.stringMatching(/^The server says: .*5/) });
    const [rejected] = ofType(events, 'tool.call.rejected');
    expect(rejected).toMatchObject({ tool: 'everything_get_sum' });
    const finishedCalls = ofType(events, 'tool.call.finished');
    expect(finishedCalls.map((call) => [call.tool, call.status])).toEqual([['everything_get_sum', 'ok']]);
  }, 60_000);

  it('passes the server\'s progress notifications on as the session\'s tool.call.progress events', async () => {
    const { events, finished } = await run('[mcp-long-run] Take a while.');
    expect(finished, JSON.stringify(finished)).toMatchObject({ status: 'completed', output: expect.stringContaining('Long running operation completed') });
    const progress = ofType(events, 'tool.call.progress');
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress[0]).toMatchObject({ tool: 'everything_trigger_long_running_operation', total: 4 });
    expect(progress.map((p) => p.progress)).toEqual([...progress.map((p) => p.progress)].sort((a, b) => a - b));
  }, 60_000);

  it('hands the model the server\'s own errors (a missing file, a path outside its sandbox) as failures it can act on', async () => {
    const { events, finished } = await run('[mcp-read-missing] Read two files.');
    expect(finished.status).toBe('completed');
    const failures = ofType(events, 'tool.call.finished').map((call) => [call.tool, call.status, call.failure?.code]);
    expect(failures).toEqual([['fs_read_text_file', 'error', 'INVALID_INPUT'], ['fs_read_text_file', 'error', 'INVALID_INPUT']]);
    const messages = ofType(events, 'tool.call.finished').map((call) => call.failure?.message ?? '').join('\n');
    expect(messages).toMatch(/ENOENT|no such file/i);
    expect(messages).toMatch(/Access denied|outside allowed/i);
  }, 60_000);

  it('recovers a killed MCP child: the member reconnects, and the next session\'s call succeeds', async () => {
    const [child] = mcpChildrenOf(everythingPool);
    expect(child).toBeGreaterThan(0);
    process.kill(child as number, 'SIGKILL');
    await eventually('a new MCP child', async () => mcpChildrenOf(everythingPool).some((pid) => pid !== child), 20_000);
    const { events, finished } = await run('[mcp-sum] Add two and three, again.');
    expect(finished, JSON.stringify(events.filter((e) => e.type.startsWith('tool.call')))).toMatchObject({ status: 'completed', output: expect.stringMatching(/5/) });
  }, 60_000);

  it('asks a person before a destructive tool (the filesystem server\'s write_file) runs, then writes inside its sandbox', async () => {
    let approved = false;
    const { events, finished } = await run('[mcp-write] Leave a note.', async (event, sessionId) => {
      if (event.type === 'approval.requested' && !approved) {
        approved = true;
        await approveSession(stack.client, sessionId, { namespace: stack.namespace, by: 'ada' });
      }
    });
    expect(ofType(events, 'approval.requested')[0]?.calls.map((call) => call.tool)).toEqual(['fs_write_file']);
    expect(finished, JSON.stringify(finished)).toMatchObject({ status: 'completed', output: expect.stringContaining('Successfully wrote to note.txt') });
    expect(readFileSync(join(fsRoot, 'note.txt'), 'utf8')).toBe('written through MCP');
  }, 60_000);
});

describe('an MCP server whose tools change, as a pool', () => {
  it('serves the tools the server adds (list_changed) to every orchestrator, and passes the session\'s trace context in _meta', async () => {
    await stack.startWorker('growing', {}, ['--mcp', '--', process.execPath, growingServer]);
    const { finished } = await run('[mcp-grow] Grow, then show the trace context.');
    expect(finished, JSON.stringify(finished)).toMatchObject({ status: 'completed' });
    // The MCP server saw the call's W3C trace context, in the session's own trace: it can join it.
    expect(finished.output).toMatch(new RegExp(`^traceparent 00-${finished.traceId}-[0-9a-f]{16}-0[01]$`));
    const catalog = new ToolCatalog({ nats: stack.client, namespace: stack.namespace, quietPeriodMs: 100 });
    try {
      await eventually('growing_grown_1 in the catalog', async () => {
        await catalog.refresh();
        return catalog.get('growing_grown_1') !== undefined;
      }, 20_000);
    } finally {
      catalog.stop();
    }
  }, 60_000);
});

describe('an MCP server over Streamable HTTP as a pool', () => {
  it('calls its tools, and rides out the server restarting (its session gone): the member opens a new one', async () => {
    const port = await freePort();
    const startServer = () => spawn(process.execPath, [everything, 'streamableHttp'], { env: { ...process.env, PORT: String(port) }, stdio: 'ignore' });
    const url = `http://127.0.0.1:${port}/mcp`;
    const listening = () => eventually('the HTTP MCP server', async () => (await fetch(url, { method: 'GET' }).catch(() => undefined)) !== undefined, 15_000);
    let server = startServer();
    try {
      await listening();
      await stack.startWorker('everythinghttp', {}, ['--mcp-url', url, '--mcp-header', 'X-Troupe-Test: yes']);
      const first = await run('[mcp-sum-http] Add two and three.');
      expect(first.finished, JSON.stringify(first.finished)).toMatchObject({ status: 'completed', output: expect.stringMatching(/5/) });

      server.kill('SIGKILL');
      await new Promise((resolve) => server.once('exit', resolve));
      server = startServer();
      await listening();
      const second = await run('[mcp-sum-http] Add two and three, after the restart.');
      expect(second.finished, JSON.stringify(second.events.filter((e) => e.type.startsWith('tool.call')))).toMatchObject({ status: 'completed', output: expect.stringMatching(/5/) });
    } finally {
      server.kill('SIGKILL');
    }
  }, 90_000);
});

describe('troupe up --mcp-example --console', () => {
  it('adds the everything pool, backed by the reference MCP server, whose tools the assistant can use; the console it prints shows the session', async () => {
    ensureConsoleAppBuilt();
    const consolePort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'troupe-up-mcp-'));
    const env = { NATS_URL: stack.nats.url, TROUPE_NAMESPACE: `${stack.namespace}-up`, OPENAI_BASE_URL: '', OPENAI_API_KEY: '', TROUPE_WORKSPACE: dir, TROUPE_SCRIPTS: testScripts };
    const up = startTroupe(['up', '--mcp-example', '--console', '--console-port', String(consolePort), '--workers-per-domain', '1', '--log-dir', join(dir, 'logs')], env);
    try {
      await eventually('the stack up', async () => up.output().includes('ready. In another terminal'), 120_000, [up]);
      expect(up.output()).toMatch(/started 1 member of the everything pool, each serving its own reference MCP server/);
      const run = startTroupe(['run', '--json', '[mcp-sum] Add two and three.'], env);
      expect(await run.exited, run.output().slice(-2000)).toBe(0);
      expect(run.output()).toMatch(/"status":\s*"completed"/);
      expect(up.output()).toContain(`operator console: http://127.0.0.1:${consolePort}/`);
      const sessionId = /"sessionId":\s*"([^"]+)"/.exec(run.output())?.[1];
      const listed = (await (await fetch(`http://127.0.0.1:${consolePort}/api/sessions`)).json()) as { sessions: Array<{ sessionId: string }> };
      expect(listed.sessions.map((s) => s.sessionId)).toContain(sessionId);
    } finally {
      await up.stop();
    }
  }, 180_000);
});
