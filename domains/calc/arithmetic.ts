/** Longest expression {@link evaluateArithmetic} accepts, in characters. */
export const maxExpressionLength = 1000;
/** Deepest nesting (parentheses, function calls, unary signs, chained powers) it accepts. */
export const maxNestingDepth = 100;

/** Why an expression could not be evaluated, with the 0-based character offset it concerns. */
export class ArithmeticError extends Error {
  readonly position: number;

  constructor(message: string, position: number) {
    super(message);
    this.name = new.target.name;
    this.position = position;
  }
}

interface FunctionSpec {
  readonly minArgs: number;
  readonly maxArgs: number;
  readonly apply: (args: number[], position: number) => number;
}

function roundTo(x: number, digits: number, position: number): number {
  if (!Number.isInteger(digits) || Math.abs(digits) > 15) {
    throw new ArithmeticError(`round's digits must be a whole number from -15 to 15 (at position ${position})`, position);
  }
  const factor = 10 ** Math.abs(digits);
  // toPrecision(15) drops binary noise first, so round(1.005, 2) is 1.01 as a person expects, not 1.
  const scaled = Number((Math.abs(x) * (digits >= 0 ? factor : 1 / factor)).toPrecision(15));
  const rounded = digits >= 0 ? Math.round(scaled) / factor : Math.round(scaled) * factor;
  // Half away from zero, symmetric for negatives (Math.round alone rounds -2.5 to -2).
  return Math.sign(x) * rounded;
}

// Maps, not object literals: a name like "constructor" or "__proto__" must not find anything inherited.
const functions: ReadonlyMap<string, FunctionSpec> = new Map<string, FunctionSpec>([
  ['sqrt', { minArgs: 1, maxArgs: 1, apply: ([x]) => Math.sqrt(x!) }],
  ['abs', { minArgs: 1, maxArgs: 1, apply: ([x]) => Math.abs(x!) }],
  ['round', { minArgs: 1, maxArgs: 2, apply: ([x, digits], position) => roundTo(x!, digits ?? 0, position) }],
  ['floor', { minArgs: 1, maxArgs: 1, apply: ([x]) => Math.floor(x!) }],
  ['ceil', { minArgs: 1, maxArgs: 1, apply: ([x]) => Math.ceil(x!) }],
  ['min', { minArgs: 1, maxArgs: Infinity, apply: (args) => Math.min(...args) }],
  ['max', { minArgs: 1, maxArgs: Infinity, apply: (args) => Math.max(...args) }],
  ['ln', { minArgs: 1, maxArgs: 1, apply: ([x]) => Math.log(x!) }],
  ['log10', { minArgs: 1, maxArgs: 1, apply: ([x]) => Math.log10(x!) }],
  ['exp', { minArgs: 1, maxArgs: 1, apply: ([x]) => Math.exp(x!) }],
  ['pow', { minArgs: 2, maxArgs: 2, apply: ([x, y]) => x! ** y! }],
]);

const constants: ReadonlyMap<string, number> = new Map([
  ['pi', Math.PI],
  ['e', Math.E],
]);

const allowedNames = `allowed functions: ${[...functions.keys()].join(', ')}; constants: ${[...constants.keys()].join(', ')}`;

type Token =
  | { readonly kind: 'number'; readonly value: number; readonly text: string; readonly position: number }
  | { readonly kind: 'name' | 'operator'; readonly text: string; readonly position: number }
  | { readonly kind: 'end'; readonly text: ''; readonly position: number };

const numberPattern = /(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;
const namePattern = /[A-Za-z_][A-Za-z0-9_]*/y;
const operators = new Set(['+', '-', '*', '/', '%', '^', '(', ')', ',']);

/**
 * Reads tokens on demand rather than all up front, so errors come out in reading order: in
 * `process.exit()` the model hears about "process" before it hears about ".".
 */
class Tokenizer {
  readonly #source: string;
  #offset = 0;
  #peeked: Token | undefined;

  constructor(source: string) {
    this.#source = source;
  }

  peek(): Token {
    this.#peeked ??= this.#read();
    return this.#peeked;
  }

  next(): Token {
    const token = this.peek();
    this.#peeked = undefined;
    return token;
  }

  #read(): Token {
    const source = this.#source;
    while (this.#offset < source.length && /\s/.test(source[this.#offset]!)) this.#offset += 1;
    const position = this.#offset;
    if (position >= source.length) return { kind: 'end', text: '', position };
    const char = source[position]!;
    numberPattern.lastIndex = position;
    const number = numberPattern.exec(source);
    if (number) {
      const text = number[0];
      this.#offset += text.length;
      // "2pi", "1e", "1.2.3": refuse rather than read as two tokens the parser would misreport.
      const after = source[this.#offset];
      if (after !== undefined && /[A-Za-z0-9_.]/.test(after)) {
        const rest = /^[A-Za-z0-9_.]*/.exec(source.slice(this.#offset))![0];
        throw new ArithmeticError(`Malformed number "${text}${rest}" at position ${position}`, position);
      }
      const value = Number(text);
      if (!Number.isFinite(value)) throw new ArithmeticError(`Number "${text}" at position ${position} is too large`, position);
      return { kind: 'number', value, text, position };
    }
    namePattern.lastIndex = position;
    const name = namePattern.exec(source);
    if (name) {
      this.#offset += name[0].length;
      return { kind: 'name', text: name[0], position };
    }
    if (operators.has(char)) {
      this.#offset += 1;
      return { kind: 'operator', text: char, position };
    }
    throw new ArithmeticError(`Unexpected character "${char}" at position ${position}`, position);
  }
}

// Binding powers: higher binds tighter. Unary signs sit between * and ^, so -2^2 is -(2^2) = -4.
const infix: ReadonlyMap<string, { power: number; rightAssociative: boolean }> = new Map([
  ['+', { power: 10, rightAssociative: false }],
  ['-', { power: 10, rightAssociative: false }],
  ['*', { power: 20, rightAssociative: false }],
  ['/', { power: 20, rightAssociative: false }],
  ['%', { power: 20, rightAssociative: false }],
  ['^', { power: 40, rightAssociative: true }],
]);
const unaryPower = 30;

function describeToken(token: Token): string {
  return token.kind === 'end' ? 'the end of the expression' : `"${token.text}"`;
}

function finite(value: number, what: string, position: number): number {
  if (!Number.isFinite(value)) {
    throw new ArithmeticError(`The result of ${what} at position ${position} is not a finite number`, position);
  }
  // -0 prints as 0 everywhere a model would read it; keep the two the same value.
  return value === 0 ? 0 : value;
}

/** A Pratt parser that evaluates as it parses: there is no tree to keep, only a number. */
class Evaluator {
  readonly #tokens: Tokenizer;
  #depth = 0;

  constructor(source: string) {
    this.#tokens = new Tokenizer(source);
  }

  evaluate(): number {
    const value = this.#expression(0);
    const rest = this.#tokens.peek();
    if (rest.kind !== 'end') throw new ArithmeticError(`Unexpected ${describeToken(rest)} at position ${rest.position}`, rest.position);
    return value;
  }

  #expression(minPower: number): number {
    const start = this.#tokens.peek().position;
    this.#depth += 1;
    if (this.#depth > maxNestingDepth) {
      throw new ArithmeticError(`The expression nests deeper than ${maxNestingDepth} levels at position ${start}`, start);
    }
    let left = this.#prefix();
    for (;;) {
      const token = this.#tokens.peek();
      const operator = token.kind === 'operator' ? infix.get(token.text) : undefined;
      if (!operator || operator.power <= minPower) break;
      this.#tokens.next();
      const right = this.#expression(operator.rightAssociative ? operator.power - 1 : operator.power);
      left = this.#apply(token.text, left, right, token.position);
    }
    this.#depth -= 1;
    return left;
  }

  #apply(operator: string, left: number, right: number, position: number): number {
    if ((operator === '/' || operator === '%') && right === 0) {
      throw new ArithmeticError(`Division by zero at position ${position}`, position);
    }
    const value =
      operator === '+' ? left + right
      : operator === '-' ? left - right
      : operator === '*' ? left * right
      : operator === '/' ? left / right
      : operator === '%' ? left % right
      : left ** right;
    return finite(value, `"${operator}"`, position);
  }

  #prefix(): number {
    const token = this.#tokens.next();
    if (token.kind === 'number') return token.value;
    if (token.kind === 'operator' && (token.text === '-' || token.text === '+')) {
      const operand = this.#expression(unaryPower);
      return token.text === '-' ? finite(-operand, 'unary "-"', token.position) : operand;
    }
    if (token.kind === 'operator' && token.text === '(') {
      const value = this.#expression(0);
      this.#expect(')', token);
      return value;
    }
    if (token.kind === 'name') return this.#name(token);
    throw new ArithmeticError(`Expected a number, a name or "(" but found ${describeToken(token)} at position ${token.position}`, token.position);
  }

  #name(token: Token): number {
    const key = token.text.toLowerCase();
    const constant = constants.get(key);
    if (constant !== undefined) return constant;
    const fn = functions.get(key);
    if (!fn) throw new ArithmeticError(`Unknown name "${token.text}" at position ${token.position}; ${allowedNames}`, token.position);
    const open = this.#tokens.next();
    if (open.text !== '(') {
      throw new ArithmeticError(`"${token.text}" is a function: call it like ${key}(…) (at position ${token.position})`, token.position);
    }
    const args = [this.#expression(0)];
    while (this.#tokens.peek().text === ',') {
      this.#tokens.next();
      args.push(this.#expression(0));
    }
    this.#expect(')', open);
    if (args.length < fn.minArgs || args.length > fn.maxArgs) {
      const expected = fn.minArgs === fn.maxArgs ? `${fn.minArgs}` : fn.maxArgs === Infinity ? `at least ${fn.minArgs}` : `${fn.minArgs} to ${fn.maxArgs}`;
      throw new ArithmeticError(
        `${key} takes ${expected} argument${expected === '1' ? '' : 's'} but got ${args.length} (at position ${token.position})`,
        token.position,
      );
    }
    return finite(fn.apply(args, token.position), `${key}(…)`, token.position);
  }

  #expect(text: string, opener: Token): void {
    const token = this.#tokens.next();
    if (token.text !== text) {
      throw new ArithmeticError(
        `Expected "${text}" to close the "(" at position ${opener.position} but found ${describeToken(token)} at position ${token.position}`,
        token.position,
      );
    }
  }
}

/**
 * Evaluates an arithmetic expression without `eval`: numbers (`12`, `3.5`, `1e3`), `+ - * / %`,
 * `^` (power, right-associative), unary signs, parentheses, the functions sqrt, abs, round(x[, digits]),
 * floor, ceil, min(…), max(…), ln, log10, exp, pow(x, y) and the constants pi and e (names are
 * case-insensitive). Returns a finite number; throws an {@link ArithmeticError} naming the position
 * for anything else, including division by zero, results that are not finite, expressions over
 * {@link maxExpressionLength} characters and nesting deeper than {@link maxNestingDepth}.
 *
 * @example
 * evaluateArithmetic('round(2^0.5 * 100, 1)'); // 141.4
 */
export function evaluateArithmetic(expression: string): number {
  if (expression.length > maxExpressionLength) {
    throw new ArithmeticError(
      `The expression is ${expression.length} characters long; the limit is ${maxExpressionLength}`,
      maxExpressionLength,
    );
  }
  if (expression.trim() === '') throw new ArithmeticError('The expression is empty', 0);
  return new Evaluator(expression).evaluate();
}
