import * as z from 'zod';
import { defineTool, type ToolDefinition } from '../../tools/defineTool.ts';
import { ToolError, ToolFailureCode } from '../../tools/toolFailure.ts';
import { ArithmeticError, evaluateArithmetic, maxExpressionLength } from './arithmetic.ts';

/**
 * The `calc` domain: one tool, `calc_evaluate`, backed by {@link evaluateArithmetic}. A bad
 * expression fails with INVALID_INPUT and the evaluator's message, which names the position, so the
 * model can correct it; the tool has no side effects and no state.
 */
export function calcTools(): ToolDefinition[] {
  const evaluate = defineTool({
    name: 'calc_evaluate',
    description:
      'Evaluates an arithmetic expression exactly as written and returns the number. Supports + - * / % and ^ (power), ' +
      'parentheses, sqrt, abs, round(x, digits), floor, ceil, min, max, ln, log10, exp, pow(x, y) and the constants pi and e. ' +
      'Use it instead of doing arithmetic in your head.',
    input: z.object({
      expression: z.string().min(1).max(maxExpressionLength).describe('For example "round(1299 * 0.85 / 3, 2)".'),
    }),
    output: z.object({ expression: z.string(), result: z.number() }),
    handler: ({ expression }) => {
      try {
        return { expression, result: evaluateArithmetic(expression) };
      } catch (error) {
        if (error instanceof ArithmeticError) {
          throw new ToolError(ToolFailureCode.INVALID_INPUT, `${error.message}.`, { cause: error });
        }
        throw error;
      }
    },
  });
  return [evaluate];
}
