import { propagation, type Context } from '@opentelemetry/api';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { CallToolResultSchema, ErrorCode, McpError, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import { ToolError, ToolFailureCode } from '../tools/toolFailure.ts';

/** Where an MCP server is: a command this process starts and talks to over stdio, or a Streamable HTTP endpoint. */
export type McpServerTarget =
  | { kind: 'stdio'; command: string; args: readonly string[]; env?: Record<string, string>; cwd?: string }
  | { kind: 'http'; url: URL; headers: Readonly<Record<string, string>> };

export interface McpServerConnectionOptions {
  target: McpServerTarget;
  logger: Logger;
  /** How this client introduces itself to the server. */
  clientName: string;
  /** Called with the server's tools whenever they change (`notifications/tools/list_changed`, or a reconnect finding others). */
  onToolsChanged?: (tools: Tool[]) => void;
  /** Waits between reconnect attempts: doubling from `initialMs` up to `maxMs`, with jitter. */
  backoff?: { initialMs: number; maxMs: number };
}

/** What a call to the server carries besides its arguments. */
export interface McpCallOptions {
  /** Aborting it cancels the request on the server (`notifications/cancelled`). */
  signal: AbortSignal;
  /** Epoch ms: the request gives up then, whatever the server does. */
  deadline: number;
  /** The call's trace context, sent in `_meta` (`traceparent`) so an instrumented server joins the trace. */
  trace?: Context;
  /** The server's progress notifications for this call. */
  onProgress?: (progress: { progress: number; total?: number; message?: string }) => void;
}

const defaultBackoff = { initialMs: 200, maxMs: 5_000 };

/** The first connection could not be made: the server is not there, or not an MCP server. */
export class McpServerUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A target as a person reads it in logs and errors: the command line, or the URL without its credentials. */
export function describeMcpTarget(target: McpServerTarget): string {
  if (target.kind === 'stdio') return [target.command, ...target.args].join(' ');
  const shown = new URL(target.url);
  shown.username = '';
  shown.password = '';
  return shown.toString();
}

/**
 * One pool member's connection to its MCP server. The first connect must succeed; after that, a
 * child that dies or an HTTP session that expires is reconnected with backoff, and calls made
 * meanwhile fail at once as UNAVAILABLE (retryable: another member may take them), never hang.
 */
export class McpServerConnection {
  readonly #options: McpServerConnectionOptions;
  readonly #logger: Logger;
  #client: Client | undefined;
  #tools: Tool[] = [];
  #closing = false;
  #reconnecting: Promise<void> | undefined;

  private constructor(options: McpServerConnectionOptions) {
    this.#options = options;
    this.#logger = options.logger.child({ component: 'mcp-connection', mcpServer: describeMcpTarget(options.target) });
  }

  /** Connects and lists the server's tools; throws {@link McpServerUnreachableError} when it cannot. */
  static async open(options: McpServerConnectionOptions): Promise<McpServerConnection> {
    const connection = new McpServerConnection(options);
    try {
      await connection.#connect();
    } catch (error) {
      throw new McpServerUnreachableError(`Could not connect to the MCP server ${describeMcpTarget(options.target)}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    return connection;
  }

  /** The server's tools as last listed. */
  get tools(): readonly Tool[] {
    return this.#tools;
  }

  /** Whether calls go through right now (false while reconnecting). */
  get connected(): boolean {
    return this.#client !== undefined;
  }

  async callTool(name: string, args: Record<string, unknown>, options: McpCallOptions): Promise<CallToolResult> {
    const client = this.#client;
    if (!client) throw unavailable(`The MCP server ${describeMcpTarget(this.#options.target)} is reconnecting; the call was not sent.`);
    const meta: Record<string, string> = {};
    if (options.trace) propagation.inject(options.trace, meta);
    try {
      // A plain request, not client.callTool: that checks structuredContent against the outputSchema
      // itself and reports a mismatch as invalid params, blaming the model's arguments for the server's answer.
      const params = { name, arguments: args, ...(Object.keys(meta).length > 0 ? { _meta: meta } : {}) };
      const result = await client.request({ method: 'tools/call', params }, CallToolResultSchema, {
        signal: options.signal,
        // The SDK's own default (60 s) would outlive or cut short the call's deadline.
        timeout: Math.max(1, options.deadline - Date.now()),
        ...(options.onProgress ? { onprogress: options.onProgress } : {}),
      });
      return result as CallToolResult;
    } catch (error) {
      // A call given up on (its deadline, a cancelled session) says nothing about the connection.
      if (!options.signal.aborted && isConnectionFailure(error)) {
        this.#lost(client, error);
        throw unavailable(`The connection to the MCP server ${describeMcpTarget(this.#options.target)} failed during the call: ${error instanceof Error ? error.message : String(error)}`, error);
      }
      throw error;
    }
  }

  async close(): Promise<void> {
    this.#closing = true;
    const client = this.#client;
    this.#client = undefined;
    await client?.close().catch(() => undefined);
    await this.#reconnecting?.catch(() => undefined);
  }

  async #connect(): Promise<void> {
    const client = new Client({ name: this.#options.clientName, version: '1' }, {
      listChanged: {
        tools: {
          onChanged: (error, tools) => {
            if (error) this.#logger.warn({ err: error }, 'the MCP server said its tools changed, but listing them failed');
            else if (tools) this.#setTools(tools);
          },
        },
      },
    });
    const transport = this.#transport();
    client.onclose = () => this.#lost(client, new Error('the connection closed'));
    await client.connect(transport);
    const { tools } = await client.listTools();
    this.#client = client;
    this.#setTools(tools);
    this.#logger.info({ tools: tools.map((t) => t.name) }, 'connected to the MCP server');
  }

  #transport(): Transport {
    const { target } = this.#options;
    if (target.kind === 'http') return new StreamableHTTPClientTransport(target.url, { requestInit: { headers: { ...target.headers } } });
    return new StdioClientTransport({
      command: target.command, args: [...target.args],
      ...(target.env ? { env: target.env } : {}), ...(target.cwd ? { cwd: target.cwd } : {}),
      // The server's own log lines go to this worker's stderr, beside its own logs.
      stderr: 'inherit',
    });
  }

  #setTools(tools: Tool[]): void {
    const before = JSON.stringify(this.#tools);
    this.#tools = tools;
    if (before !== JSON.stringify(tools) && before !== '[]') this.#options.onToolsChanged?.(tools);
  }

  /** The connection `client` is gone: reconnect in the background, once, unless closing. */
  #lost(client: Client, cause: unknown): void {
    if (this.#client !== client || this.#closing) return;
    this.#client = undefined;
    this.#logger.warn({ err: cause }, 'lost the MCP server; reconnecting');
    void client.close().catch(() => undefined);
    this.#reconnecting ??= this.#reconnect().finally(() => {
      this.#reconnecting = undefined;
    });
  }

  async #reconnect(): Promise<void> {
    const { initialMs, maxMs } = this.#options.backoff ?? defaultBackoff;
    for (let attempt = 0; !this.#closing; attempt++) {
      const waitMs = Math.min(maxMs, initialMs * 2 ** attempt) * (0.5 + Math.random() / 2);
      await new Promise((resolve) => setTimeout(resolve, waitMs));
      if (this.#closing) return;
      try {
        await this.#connect();
        this.#logger.info({ attempt: attempt + 1 }, 'reconnected to the MCP server');
        return;
      } catch (error) {
        this.#logger.warn({ err: error, attempt: attempt + 1 }, 'could not reconnect to the MCP server yet');
      }
    }
  }
}

function unavailable(message: string, cause?: unknown): ToolError {
  return new ToolError(ToolFailureCode.UNAVAILABLE, message, { retryable: true, ...(cause !== undefined ? { cause } : {}) });
}

/**
 * Whether a failed request means the connection itself is gone (a closed stdio pipe, an expired
 * HTTP session, a refused connection), as opposed to the server answering with an error.
 */
function isConnectionFailure(error: unknown): boolean {
  if (error instanceof McpError) return error.code === ErrorCode.ConnectionClosed;
  if (error instanceof Error && error.name === 'AbortError') return false;
  // Anything else thrown by the transport (fetch failing, a 404 for a session the server forgot).
  return true;
}
