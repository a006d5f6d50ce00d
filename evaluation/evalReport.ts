import * as z from 'zod';
import { formatIssuePath } from '../tools/validation.ts';
import { BaselineError } from './baselineError.ts';
import { faultKindsOfResult } from './caseRecovery.ts';
import { CaseResult, tokensOf } from './caseScore.ts';

// The report's rendering and comparison live in files of their own; they are exported from here
// too, so that the report is one import for the CLI.
export { compareToBaseline, type Regression } from './baselineComparison.ts';
export { reportToJunit } from './junitReport.ts';
export { renderReportTable } from './reportTable.ts';

/** The versions of the report's schema this code writes and reads. */
export const reportSchemaVersion = 1;

/**
 * A set of cases summed up. Counts are counts; `costUsd` and `tokens` are sums over every run;
 * `steps`, `toolCalls` and `wallMs` are means per case (of each case's mean per run);
 * `toolPrecision` and `toolRecall` are means over the cases that expect a trajectory (1 when none
 * does). `passRate` is passed over cases, 0 for no cases: an empty selection never reads as green.
 */
export const Totals = z.object({
  cases: z.number().int().nonnegative(),
  passed: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  passRate: z.number().min(0).max(1),
  toolPrecision: z.number().min(0).max(1),
  toolRecall: z.number().min(0).max(1),
  steps: z.number().nonnegative(),
  toolCalls: z.number().nonnegative(),
  tokens: z.number().nonnegative(),
  costUsd: z.number().nonnegative(),
  wallMs: z.number().nonnegative(),
});
export type Totals = z.infer<typeof Totals>;

/** The key of `byAgent` for cases that name no agent (they run the default one). */
export const defaultAgentKey = '(default)';

/**
 * The machine-readable result of one `troupe eval` (`--json`, and the baseline of a later one).
 * Fields may be added within a schema version; a reader ignores those it does not know.
 */
export const EvalReport = z.object({
  schemaVersion: z.literal(reportSchemaVersion),
  startedAt: z.string(),
  finishedAt: z.string(),
  /** The dataset paths as given to the command. */
  datasets: z.array(z.string()),
  /** The model the sessions ran against; null for scripted runs only. */
  model: z.string().nullable(),
  cases: z.array(CaseResult),
  totals: Totals,
  /** Keyed by agent name, `(default)` for cases that name none. */
  byAgent: z.record(z.string(), Totals),
  /** Keyed by the dataset file's absolute path. */
  byDataset: z.record(z.string(), Totals),
  /** Keyed by fault kind, over the cases that inject it (a case with two kinds counts in both); `none` for the others. */
  byFaultKind: z.record(z.string(), Totals).default({}),
});
export type EvalReport = z.infer<typeof EvalReport>;

/** What `buildReport` needs: the run's facts and every case's result, in the order to report them. */
export interface ReportInput {
  startedAt: string;
  finishedAt: string;
  datasets: string[];
  model: string | null;
  cases: CaseResult[];
}

/** The report of a finished eval: totals over all cases, per agent and per dataset file. */
export function buildReport(input: ReportInput): EvalReport {
  return {
    schemaVersion: reportSchemaVersion,
    startedAt: input.startedAt,
    finishedAt: input.finishedAt,
    datasets: input.datasets,
    model: input.model,
    cases: input.cases,
    totals: totalsOf(input.cases),
    byAgent: totalsBy(input.cases, (result) => result.agent ?? defaultAgentKey),
    byDataset: totalsBy(input.cases, (result) => result.file),
    byFaultKind: Object.fromEntries([...new Set(input.cases.flatMap(faultKindsOfResult))].map((kind) => [
      kind, totalsOf(input.cases.filter((c) => faultKindsOfResult(c).includes(kind))),
    ])),
  };
}

/** The totals of `cases` (see {@link Totals} for which are sums and which means). */
export function totalsOf(cases: readonly CaseResult[]): Totals {
  const passed = cases.filter((result) => result.passed).length;
  const mean = (values: number[]) => (values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length);
  const withTrajectory = cases.filter((result) => result.expectedTrajectory !== undefined);
  const sumOverRuns = (of: (run: CaseResult['runs'][number]) => number) => cases.reduce((sum, result) => sum + result.runs.reduce((s, run) => s + of(run), 0), 0);
  return {
    cases: cases.length,
    passed,
    failed: cases.length - passed,
    passRate: cases.length === 0 ? 0 : passed / cases.length,
    toolPrecision: withTrajectory.length === 0 ? 1 : mean(withTrajectory.map((result) => result.scores.toolPrecision)),
    toolRecall: withTrajectory.length === 0 ? 1 : mean(withTrajectory.map((result) => result.scores.toolRecall)),
    steps: mean(cases.map((result) => result.scores.steps)),
    toolCalls: mean(cases.map((result) => result.scores.toolCalls)),
    tokens: sumOverRuns((run) => tokensOf(run.usage)),
    costUsd: sumOverRuns((run) => run.usage.costUsd),
    wallMs: mean(cases.map((result) => result.scores.wallMs)),
  };
}

function totalsBy(cases: readonly CaseResult[], keyOf: (result: CaseResult) => string): Record<string, Totals> {
  const groups = new Map<string, CaseResult[]>();
  for (const result of cases) {
    const key = keyOf(result);
    groups.set(key, [...(groups.get(key) ?? []), result]);
  }
  return Object.fromEntries([...groups].map(([key, group]) => [key, totalsOf(group)]));
}

/**
 * Reads a report written by an earlier `troupe eval --json`, to compare against. Throws a
 * {@link BaselineError} naming the field for anything that is not such a report, and refuses a
 * report of another schema version (saying which this code reads) rather than misread it.
 */
export function readBaseline(text: string): EvalReport {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new BaselineError(`The baseline is not JSON: ${error instanceof Error ? error.message : String(error)}`, undefined, { cause: error });
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new BaselineError('The baseline is not an eval report: expected a JSON object');
  const version: unknown = 'schemaVersion' in data ? data.schemaVersion : undefined;
  if (version !== reportSchemaVersion) {
    throw new BaselineError(
      `The baseline is a report of schemaVersion ${JSON.stringify(version) ?? 'none'}; this troupe reads schemaVersion ${reportSchemaVersion} only (write a new baseline with troupe eval --json)`,
      'schemaVersion',
    );
  }
  const parsed = EvalReport.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue === undefined || issue.path.length === 0 ? undefined : formatIssuePath(issue.path);
    const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more)` : '';
    throw new BaselineError(`The baseline is not an eval report: ${field === undefined ? '' : `${field}: `}${issue?.message ?? 'invalid'}${more}`, field);
  }
  return parsed.data;
}
