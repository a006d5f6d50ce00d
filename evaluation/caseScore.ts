import * as z from 'zod';
import { Usage } from '../machines/usage.ts';
import { CaseRun } from './caseRun.ts';
import type { LoadedCase } from './datasetLoader.ts';
import { TrajectoryExpectation, type CaseExpectation, type OutputExpectation } from './evalCase.ts';
import { parseJsonPath, valueAtJsonPath } from './jsonPath.ts';
import { jsonEqual } from './jsonEqual.ts';
import { matchTrajectory, TrajectoryMatch } from './trajectoryMatch.ts';
import { usdText } from './usdText.ts';

/** One run of a case, judged: the run as it happened and every expectation it missed. */
export const RunResult = CaseRun.omit({ caseId: true }).extend({
  passed: z.boolean(),
  /** One sentence per expectation missed, `<what>: <why>`; empty when the run passed. */
  failures: z.array(z.string()),
  /** Present when the case expects a trajectory. */
  trajectory: TrajectoryMatch.optional(),
});
export type RunResult = z.infer<typeof RunResult>;

/** A case's scores over its runs: shares and means, each per run. */
export const CaseScores = z.object({
  /** Share of runs that passed. */
  success: z.number().min(0).max(1),
  /** Mean tool precision over runs; 1 without a trajectory expectation. */
  toolPrecision: z.number().min(0).max(1),
  /** Mean tool recall over runs; 1 without a trajectory expectation. */
  toolRecall: z.number().min(0).max(1),
  /** Share of runs whose trajectory matched; 1 without a trajectory expectation. */
  trajectoryMatch: z.number().min(0).max(1),
  steps: z.number().nonnegative(),
  toolCalls: z.number().nonnegative(),
  /** Input plus output tokens. */
  tokens: z.number().nonnegative(),
  costUsd: z.number().nonnegative(),
  wallMs: z.number().nonnegative(),
  /** With more than one run: 1 when all k runs passed, else 0 (pass^k with k the number of runs). */
  passHatK: z.number().min(0).max(1).optional(),
});
export type CaseScores = z.infer<typeof CaseScores>;

/** A case judged over all its runs: what the reports are built from. */
/**
 * How a case with injected faults fared against the same case without them: whether it still met
 * its expectations, and what the faults cost in steps and dollars (means over runs, faulted less
 * fault-free). Set by the runner, which runs such a case both ways.
 */
export const CaseRecovery = z.object({
  /** The fault kinds injected, e.g. `error`, `crash`. */
  faultKinds: z.array(z.string()),
  /** Every faulted run met the case's expectations. */
  recovered: z.boolean(),
  extraSteps: z.number(),
  extraCostUsd: z.number(),
  /** The fault-free runs passed: when they did not, the case itself is wrong, not its recovery. */
  controlPassed: z.boolean(),
  /** Side-effecting calls of the faulted runs whose handler ran more than once (from the idempotency records): 0 is the guarantee. */
  // Defaulted: a baseline written before the count existed is still read.
  duplicatedSideEffects: z.number().int().nonnegative().default(0),
});
export type CaseRecovery = z.infer<typeof CaseRecovery>;

export const CaseResult = z.object({
  id: z.string(),
  /** Absolute path of the dataset file. */
  file: z.string(),
  agent: z.string().optional(),
  task: z.string(),
  /** The expected trajectory, for reports that show it beside the run's. */
  expectedTrajectory: TrajectoryExpectation.optional(),
  /** Every run passed (and there was at least one); for a case meant to fail, some run missed an expectation. */
  passed: z.boolean(),
  /** Why the case is meant to fail, when it is: its runs' failures are then what was meant. */
  meantToFail: z.string().optional(),
  runs: z.array(RunResult),
  scores: CaseScores,
  /** Present for a case with faults: see {@link CaseRecovery}. */
  recovery: CaseRecovery.optional(),
  /**
   * The faults the case's script plays on the model (`model_http_429`, `model_malformed_tool_call`, …).
   * They are part of its trajectory, so it has no fault-free run to measure a recovery against.
   */
  modelFaults: z.array(z.string()).optional(),
});
export type CaseResult = z.infer<typeof CaseResult>;

/** How a case came out, as reports print it: XFAIL failed as it was meant to; XPASS was meant to fail, yet met every expectation. */
export function verdictOf(result: Pick<CaseResult, 'passed' | 'meantToFail'>): 'PASS' | 'FAIL' | 'XFAIL' | 'XPASS' {
  if (result.meantToFail === undefined) return result.passed ? 'PASS' : 'FAIL';
  return result.passed ? 'XFAIL' : 'XPASS';
}

/**
 * Judges the runs of one case (one per repeat, in attempt order) against its expectations. A run
 * passes when every expectation holds; each one missed adds a failure. A run with an `error` fails
 * with it alone, whatever the case expects: the runner got no result, so its other facts say
 * nothing about the agent. A case without runs does not pass.
 */
export function scoreCase(evalCase: LoadedCase, runs: readonly CaseRun[]): CaseResult {
  const expectation = evalCase.expect;
  const results = runs.map((run): RunResult => {
    const trajectory = expectation.trajectory === undefined ? undefined : matchTrajectory(expectation.trajectory, run.toolCalls);
    const failures = runFailures(expectation, run, trajectory);
    const { caseId: _caseId, ...facts } = run;
    return { ...facts, passed: failures.length === 0, failures, ...(trajectory === undefined ? {} : { trajectory }) };
  });
  const mean = (of: (run: RunResult) => number) => (results.length === 0 ? 0 : results.reduce((sum, run) => sum + of(run), 0) / results.length);
  const meanOrOne = (of: (trajectory: TrajectoryMatch) => number) => (expectation.trajectory === undefined ? 1 : mean((run) => (run.trajectory === undefined ? 0 : of(run.trajectory))));
  const passed = results.length > 0 && results.every((run) => run.passed);
  return {
    id: evalCase.id,
    file: evalCase.file,
    ...(evalCase.agent === undefined ? {} : { agent: evalCase.agent }),
    task: evalCase.task,
    ...(expectation.trajectory === undefined ? {} : { expectedTrajectory: expectation.trajectory }),
    // A case meant to fail passes by failing; one that met every expectation is the surprise.
    passed: evalCase.meantToFail === undefined ? passed : results.length > 0 && !passed,
    ...(evalCase.meantToFail === undefined ? {} : { meantToFail: evalCase.meantToFail }),
    runs: results,
    scores: {
      success: mean((run) => (run.passed ? 1 : 0)),
      toolPrecision: meanOrOne((trajectory) => trajectory.precision),
      toolRecall: meanOrOne((trajectory) => trajectory.recall),
      trajectoryMatch: meanOrOne((trajectory) => (trajectory.matched ? 1 : 0)),
      steps: mean((run) => run.steps),
      toolCalls: mean((run) => run.toolCallCount),
      tokens: mean((run) => tokensOf(run.usage)),
      costUsd: mean((run) => run.usage.costUsd),
      wallMs: mean((run) => run.durationMs),
      ...(results.length > 1 ? { passHatK: passed ? 1 : 0 } : {}),
    },
  };
}

/** Input plus output tokens. */
export function tokensOf(usage: Usage): number {
  return usage.inputTokens + usage.outputTokens;
}

function runFailures(expectation: CaseExpectation, run: CaseRun, trajectory: TrajectoryMatch | undefined): string[] {
  if (run.error !== undefined) return [`error: ${run.error}`];
  const failures: string[] = [];
  if (run.status !== expectation.status) {
    failures.push(`status: expected ${expectation.status}, got ${run.status}${run.stopReason === '' ? '' : ` (${run.stopReason})`}`);
  }
  if (expectation.output !== undefined) failures.push(...outputFailures(expectation.output, run.output));
  if (trajectory !== undefined && !trajectory.matched) failures.push(...trajectory.problems.map((problem) => `trajectory: ${problem}`));
  if (expectation.phases !== undefined && !jsonEqual(expectation.phases, run.phases ?? [])) {
    failures.push(`phases: expected ${expectation.phases.join(' → ')}, the run went ${run.phases?.length ? run.phases.join(' → ') : 'through no workflow'}`);
  }
  if (expectation.maxSteps !== undefined && run.steps > expectation.maxSteps) failures.push(`steps: ${run.steps} > maxSteps ${expectation.maxSteps}`);
  if (expectation.maxToolCalls !== undefined && run.toolCallCount > expectation.maxToolCalls) {
    failures.push(`tool calls: ${run.toolCallCount} > maxToolCalls ${expectation.maxToolCalls}`);
  }
  if (expectation.maxCostUsd !== undefined && run.usage.costUsd > expectation.maxCostUsd) {
    failures.push(`cost: ${usdText(run.usage.costUsd)} > maxCostUsd ${usdText(expectation.maxCostUsd)}`);
  }
  if (expectation.sideEffects === 'once') {
    for (const call of run.toolCalls) {
      if ((call.handlerRuns ?? 0) > 1) failures.push(`sideEffects: ${call.tool} ran ${call.handlerRuns} times for one call`);
    }
  }
  for (const file of expectation.files ?? []) {
    const text = run.files?.[file.path] ?? null;
    if (!file.exists) {
      if (text !== null) failures.push(`files: ${file.path} exists, expected it not to`);
      continue;
    }
    if (text === null) {
      failures.push(`files: ${file.path} does not exist`);
      continue;
    }
    for (const needle of file.contains === undefined ? [] : [file.contains].flat()) {
      if (!text.includes(needle)) failures.push(`files: ${file.path} does not contain ${JSON.stringify(needle)}`);
    }
  }
  return failures;
}

function outputFailures(expected: OutputExpectation, output: string | null): string[] {
  if (output === null) return ['output: the run gave no output'];
  const failures: string[] = [];
  const needles = expected.contains === undefined ? [] : typeof expected.contains === 'string' ? [expected.contains] : expected.contains;
  for (const needle of needles) {
    if (!output.includes(needle)) failures.push(`output: does not contain ${JSON.stringify(needle)}`);
  }
  if (expected.regex !== undefined && !new RegExp(expected.regex).test(output)) failures.push(`output: does not match /${expected.regex}/`);
  if (expected.equals !== undefined && output !== expected.equals) {
    failures.push(`output: expected exactly ${quoted(expected.equals)}, got ${quoted(output)}`);
  }
  if (expected.json !== undefined && expected.json.length > 0) {
    const parsed = outputJson(output);
    if (!parsed.ok) return [...failures, `output: is not JSON (${parsed.error})`];
    for (const check of expected.json) {
      const at = valueAtJsonPath(parsed.value, parseJsonPath(check.path) ?? []);
      if (check.exists === false) {
        if (at.found) failures.push(`output: ${check.path} is present, expected absent`);
      } else if (!at.found) {
        failures.push(`output: ${check.path} is missing${check.equals === undefined ? '' : `, expected ${jsonText(check.equals)}`}`);
      } else if (check.equals !== undefined && !jsonEqual(at.value, check.equals)) {
        failures.push(`output: ${check.path} is ${jsonText(at.value)}, expected ${jsonText(check.equals)}`);
      }
    }
  }
  return failures;
}

// Models often wrap JSON in a fenced block; an output that is exactly one such block is read as its content.
const fencedBlock = /^```[A-Za-z]*\r?\n([\s\S]*?)\r?\n```$/;

function outputJson(output: string): { ok: true; value: unknown } | { ok: false; error: string } {
  const trimmed = output.trim();
  const text = fencedBlock.exec(trimmed)?.[1] ?? trimmed;
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

const maxQuoted = 80;

function quoted(text: string): string {
  return JSON.stringify(text.length > maxQuoted ? `${text.slice(0, maxQuoted - 1)}…` : text);
}

function jsonText(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > maxQuoted ? `${text.slice(0, maxQuoted - 1)}…` : text;
}
