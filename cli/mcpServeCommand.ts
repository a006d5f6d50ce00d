import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import pino from 'pino';
import { mcpAgentServer, type OfferedAgent } from '../mcp/mcpAgentServer.ts';
import { createLogger } from '../observability/logger.ts';
import { loadAgents } from './agentModules.ts';
import { readEnvironment } from './environment.ts';
import { parseCommandArgs } from './inspectArgs.ts';
import { connectProcess } from './natsSettings.ts';
import { UsageError } from './usageError.ts';
import { isLoopbackHost, tokenMatches } from '../console/server/consoleHttp.ts';

const usage = `usage: troupe mcp serve [--agent NAME]… [--agents FILE] [--http PORT [--host 127.0.0.1] [--token TOKEN]]
  offers the agents as MCP tools (stdio unless --http), running their sessions on the running stack`;

const version = '0.1.0';

/** What `troupe mcp serve` was asked to do. */
export interface McpServeOptions {
  agents: string[];
  agentsFile?: string;
  http?: { port: number; host: string; token?: string };
}

export function parseMcpServeArgs(args: string[], env: NodeJS.ProcessEnv = process.env): McpServeOptions {
  const { values } = parseCommandArgs(args, {
    agent: { type: 'string', multiple: true }, agents: { type: 'string' }, http: { type: 'string' }, host: { type: 'string' }, token: { type: 'string' },
  }, usage);
  const token = values.token ?? env.TROUPE_MCP_TOKEN;
  if (values.http === undefined) {
    if (values.host !== undefined || values.token !== undefined) throw new UsageError(`--host and --token go with --http\n${usage}`);
    return { agents: values.agent ?? [], ...(values.agents ? { agentsFile: values.agents } : {}) };
  }
  const port = Number(values.http);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new UsageError(`--http takes a port number, not ${JSON.stringify(values.http)}\n${usage}`);
  const host = values.host ?? '127.0.0.1';
  // Anyone who reaches the port may start sessions that spend the deployment's budget.
  if (!isLoopbackHost(host) && !token) throw new UsageError(`--host ${host} serves the agents beyond this machine: give --token (or TROUPE_MCP_TOKEN), which clients send as "Authorization: Bearer <token>"`);
  return { agents: values.agent ?? [], ...(values.agents ? { agentsFile: values.agents } : {}), http: { port, host, ...(token ? { token } : {}) } };
}

/** `troupe mcp serve`: the deployment's agents as MCP tools, for any MCP client (see README, MCP). */
export async function mcpServeCommand(args: string[]): Promise<void> {
  const options = parseMcpServeArgs(args);
  const env = readEnvironment();
  const known = await loadAgents(env, options.agentsFile);
  const unknown = options.agents.filter((name) => !(name in known));
  if (unknown.length > 0) throw new UsageError(`There is no agent ${unknown.map((n) => `"${n}"`).join(', ')}. Agents: ${Object.keys(known).join(', ')} (add your own with --agents <file>).`);
  const offered: OfferedAgent[] = (options.agents.length > 0 ? options.agents : Object.keys(known)).map((name) => ({
    name, ...(known[name]?.description ? { description: known[name]?.description as string } : {}),
  }));
  // Over stdio, stdout is the protocol's: every log line goes to stderr.
  const logger = createLogger({ name: 'mcp-serve', level: env.LOG_LEVEL, destination: pino.destination({ dest: 2, sync: true }) });
  const nats = await connectProcess(env, { name: 'troupe-mcp-serve', logger, longRunning: true });
  const serverFor = () => mcpAgentServer({ nats, namespace: env.TROUPE_NAMESPACE, agents: offered, logger, version });
  const stop = async () => {
    await nats.drain().catch(() => undefined);
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());

  if (!options.http) {
    const transport = new StdioServerTransport();
    // The client closing stdin ends the conversation, and this process with it.
    transport.onclose = () => void stop();
    process.stdin.once('end', () => void stop());
    await serverFor().connect(transport);
    logger.info({ agents: offered.map((a) => a.name) }, 'serving the agents as MCP tools over stdio');
    return;
  }

  const { port, host, token } = options.http;
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const httpServer = createServer((req, res) => void handle(req, res).catch((error: unknown) => {
    logger.error({ err: error }, 'an MCP request failed');
    if (!res.headersSent) reply(res, 500, 'internal error');
  }));
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/mcp') return reply(res, 404, 'the MCP endpoint is /mcp');
    if (token && !bearerMatches(req.headers.authorization, token)) return reply(res, 401, 'send "Authorization: Bearer <token>"');
    const sessionHeader = req.headers['mcp-session-id'];
    const sessionId = Array.isArray(sessionHeader) ? sessionHeader[0] : sessionHeader;
    const existing = sessionId ? sessions.get(sessionId) : undefined;
    if (existing) return await existing.handleRequest(req, res);
    if (sessionId) return reply(res, 404, `no MCP session ${sessionId}: initialize again`);
    if (req.method !== 'POST') return reply(res, 400, 'start with an initialize request (POST)');
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      onsessioninitialized: (id) => void sessions.set(id, transport),
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await serverFor().connect(transport);
    await transport.handleRequest(req, res);
  };
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(port, host, () => resolve());
  });
  const address = httpServer.address();
  const shown = typeof address === 'object' && address ? `http://${host}:${address.port}/mcp` : `http://${host}:${port}/mcp`;
  logger.info({ agents: offered.map((a) => a.name), url: shown }, 'serving the agents as MCP tools over Streamable HTTP');
  process.stderr.write(`troupe: MCP server at ${shown} (agents: ${offered.map((a) => a.name).join(', ')})\n`);
}

function reply(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

function bearerMatches(header: string | undefined, token: string): boolean {
  return tokenMatches(header?.startsWith('Bearer ') ? header.slice(7) : '', token);
}
