import { describe, expect, it } from 'vitest';
import { ArithmeticError, evaluateArithmetic, maxExpressionLength, maxNestingDepth } from '../../../domains/calc/arithmetic.ts';

function errorOf(expression: string): ArithmeticError {
  try {
    evaluateArithmetic(expression);
  } catch (error) {
    if (error instanceof ArithmeticError) return error;
    throw error;
  }
  throw new Error(`"${expression}" evaluated without an error`);
}

describe('evaluateArithmetic', () => {
  it.each([
    ['1 + 2 * 3', 7],
    ['(1 + 2) * 3', 9],
    ['10 - 4 - 3', 3],
    ['100 / 10 / 5', 2],
    ['7 % 4 * 2', 6],
    ['2 ^ 3 ^ 2', 512],
    ['(2 ^ 3) ^ 2', 64],
    ['2 * 3 ^ 2', 18],
    ['-2 ^ 2', -4],
    ['(-2) ^ 2', 4],
    ['2 ^ -1', 0.5],
    ['-3 + +5', 2],
    ['--3', 3],
    ['4 * -(1 + 1)', -8],
    ['1e3 + 2.5E-1 + .5 + 3.', 1003.75],
  ])('evaluates %s to %d', (expression, expected) => {
    expect(evaluateArithmetic(expression)).toBe(expected);
  });

  it('applies functions and constants', () => {
    expect(evaluateArithmetic('sqrt(16) + abs(-2) + floor(2.7) + ceil(2.1)')).toBe(11);
    expect(evaluateArithmetic('min(3, 1, 2) * max(4, 9, 5)')).toBe(9);
    expect(evaluateArithmetic('pow(2, 10)')).toBe(1024);
    expect(evaluateArithmetic('ln(e) + log10(1000) + exp(0)')).toBe(5);
    expect(evaluateArithmetic('round(pi, 4)')).toBe(3.1416);
    expect(evaluateArithmetic('round(2.5) + round(-2.5)')).toBe(0);
    expect(evaluateArithmetic('round(1.005, 2)')).toBe(1.01);
    expect(evaluateArithmetic('round(1234.5, -2)')).toBe(1200);
    expect(evaluateArithmetic('2 * PI')).toBe(2 * Math.PI);
  });

  it('names the unexpected character and its position', () => {
    const error = errorOf('1 + a$');
    expect(error.message).toBe('Unknown name "a" at position 4; allowed functions: sqrt, abs, round, floor, ceil, min, max, ln, log10, exp, pow; constants: pi, e');
    expect(errorOf('2 + 3 # 4')).toMatchObject({ message: 'Unexpected character "#" at position 6', position: 6 });
    expect(errorOf('(1 + 2')).toMatchObject({ position: 6 });
    expect(errorOf('1 + 2)')).toMatchObject({ message: 'Unexpected ")" at position 5', position: 5 });
    expect(errorOf('2pi')).toMatchObject({ message: 'Malformed number "2pi" at position 0' });
    expect(errorOf('1.2.3').message).toMatch(/Malformed number/);
  });

  it('checks function arity and use', () => {
    expect(errorOf('pow(2)').message).toMatch(/^pow takes 2 arguments but got 1/);
    expect(errorOf('round(1, 2, 3)').message).toMatch(/^round takes 1 to 2 arguments but got 3/);
    expect(errorOf('sqrt + 1').message).toMatch(/"sqrt" is a function/);
    expect(errorOf('round(1, 0.5)').message).toMatch(/digits must be a whole number/);
  });

  it.each([
    ['process.exit()', 0, /Unknown name "process"/],
    ['constructor', 0, /Unknown name "constructor"/],
    ['__proto__', 0, /Unknown name "__proto__"/],
    ['toString(1)', 0, /Unknown name "toString"/],
    ['1;2', 1, /Unexpected character ";"/],
    ['a=1', 0, /Unknown name "a"/],
    ['1 = 1', 2, /Unexpected character "="/],
    ['"1"', 0, /Unexpected character/],
  ])('refuses %s', (expression, position, message) => {
    const error = errorOf(expression);
    expect(error.position).toBe(position);
    expect(error.message).toMatch(message);
  });

  it('refuses empty input', () => {
    expect(errorOf('')).toMatchObject({ message: 'The expression is empty', position: 0 });
    expect(errorOf('   ').message).toBe('The expression is empty');
    expect(errorOf('1 +').message).toBe('Expected a number, a name or "(" but found the end of the expression at position 3');
  });

  it('refuses division by zero and results that are not finite', () => {
    expect(errorOf('1 / (2 - 2)')).toMatchObject({ message: 'Division by zero at position 2', position: 2 });
    expect(errorOf('5 % 0').message).toBe('Division by zero at position 2');
    expect(errorOf('10 ^ 400').message).toBe('The result of "^" at position 3 is not a finite number');
    expect(errorOf('1e308 * 10').message).toMatch(/not a finite number/);
    expect(errorOf('1e999').message).toMatch(/too large/);
    expect(errorOf('sqrt(-1)').message).toMatch(/sqrt\(…\) at position 0 is not a finite number/);
    expect(errorOf('ln(0)').message).toMatch(/not a finite number/);
    expect(errorOf('0 ^ -1').message).toMatch(/not a finite number/);
  });

  it('refuses expressions over the length limit', () => {
    const long = `1${' + 1'.repeat(maxExpressionLength)}`;
    expect(errorOf(long).message).toMatch(/the limit is 1000/);
    expect(evaluateArithmetic(`1${'+1'.repeat((maxExpressionLength - 1) / 2)}`)).toBe(500);
  });

  it('refuses nesting deeper than the limit', () => {
    const nested = (depth: number) => `${'('.repeat(depth)}1${')'.repeat(depth)}`;
    expect(evaluateArithmetic(nested(maxNestingDepth - 1))).toBe(1);
    expect(errorOf(nested(maxNestingDepth + 1)).message).toMatch(/nests deeper than 100 levels/);
    expect(errorOf('-'.repeat(maxNestingDepth + 1) + '1').message).toMatch(/nests deeper/);
  });
});
