import type { McpServerTarget } from '../mcp/mcpServerConnection.ts';
import { UsageError } from './usageError.ts';

export const mcpWorkerUsage = `       troupe worker <domain> --mcp -- <command> [args…]      serve the MCP server that command starts (stdio) as the <domain> pool
       troupe worker <domain> --mcp-url <url> [--mcp-header "Name: value"]…   serve an MCP server over Streamable HTTP
                                                (--mcp-no-approval: its destructive tools run without a person's approval)`;

/** What `troupe worker` was told about an MCP server, as parsed by node:util parseArgs. */
export interface McpWorkerFlags {
  mcp?: boolean | undefined;
  'mcp-url'?: string | undefined;
  'mcp-header'?: string[] | undefined;
}

const headerLine = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):\s*(.*)$/;

/**
 * The MCP server a `troupe worker <domain>` serves, or undefined when it serves no MCP server.
 * `command` is what followed the domain (after `--`); `envHeaders` are `TROUPE_MCP_HEADERS`, which
 * keep credentials out of the process list, and `--mcp-header` lines override them by name.
 */
export function mcpTargetOf(flags: McpWorkerFlags, command: readonly string[], envHeaders: Readonly<Record<string, string>> = {}): McpServerTarget | undefined {
  const url = flags['mcp-url'];
  const headerFlags = flags['mcp-header'] ?? [];
  if (!flags.mcp && url === undefined) {
    if (headerFlags.length > 0) throw new UsageError(`--mcp-header goes with --mcp-url\n${mcpWorkerUsage}`);
    if (command.length > 0) throw new UsageError(`troupe worker takes one domain; to serve an MCP server, put --mcp before the command: troupe worker <domain> --mcp -- ${command.join(' ')}`);
    return undefined;
  }
  if (flags.mcp && url !== undefined) throw new UsageError(`--mcp starts a server and --mcp-url reaches one: give one of them\n${mcpWorkerUsage}`);
  if (flags.mcp) {
    const [program, ...args] = command;
    if (program === undefined) throw new UsageError(`--mcp needs the server's command after --, e.g. troupe worker fs --mcp -- npx @modelcontextprotocol/server-filesystem /data\n${mcpWorkerUsage}`);
    if (headerFlags.length > 0) throw new UsageError(`--mcp-header goes with --mcp-url: a server started over stdio takes no HTTP headers\n${mcpWorkerUsage}`);
    return { kind: 'stdio', command: program, args };
  }
  if (command.length > 0) throw new UsageError(`--mcp-url reaches a running server: drop the command ${JSON.stringify(command.join(' '))}\n${mcpWorkerUsage}`);
  let parsed: URL;
  try {
    parsed = new URL(url as string);
  } catch {
    throw new UsageError(`--mcp-url must be an http(s) URL, not ${JSON.stringify(url)}\n${mcpWorkerUsage}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`--mcp-url must be an http(s) URL, not ${JSON.stringify(url)}\n${mcpWorkerUsage}`);
  const headers: Record<string, string> = { ...envHeaders };
  for (const line of headerFlags) {
    const match = headerLine.exec(line);
    if (!match) throw new UsageError(`--mcp-header takes "Name: value", not ${JSON.stringify(line)}\n${mcpWorkerUsage}`);
    const name = match[1] as string;
    for (const existing of Object.keys(headers)) if (existing.toLowerCase() === name.toLowerCase()) delete headers[existing];
    headers[name] = match[2] as string;
  }
  return { kind: 'http', url: parsed, headers };
}
