import { describe, expect, it } from 'vitest';
import { calcTools } from '../../../domains/calc/calcTools.ts';
import { callTool } from '../../fixtures/callTool.ts';
import { ToolError } from '../../../tools/toolFailure.ts';

const tools = calcTools();
const [evaluate] = tools;
const call = (args: unknown) => callTool(tools, 'calc_evaluate', args);

describe('calcTools', () => {
  it('defines calc_evaluate in the calc domain without side effects', () => {
    expect(evaluate).toMatchObject({ name: 'calc_evaluate', domain: 'calc', sideEffects: false });
  });

  it('returns the expression and its value', async () => {
    expect(await call({ expression: '6 * 7' })).toEqual({ expression: '6 * 7', result: 42 });
    expect(await call({ expression: 'round(1299 * 0.85 / 3, 2)' })).toEqual({ expression: 'round(1299 * 0.85 / 3, 2)', result: 368.05 });
  });

  it('turns an evaluation error into INVALID_INPUT carrying the position', async () => {
    const error = await call({ expression: '2 * (3 + x)' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ToolError);
    expect(error).toMatchObject({ code: 'INVALID_INPUT', retryable: false });
    expect((error as ToolError).message).toMatch(/^Unknown name "x" at position 9; allowed functions: /);
    await expect(call({ expression: '1/0' })).rejects.toMatchObject({ code: 'INVALID_INPUT', message: 'Division by zero at position 1.' });
  });

  it('lets the input schema refuse an empty or over-long expression before the handler runs', async () => {
    await expect(call({ expression: '' })).rejects.toThrow(/too_small|>=1/);
    await expect(call({ expression: '1'.repeat(1001) })).rejects.toThrow(/too_big|<=1000/);
    await expect(call({ expr: '1 + 1' })).rejects.toThrow(/expression/);
  });
});
