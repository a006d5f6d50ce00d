import type { CaseResult } from './caseScore.ts';
import type { EvalReport } from './evalReport.ts';
import { usdText } from './usdText.ts';

/** Something worse than in the baseline. `caseId` is {@link wholeReport} for the pass rate. */
export interface Regression {
  caseId: string;
  what: string;
}

/** The `caseId` of a regression of the report as a whole. */
export const wholeReport = '(all cases)';

// A rise counts past this share, and past an absolute floor, so that noise on tiny numbers (one more
// step of three, a hundredth of a cent) does not fail a build.
const riseShare = 0.2;
const stepsFloor = 1;
const costFloorUsd = 0.0001;

/**
 * What got worse since `baseline`, comparing the cases both reports hold (by id): a case that passed
 * and fails now; more of its side-effecting calls run twice under faults; its mean steps or cost per run up by more than 20% (and by more than 1 step or
 * $0.0001); and the pass rate over those shared cases down. A baseline case missing now is not a
 * regression (a `--filter` or a dataset change drops cases on purpose), nor is a case new since.
 */
export function compareToBaseline(report: EvalReport, baseline: EvalReport): Regression[] {
  const before = new Map(baseline.cases.map((result) => [result.id, result]));
  const regressions: Regression[] = [];
  const shared: Array<[CaseResult, CaseResult]> = [];
  for (const now of report.cases) {
    const then = before.get(now.id);
    if (then === undefined) continue;
    shared.push([then, now]);
    if (then.passed && !now.passed) {
      const failure = now.runs.flatMap((run) => run.failures)[0];
      regressions.push({ caseId: now.id, what: `passed in the baseline, fails now${failure === undefined ? '' : `: ${failure}`}` });
    }
    const duplicated = { then: then.recovery?.duplicatedSideEffects ?? 0, now: now.recovery?.duplicatedSideEffects ?? 0 };
    if (duplicated.now > duplicated.then) {
      regressions.push({ caseId: now.id, what: `side-effecting calls run more than once under its faults: ${duplicated.now}, ${duplicated.then} in the baseline` });
    }
    if (risen(then.scores.steps, now.scores.steps, stepsFloor)) {
      regressions.push({ caseId: now.id, what: `steps up from ${amount(then.scores.steps)} to ${amount(now.scores.steps)} (${rise(then.scores.steps, now.scores.steps)})` });
    }
    if (risen(then.scores.costUsd, now.scores.costUsd, costFloorUsd)) {
      regressions.push({ caseId: now.id, what: `cost up from ${usdText(then.scores.costUsd)} to ${usdText(now.scores.costUsd)} (${rise(then.scores.costUsd, now.scores.costUsd)})` });
    }
  }
  if (shared.length > 0) {
    const rateThen = shared.filter(([then]) => then.passed).length / shared.length;
    const rateNow = shared.filter(([, now]) => now.passed).length / shared.length;
    if (rateNow < rateThen) {
      regressions.push({ caseId: wholeReport, what: `pass rate down from ${percent(rateThen)} to ${percent(rateNow)} over the ${shared.length} cases in both reports` });
    }
  }
  return regressions;
}

function risen(then: number, now: number, floor: number): boolean {
  return now - then > floor && now > then * (1 + riseShare);
}

function rise(then: number, now: number): string {
  return then === 0 ? 'from nothing' : `+${Math.round(((now - then) / then) * 100)}%`;
}

function amount(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

function percent(share: number): string {
  return `${Math.round(share * 1000) / 10}%`;
}
