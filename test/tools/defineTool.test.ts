import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { defineTool, ToolDefinitionError } from '../../tools/defineTool.ts';

const spec = {
  name: 'calc_twice',
  description: 'Doubles a number.',
  input: z.object({ n: z.number() }),
  output: z.object({ n: z.number() }),
  handler: ({ n }: { n: number }) => ({ n: n * 2 }),
};

describe('defineTool', () => {
  it('takes the default timeout of 30 s when the tool sets none', () => {
    expect(defineTool(spec).timeoutMs).toBe(30_000);
  });

  // Regression: a timeoutMs over 2^31−1 ms made every call's timers fire at once, so each call timed out immediately.
  it('refuses a timeoutMs longer than a timer can wait, naming the tool and the bound', () => {
    expect(defineTool({ ...spec, timeoutMs: 2_147_483_647 }).timeoutMs).toBe(2_147_483_647);
    expect(() => defineTool({ ...spec, timeoutMs: 2_147_483_648 })).toThrow(ToolDefinitionError);
    expect(() => defineTool({ ...spec, timeoutMs: 30 * 24 * 3_600_000 })).toThrow(
      'Tool "calc_twice" has timeoutMs 2592000000; it must be at most 2147483647 ms (about 24.8 days), the longest delay a timer can wait.',
    );
  });
});
