import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { defineTool, ToolDefinitionError } from '../../tools/defineTool.ts';
import { mcpToolNames } from '../../mcp/mcpToolNames.ts';

const troupeName = (domain: string, mcpName: string) => mcpToolNames(domain, [mcpName]).troupeNameOf.get(mcpName);

/** Throws unless defineTool, which holds the rule, accepts the name. */
const assertServable = (name: string) =>
  defineTool({ name, description: 'd', input: z.object({}), output: z.unknown(), handler: () => null });

describe('mcpToolNames', () => {
  it('turns camelCase and acronyms into snake_case', () => {
    expect(troupeName('everything', 'getSum')).toBe('everything_get_sum');
    expect(troupeName('web', 'getHTTPResponseCode')).toBe('web_get_http_response_code');
    expect(troupeName('web', 'fetchV2Items')).toBe('web_fetch_v2_items');
  });

  it('turns dashes, dots, slashes and spaces into single underscores, trimmed', () => {
    expect(troupeName('everything', 'get-tiny-image')).toBe('everything_get_tiny_image');
    expect(troupeName('fs', 'files.read/v2')).toBe('fs_files_read_v2');
    expect(troupeName('fs', '--read  -- file__')).toBe('fs_read_file');
  });

  it('drops accents and names a tool with no Latin letters or digits by a hash of its MCP name', () => {
    expect(troupeName('docs', 'café-crème')).toBe('docs_cafe_creme');
    const cjk = troupeName('docs', '検索');
    expect(cjk).toMatch(/^docs_tool_[0-9a-f]{6}$/);
    expect(troupeName('docs', '翻訳')).not.toBe(cjk);
  });

  it('cuts a long name to 64 characters with a hash, so names sharing a long prefix stay apart', () => {
    const prefix = 'a'.repeat(80);
    const names = mcpToolNames('everything', [`${prefix}One`, `${prefix}Two`]);
    const one = names.troupeNameOf.get(`${prefix}One`) ?? '';
    const two = names.troupeNameOf.get(`${prefix}Two`) ?? '';
    expect(one).toHaveLength(64);
    expect(one).toMatch(/^everything_a+_[0-9a-f]{6}$/);
    expect(one).not.toBe(two);
    assertServable(one);
  });

  it('keeps the plain name for the tool already spelt that way and hashes the others that collide with it', () => {
    const names = mcpToolNames('calc', ['get_sum', 'get-sum', 'getSum', 'GET.SUM']);
    expect(names.troupeNameOf.get('get_sum')).toBe('calc_get_sum');
    const others = ['get-sum', 'getSum', 'GET.SUM'].map((n) => names.troupeNameOf.get(n));
    for (const other of others) expect(other).toMatch(/^calc_get_sum_[0-9a-f]{6}$/);
    expect(new Set(others).size).toBe(3);
  });

  it('hashes every member of a collision when none is spelt the plain way', () => {
    const names = mcpToolNames('calc', ['get-sum', 'getSum']);
    expect(names.troupeNameOf.get('get-sum')).toMatch(/^calc_get_sum_[0-9a-f]{6}$/);
    expect(names.troupeNameOf.get('getSum')).toMatch(/^calc_get_sum_[0-9a-f]{6}$/);
  });

  it('gives the same names whatever order the server lists its tools in', () => {
    const listed = ['getSum', 'get-sum', 'get_sum', 'echo', 'x'.repeat(90), '検索'];
    const forward = mcpToolNames('calc', listed).troupeNameOf;
    const backward = mcpToolNames('calc', [...listed].reverse()).troupeNameOf;
    expect([...backward].sort()).toEqual([...forward].sort());
  });

  it('maps both ways', () => {
    const names = mcpToolNames('everything', ['echo', 'get-sum']);
    expect(names.mcpNameOf.get('everything_get_sum')).toBe('get-sum');
    expect(names.mcpNameOf.get('everything_echo')).toBe('echo');
    expect(names.mcpNameOf.size).toBe(2);
  });

  it('maps any set of MCP names to distinct names defineTool accepts', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.oneof(fc.string({ unit: 'binary', maxLength: 90 }), fc.stringMatching(/^[A-Za-z0-9_.-]{1,70}$/)), { maxLength: 20 }), (mcpNames) => {
        const names = mcpToolNames('srv', mcpNames);
        expect(names.troupeNameOf.size).toBe(mcpNames.length);
        expect(names.mcpNameOf.size).toBe(mcpNames.length);
        for (const name of names.mcpNameOf.keys()) assertServable(name);
      }),
    );
  });

  it('refuses a domain that cannot prefix a tool name', () => {
    for (const domain of ['my-fs', 'my_fs', 'Files', '1fs', '', 'a'.repeat(33)]) {
      expect(() => mcpToolNames(domain, ['echo'])).toThrow(ToolDefinitionError);
    }
  });
});
