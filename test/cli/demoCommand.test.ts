import { describe, expect, it } from 'vitest';
import { parseStackArgs } from '../../cli/demoCommand.ts';
import { UsageError } from '../../cli/usageError.ts';

describe('parseStackArgs', () => {
  it('starts no optional pool unless asked: no refund desk, no MCP example', () => {
    expect(parseStackArgs([])).toEqual({ logDir: '.troupe/logs', perDomain: 2, cluster: false, mcpExample: false, refundDesk: false, json: false });
  });

  it('takes --refund-desk for troupe up and troupe demo, beside the other options', () => {
    expect(parseStackArgs(['--refund-desk'])).toMatchObject({ refundDesk: true, mcpExample: false });
    expect(parseStackArgs(['--refund-desk', '--mcp-example', '--workers-per-domain', '1', '--json'], { json: true })).toMatchObject({ refundDesk: true, mcpExample: true, perDomain: 1, json: true });
    expect(parseStackArgs(['--refund-desk', '--console', '--console-port', '7171'])).toMatchObject({ refundDesk: true, console: { port: 7171 } });
  });

  it('refuses a value for --refund-desk and options it does not know', () => {
    expect(() => parseStackArgs(['--refund-desk=yes'])).toThrow(/--refund-desk/);
    expect(() => parseStackArgs(['--refunds'])).toThrow(/--refunds/);
  });

  it('refuses pool sizes out of range with a usage error', () => {
    expect(() => parseStackArgs(['--refund-desk', '--workers-per-domain', '0'])).toThrow(UsageError);
  });
});
