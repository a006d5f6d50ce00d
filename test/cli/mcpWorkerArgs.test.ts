import { describe, expect, it } from 'vitest';
import { mcpTargetOf } from '../../cli/mcpWorkerArgs.ts';
import { UsageError } from '../../cli/usageError.ts';

describe('mcpTargetOf', () => {
  it('reads a server to start over stdio from what follows --', () => {
    expect(mcpTargetOf({ mcp: true }, ['npx', '@modelcontextprotocol/server-filesystem', '/data'])).toEqual({ kind: 'stdio', command: 'npx', args: ['@modelcontextprotocol/server-filesystem', '/data'] });
    expect(mcpTargetOf({}, [])).toBeUndefined();
  });

  it('reads a Streamable HTTP server with headers, the flags over TROUPE_MCP_HEADERS by name whatever their case', () => {
    const target = mcpTargetOf({ 'mcp-url': 'https://tools.example.com/mcp', 'mcp-header': ['authorization: Bearer flag', 'X-Team:  blue'] }, [], { Authorization: 'Bearer env', 'X-Tenant': 'acme' });
    expect(target).toEqual({ kind: 'http', url: new URL('https://tools.example.com/mcp'), headers: { 'X-Tenant': 'acme', authorization: 'Bearer flag', 'X-Team': 'blue' } });
  });

  it('refuses what cannot be served, saying why', () => {
    const refused = (flags: Parameters<typeof mcpTargetOf>[0], command: string[] = []) => () => mcpTargetOf(flags, command);
    expect(refused({ mcp: true })).toThrow(/--mcp needs the server's command after --/);
    expect(refused({ mcp: true, 'mcp-url': 'http://x/mcp' })).toThrow(/give one of them/);
    expect(refused({ 'mcp-url': 'ftp://x/mcp' })).toThrow(/an http\(s\) URL/);
    expect(refused({ 'mcp-url': 'not a url' })).toThrow(/an http\(s\) URL/);
    expect(refused({ 'mcp-url': 'http://x/mcp', 'mcp-header': ['no colon'] })).toThrow(/"Name: value"/);
    expect(refused({ 'mcp-url': 'http://x/mcp' }, ['node', 'server.js'])).toThrow(/drop the command/);
    expect(refused({ mcp: true, 'mcp-header': ['A: b'] }, ['node'])).toThrow(/goes with --mcp-url/);
    expect(refused({}, ['node', 'server.js'])).toThrow(/put --mcp before the command/);
    expect(refused({ 'mcp-header': ['A: b'] })).toThrow(UsageError);
  });
});
