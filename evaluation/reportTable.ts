import { terminalLine } from '../cli/terminalText.ts';
import { verdictOf, type CaseResult } from './caseScore.ts';
import type { EvalReport, Totals } from './evalReport.ts';
import { usdText } from './usdText.ts';

const defaultWidth = 120;
const maxIdWidth = 40;

/**
 * The report as a terminal table: a header, one line per case (id, PASS/FAIL with the runs passed
 * when repeated, mean steps, tool calls, cost and wall time per run, the first failure), then the
 * totals. Plain text without colours (the CLI may add them); no line is longer than `width`, and
 * the text of models and tools in failures is stripped of control characters.
 */
export function renderReportTable(report: EvalReport, options: { width?: number } = {}): string {
  const width = Math.max(40, options.width ?? defaultWidth);
  const idWidth = Math.min(maxIdWidth, Math.max(4, ...report.cases.map((result) => result.id.length)));
  const row = (cells: [string, string, string, string, string, string, string]) => {
    const [id, result, steps, tools, cost, wall, failure] = cells;
    const line = `${fit(id, idWidth).padEnd(idWidth)}  ${result.padEnd(8)}  ${steps.padStart(5)}  ${tools.padStart(5)}  ${cost.padStart(9)}  ${wall.padStart(7)}  ${failure}`;
    return fit(line.trimEnd(), width);
  };
  const lines = [row(['CASE', 'RESULT', 'STEPS', 'TOOLS', 'COST', 'WALL', 'FIRST FAILURE'])];
  for (const result of report.cases) {
    const s = result.scores;
    lines.push(row([terminalLine(result.id), resultText(result), amount(s.steps), amount(s.toolCalls), usdText(s.costUsd), durationText(s.wallMs), terminalLine(firstFailure(result))]));
  }
  lines.push('-'.repeat(Math.min(width, idWidth + 60)));
  lines.push(...totalsLines(report).map((line) => fit(line, width)));
  return `${lines.join('\n')}\n`;
}

function resultText(result: CaseResult): string {
  const verdict = verdictOf(result);
  if (result.runs.length <= 1) return verdict;
  return `${verdict} ${result.runs.filter((run) => run.passed).length}/${result.runs.length}`;
}

function firstFailure(result: CaseResult): string {
  if (result.runs.length === 0) return 'no run';
  if (result.meantToFail !== undefined && !result.passed) return `meant to fail (${result.meantToFail}), yet met every expectation`;
  const run = result.runs.find((candidate) => !candidate.passed);
  const failure = run?.failures[0];
  if (run === undefined || failure === undefined) return '';
  return result.runs.length > 1 ? `run ${run.attempt}: ${failure}` : failure;
}

function totalsLines(report: EvalReport): string[] {
  const lines = [`${totalsText(report.totals)}`];
  lines.push(
    `  means per case: steps ${amount(report.totals.steps)}, tool calls ${amount(report.totals.toolCalls)}, wall ${durationText(report.totals.wallMs)}; ` +
      `tool precision ${report.totals.toolPrecision.toFixed(2)}, recall ${report.totals.toolRecall.toFixed(2)}`,
  );
  lines.push(`  in all: ${report.totals.tokens} tokens, ${usdText(report.totals.costUsd)}`);
  const agents = Object.entries(report.byAgent);
  if (agents.length > 1) {
    for (const [agent, totals] of agents) lines.push(`  ${terminalLine(agent)}: ${totals.passed}/${totals.cases} passed, ${usdText(totals.costUsd)}`);
  }
  const faulted = report.cases.filter((result) => result.recovery !== undefined);
  if (faulted.length > 0) {
    const mean = (of: (result: CaseResult) => number) => faulted.reduce((sum, result) => sum + of(result), 0) / faulted.length;
    lines.push(
      `  recovery: ${faulted.filter((result) => result.recovery?.recovered).length}/${faulted.length} cases with faults recovered, ` +
        `${faulted.reduce((sum, result) => sum + (result.recovery?.duplicatedSideEffects ?? 0), 0)} side-effecting calls run more than once`,
      `  the faults added ${amount(mean((result) => result.recovery?.extraSteps ?? 0))} steps and ${usdText(mean((result) => result.recovery?.extraCostUsd ?? 0))} per case on average`,
    );
  }
  for (const [kind, totals] of Object.entries(report.byFaultKind)) if (kind !== 'none') lines.push(`  fault ${terminalLine(kind)}: ${totals.passed}/${totals.cases} passed`);
  return lines;
}

function totalsText(totals: Totals): string {
  return `${totals.cases} ${totals.cases === 1 ? 'case' : 'cases'}: ${totals.passed} passed, ${totals.failed} failed (${Math.round(totals.passRate * 1000) / 10}%)`;
}

function amount(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

/** A wall time as the reports print it: `850ms`, `1.2s`. */
export function durationText(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`;
}

/** `text` cut to `width` characters, the cut marked. */
function fit(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}
