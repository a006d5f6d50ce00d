import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import { startWorker, type ToolWorker, type WorkerOptions } from '../actors/worker/toolWorker.ts';
import { silentLogger } from '../observability/logger.ts';
import { McpServerConnection, describeMcpTarget, type McpServerTarget } from './mcpServerConnection.ts';
import { mcpToolDefinitions, type McpToolMapping, type McpToolMappingOptions } from './mcpToolMapping.ts';

export interface McpPoolOptions extends Omit<WorkerOptions, 'tools'> {
  /** The MCP server this member owns a connection to. */
  target: McpServerTarget;
  /** How its tools become Troupe tools (timeouts, approval of destructive tools). */
  mapping?: McpToolMappingOptions;
  /** Waits between reconnects to the server. */
  backoff?: { initialMs: number; maxMs: number };
}

/** One member of a pool backed by an MCP server. */
export interface McpPool {
  readonly domain: string;
  /** The tools as served now: Troupe names, MCP names and the warnings of their mapping. */
  mapping(): McpToolMapping;
  /** Stops serving (draining calls in flight) and closes the connection to the MCP server. */
  stop(): Promise<void>;
}

/**
 * Serves an MCP server's tools as the `domain` pool's member: one connection to the server per
 * member (start more processes to scale), each tool as `<domain>_<tool>`. When the server's tools
 * change, the member serves the new set: it drains the old service and starts one with the new
 * tools, whose announcement refreshes the orchestrators' catalogs.
 */
export async function startMcpPool(options: McpPoolOptions): Promise<McpPool> {
  const { target, mapping: mappingOptions = {}, backoff, ...workerOptions } = options;
  const logger: Logger = (options.logger ?? silentLogger()).child({ mcpServer: describeMcpTarget(target) });
  let connection: McpServerConnection | undefined;
  let worker: ToolWorker | undefined;
  let mapping: McpToolMapping | undefined;
  let stopped = false;
  // Changes are served one after the other: a second list may arrive while the first is being served.
  let changes: Promise<void> = Promise.resolve();

  const mapped = (tools: readonly Tool[], server: McpServerConnection): McpToolMapping => {
    const made = mcpToolDefinitions(options.domain, tools, (mcpName, args, context) =>
      server.callTool(mcpName, args, {
        signal: context.signal, deadline: context.deadline, trace: context.trace,
        // Asked of the server only when the caller listens: a progress token makes some servers do more work.
        ...(context.reportProgress ? { onProgress: (progress) => context.reportProgress?.(progress) } : {}),
      }), mappingOptions);
    for (const warning of made.warnings) logger.warn({ mcpTool: warning.mcpName }, `MCP tool not served as declared: ${warning.message}`);
    logger.info({ tools: Object.fromEntries(made.names.troupeNameOf) }, 'serving the MCP server\'s tools (MCP name → Troupe name)');
    return made;
  };
  const serve = async (tools: readonly Tool[], server: McpServerConnection): Promise<void> => {
    const next = mapped(tools, server);
    if (next.definitions.length === 0) {
      logger.error('the MCP server lists no tools: still serving the ones it listed before');
      return;
    }
    const previous = worker;
    // The new service answers before the old one drains, so no call meets a member serving nothing;
    // orchestrators take a changed definition only once no member still advertises the old one.
    worker = await startWorker({ ...workerOptions, tools: next.definitions, logger });
    mapping = next;
    await previous?.stop();
  };

  connection = await McpServerConnection.open({
    target, logger, clientName: `troupe-${options.domain}`,
    ...(backoff ? { backoff } : {}),
    onToolsChanged: (tools) => {
      changes = changes.then(async () => {
        if (stopped || !connection) return;
        logger.info({ tools: tools.map((t) => t.name) }, 'the MCP server\'s tools changed');
        await serve(tools, connection);
      }).catch((error: unknown) => logger.error({ err: error }, 'could not serve the MCP server\'s new tools'));
    },
  });
  try {
    await serve(connection.tools, connection);
  } catch (error) {
    await connection.close();
    throw error;
  }
  return {
    domain: options.domain,
    mapping: () => mapping as McpToolMapping,
    async stop() {
      stopped = true;
      await changes;
      await worker?.stop();
      await connection?.close();
    },
  };
}
