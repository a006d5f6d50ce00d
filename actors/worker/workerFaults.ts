import * as z from 'zod';
import { ToolFailureCode, type ValidationIssue } from '../../tools/toolFailure.ts';

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
  /** Applies to the first N calls it matches, then is spent. Unlimited when absent. */
  times: z.number().int().nonnegative().optional(),
  /** Chance (0..1) that an eligible call is hit; 1 when absent. */
  probability: z.number().min(0).max(1).optional(),
  /** Skips the first N calls in the rule's scope (its tool, or every tool for `*`). */
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
  fired: number;
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

/**
 * Decides, call by call, which fault (if any) a worker injects. It only decides: sleeping,
 * dropping and killing are the worker's job, so the injector is testable without processes.
 *
 * Counting: every `next(tool)` counts one call to `tool` and one call overall. `afterCalls` on a
 * tool's rule skips that tool's first N calls; on a `*` rule it skips the first N calls to any
 * tool. `times` counts the calls a rule actually hit. `random` is consulted only for a rule that
 * is otherwise eligible and whose `probability` is below 1; the rule hits when it returns less
 * than the probability. All counters belong to this injector.
 */
export class FaultInjector {
  readonly #rulesByTool = new Map<string, RuleState[]>();
  readonly #anyToolRules: RuleState[];
  readonly #calls = new Map<string, number>();
  readonly #random: () => number;

  constructor(spec: FaultSpecification, random: () => number = Math.random) {
    this.#random = random;
    for (const [tool, rules] of Object.entries(spec)) {
      if (tool === anyTool) continue;
      this.#rulesByTool.set(tool, rules.map((rule) => ({ rule, scope: tool, fired: 0 })));
    }
    this.#anyToolRules = (spec[anyTool] ?? []).map((rule) => ({ rule, scope: anyTool, fired: 0 }));
  }

  /** Counts one call to `toolName` and returns the fault to inject into it, if any. */
  next(toolName: string): Fault | undefined {
    const callsBefore = (scope: string): number => this.#calls.get(scope) ?? 0;
    const candidates = [...(this.#rulesByTool.get(toolName) ?? []), ...this.#anyToolRules];
    let decided: Fault | undefined;
    for (const state of candidates) {
      if (this.#applies(state, callsBefore(state.scope))) {
        state.fired += 1;
        decided = faultOf(state.rule, toolName);
        break;
      }
    }
    this.#calls.set(toolName, callsBefore(toolName) + 1);
    if (toolName !== anyTool) this.#calls.set(anyTool, callsBefore(anyTool) + 1);
    return decided;
  }

  #applies(state: RuleState, callsBefore: number): boolean {
    const { times, afterCalls = 0, probability = 1 } = state.rule;
    if (times !== undefined && state.fired >= times) return false;
    if (callsBefore < afterCalls) return false;
    if (probability >= 1) return true;
    return this.#random() < probability;
  }
}
