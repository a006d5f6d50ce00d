import * as z from 'zod';
import { ToolFailureCode, type ValidationIssue } from '../../tools/toolFailure.ts';
import { MemoryFaultCounts, type FaultCounts } from './faultCounts.ts';

/** The environment variable a worker reads its fault specification from (JSON). */
export const faultsEnvVariable = 'TROUPE_FAULTS';

/** The key whose rules apply to every tool, after the tool's own rules. */
export const anyTool = '*';

/** What an injected fault makes the worker do with one call. */
export const FaultKind = {
  /** Reply with a failure of `code` without running the handler. */
  error: 'error',
  /** Wait `delayMs`, then handle the call normally. */
  delay: 'delay',
  /** Never run the handler; hold the call until its deadline passes, then send nothing. */
  timeout: 'timeout',
  /** Run the handler and record the outcome normally, but send no reply. */
  drop_reply: 'drop_reply',
  /**
   * Kill the process with SIGKILL at `at`: `before_claim` (the default: nothing recorded yet),
   * `before_handler` (claimed, the handler not started) or `after_effect` (the handler ran, its
   * outcome not recorded nor replied).
   */
  crash: 'crash',
} as const;
export type FaultKind = (typeof FaultKind)[keyof typeof FaultKind];

const ruleLimits = {
  /**
   * Applies to the first N calls it matches, then is spent. Unlimited when absent. Counted per
   * process, or across the processes sharing `TROUPE_FAULT_COUNTS_DIR`.
   */
  times: z.number().int().nonnegative().optional(),
  /** Chance (0..1) that an eligible call is hit; 1 when absent. */
  probability: z.number().min(0).max(1).optional(),
  /** Skips the first N calls in the rule's scope (its tool, or every tool for `*`), counted per process. */
  afterCalls: z.number().int().nonnegative().optional(),
};

const failureCodes = Object.values(ToolFailureCode) as [ToolFailureCode, ...ToolFailureCode[]];

/** One rule: a fault kind, its parameters, and when it applies. Unknown fields are refused (typos). */
export const FaultRule = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('error'), code: z.enum(failureCodes).default('INTERNAL'), message: z.string().min(1).optional(), ...ruleLimits }),
  z.strictObject({ kind: z.literal('delay'), delayMs: z.number().int().nonnegative(), ...ruleLimits }),
  z.strictObject({ kind: z.literal('timeout'), ...ruleLimits }),
  z.strictObject({ kind: z.literal('drop_reply'), ...ruleLimits }),
  z.strictObject({ kind: z.literal('crash'), at: z.enum(['before_claim', 'before_handler', 'after_effect']).default('before_claim'), ...ruleLimits }),
]);
export type FaultRule = z.infer<typeof FaultRule>;

/**
 * Rules per tool name, plus `*` for every tool. A tool's own rules are tried before the `*`
 * rules, each list in order; the first rule that applies to a call decides its fault.
 */
export const FaultSpecification = z.record(z.string().min(1, 'a tool name is empty'), z.array(FaultRule));
export type FaultSpecification = z.infer<typeof FaultSpecification>;
/** A specification as written (before defaults), e.g. in worker options. */
export type FaultSpecificationInput = z.input<typeof FaultSpecification>;

/** The fault decided for one call; the worker acts on it. */
export type Fault =
  | { kind: 'error'; code: ToolFailureCode; message: string }
  | { kind: 'delay'; delayMs: number }
  | { kind: 'timeout' }
  | { kind: 'drop_reply' }
  | { kind: 'crash'; at: 'before_claim' | 'before_handler' | 'after_effect' };

/** A fault specification that cannot be used; `path` names the offending field. */
export class FaultSpecificationError extends Error {
  /** Where the first problem is, e.g. `calc_evaluate[1].probability`; empty for the whole text. */
  readonly path: string;
  readonly issues: ValidationIssue[];

  constructor(message: string, path: string, issues: ValidationIssue[], options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.path = path;
    this.issues = issues;
  }
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (out === '') out = String(segment);
    else if (typeof segment === 'string' && /^[A-Za-z_$][\w$]*$/.test(segment)) out += `.${segment}`;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}

/**
 * Validates a specification given as a value (worker options); throws {@link FaultSpecificationError}
 * naming the first bad path, with every issue attached.
 */
export function checkFaultSpecification(value: unknown, source = 'The fault specification'): FaultSpecification {
  const parsed = FaultSpecification.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues: ValidationIssue[] = parsed.error.issues.map((issue) => ({ path: formatPath(issue.path), code: issue.code, message: issue.message }));
  const [first] = issues as [ValidationIssue, ...ValidationIssue[]];
  const where = first.path === '' ? '' : ` at ${first.path}`;
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
  throw new FaultSpecificationError(`${source} is invalid${where}: ${first.message}${more}.`, first.path, issues, { cause: parsed.error });
}

/** Parses a JSON specification (as in `TROUPE_FAULTS`); throws {@link FaultSpecificationError}. */
export function parseFaultSpecification(json: string, source = faultsEnvVariable): FaultSpecification {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new FaultSpecificationError(`${source} is not valid JSON: ${message}`, '', [{ path: '', code: 'invalid_json', message }], { cause: error });
  }
  return checkFaultSpecification(value, source);
}

/** The specification in `TROUPE_FAULTS`, or `undefined` when it is unset or blank. */
export function faultSpecificationFromEnv(env: NodeJS.ProcessEnv = process.env): FaultSpecification | undefined {
  const json = env[faultsEnvVariable];
  if (json === undefined || json.trim() === '') return undefined;
  return parseFaultSpecification(json);
}

/** Tool names the specification mentions that are not in `toolNames` (likely typos); `*` excluded. */
export function unknownFaultTools(spec: FaultSpecification, toolNames: Iterable<string>): string[] {
  const known = new Set(toolNames);
  return Object.keys(spec).filter((name) => name !== anyTool && !known.has(name));
}

interface RuleState {
  readonly rule: FaultRule;
  /** `anyTool` for a `*` rule, else the tool it belongs to: whose call count `afterCalls` reads. */
  readonly scope: string;
  /** The rule's place in its scope's list: with `scope`, what its firings are counted under. */
  readonly index: number;
  /** Every firing of its `times` is taken: known here, so a spent rule costs no claim. */
  spent: boolean;
}

function faultOf(rule: FaultRule, toolName: string): Fault {
  switch (rule.kind) {
    case 'error':
      return { kind: 'error', code: rule.code, message: rule.message ?? `Injected fault: ${toolName} failed with ${rule.code}.` };
    case 'delay':
      return { kind: 'delay', delayMs: rule.delayMs };
    case 'crash':
      return { kind: 'crash', at: rule.at };
    case 'timeout':
    case 'drop_reply':
      return { kind: rule.kind };
  }
}

/** How a {@link FaultInjector} draws chances and counts firings; each defaults to this injector's own. */
export interface FaultInjectorOptions {
  /** Returns a number in [0, 1), as `Math.random` (the default) does. */
  random?: () => number;
  /** Where `times` is counted: share one store between injectors to count their firings together. */
  counts?: FaultCounts;
}

/**
 * Decides, call by call, which fault (if any) a worker injects. It only decides: sleeping,
 * dropping and killing are the worker's job, so the injector is testable without processes.
 *
 * Counting: every `next(tool)` counts one call to `tool` and one call overall. `afterCalls` on a
 * tool's rule skips that tool's first N calls; on a `*` rule it skips the first N calls to any
 * tool. `random` is consulted only for a rule that is otherwise eligible and whose `probability`
 * is below 1; the rule hits when it returns less than the probability. Those counters and draws
 * belong to this injector. `times` counts the calls a rule actually hit, in `counts`: a hit claims
 * a firing there before `next` returns, and a rule whose firings are all taken (by this injector
 * or another sharing the store) lets the call through to the next rule.
 */
export class FaultInjector {
  readonly #rulesByTool = new Map<string, RuleState[]>();
  readonly #anyToolRules: RuleState[];
  readonly #calls = new Map<string, number>();
  readonly #random: () => number;
  readonly #counts: FaultCounts;

  constructor(spec: FaultSpecification, options: FaultInjectorOptions = {}) {
    this.#random = options.random ?? Math.random;
    this.#counts = options.counts ?? new MemoryFaultCounts();
    const statesOf = (scope: string, rules: FaultRule[]): RuleState[] => rules.map((rule, index) => ({ rule, scope, index, spent: rule.times === 0 }));
    for (const [tool, rules] of Object.entries(spec)) {
      if (tool === anyTool) continue;
      this.#rulesByTool.set(tool, statesOf(tool, rules));
    }
    this.#anyToolRules = statesOf(anyTool, spec[anyTool] ?? []);
  }

  /** Counts one call to `toolName` and returns the fault to inject into it, if any. */
  next(toolName: string): Fault | undefined {
    const callsBefore = (scope: string): number => this.#calls.get(scope) ?? 0;
    const candidates = [...(this.#rulesByTool.get(toolName) ?? []), ...this.#anyToolRules];
    const decided = candidates.find((state) => this.#applies(state, callsBefore(state.scope)));
    this.#calls.set(toolName, callsBefore(toolName) + 1);
    if (toolName !== anyTool) this.#calls.set(anyTool, callsBefore(anyTool) + 1);
    return decided ? faultOf(decided.rule, toolName) : undefined;
  }

  /** Whether the rule hits this call; for a rule with `times`, claims the firing it takes. */
  #applies(state: RuleState, callsBefore: number): boolean {
    const { times, afterCalls = 0, probability = 1 } = state.rule;
    if (state.spent) return false;
    if (callsBefore < afterCalls) return false;
    if (probability < 1 && this.#random() >= probability) return false;
    if (times === undefined) return true;
    const firing = this.#counts.claim(state, times);
    if (firing === undefined || firing === times) state.spent = true;
    return firing !== undefined;
  }
}
