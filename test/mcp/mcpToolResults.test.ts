import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { McpContentResult, mcpToolErrorReason, toolResultOfMcp } from '../../mcp/mcpToolResults.ts';
import { ToolError, ToolFailureCode } from '../../tools/toolFailure.ts';

// 1×1 transparent PNG: 68 bytes.
const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVR4nGNgAAIAAAUAAen63NgAAAAASUVORK5CYII=';

const weather = z.object({ temperature: z.number(), conditions: z.string() });

function thrownBy(run: () => unknown): ToolError {
  try {
    run();
  } catch (error) {
    if (error instanceof ToolError) return error;
    throw error;
  }
  throw new Error('expected a ToolError, nothing was thrown');
}

describe('toolResultOfMcp', () => {
  it('returns text blocks as text', () => {
    const result = toolResultOfMcp('everything_echo', { content: [{ type: 'text', text: 'Echo: hi' }] }, undefined);
    expect(result).toEqual({ content: [{ type: 'text', text: 'Echo: hi' }] });
  });

  it('summarises images, audio and binary resources by type, media type and size instead of their base64', () => {
    const result = toolResultOfMcp('everything_media', {
      content: [
        { type: 'text', text: 'Here is the logo:' },
        { type: 'image', data: png, mimeType: 'image/png' },
        { type: 'audio', data: 'AAAA', mimeType: 'audio/wav' },
        { type: 'resource', resource: { uri: 'file:///logo.png', mimeType: 'image/png', blob: png } },
        { type: 'resource', resource: { uri: 'file:///notes.txt', text: 'notes' } },
        { type: 'resource_link', uri: 'file:///big.csv', name: 'big.csv', mimeType: 'text/csv' },
      ],
    }, undefined);
    expect(result).toEqual({
      content: [
        { type: 'text', text: 'Here is the logo:' },
        { type: 'image', mimeType: 'image/png', bytes: 68 },
        { type: 'audio', mimeType: 'audio/wav', bytes: 3 },
        { type: 'resource', uri: 'file:///logo.png', mimeType: 'image/png', bytes: 68 },
        { type: 'resource', uri: 'file:///notes.txt', text: 'notes' },
        { type: 'resource_link', uri: 'file:///big.csv', name: 'big.csv', mimeType: 'text/csv' },
      ],
    });
    expect(McpContentResult.safeParse(result).success).toBe(true);
    expect(JSON.stringify(result)).not.toContain(png.slice(0, 20));
  });

  it('returns structured content as it is when the tool declares no output schema', () => {
    const result: CallToolResult = { content: [{ type: 'text', text: '{"rows":2}' }], structuredContent: { rows: 2 } };
    expect(toolResultOfMcp('db_count', result, undefined)).toEqual({ rows: 2 });
  });

  it('returns structured content checked against the output schema', () => {
    const result: CallToolResult = { content: [], structuredContent: { temperature: 22.5, conditions: 'Sunny' } };
    expect(toolResultOfMcp('everything_weather', result, weather)).toEqual({ temperature: 22.5, conditions: 'Sunny' });
  });

  it('fails, blaming the server, when structured content breaks the output schema', () => {
    const error = thrownBy(() => toolResultOfMcp('everything_weather', { content: [], structuredContent: { temperature: 'hot' } }, weather));
    expect(error.code).toBe(ToolFailureCode.INTERNAL);
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/^everything_weather's MCP server returned structured content that breaks the tool's own output schema: `temperature`: .*`conditions`: /);
    expect(error.details?.issues).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'temperature' })]));
  });

  it('fails when a tool with an output schema returns no structured content', () => {
    const error = thrownBy(() => toolResultOfMcp('everything_weather', { content: [{ type: 'text', text: 'sunny' }] }, weather));
    expect(error.code).toBe(ToolFailureCode.INTERNAL);
    expect(error.message).toBe('everything_weather declares an output schema but its MCP server returned no structured content.');
  });

  it('turns isError into a non-retryable INVALID_INPUT carrying the tool\'s own text', () => {
    const error = thrownBy(() => toolResultOfMcp('fs_read_file', {
      isError: true,
      content: [{ type: 'text', text: 'ENOENT: no such file' }, { type: 'text', text: 'Check the path.' }],
      structuredContent: { ignored: true },
    }, weather));
    expect(error.code).toBe(ToolFailureCode.INVALID_INPUT);
    expect(error.retryable).toBe(false);
    expect(error.message).toBe('ENOENT: no such file\nCheck the path.');
    expect(error.details).toEqual({ reason: mcpToolErrorReason });
  });

  it('says so when an isError result has no text', () => {
    const error = thrownBy(() => toolResultOfMcp('fs_read_file', { isError: true, content: [] }, undefined));
    expect(error.message).toBe('fs_read_file failed without saying why.');
  });
});
