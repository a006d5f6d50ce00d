import * as path from 'node:path';
import type { CaseResult } from './caseScore.ts';
import type { EvalReport } from './evalReport.ts';

/**
 * The report as JUnit XML, the format CI systems show: one `<testsuite>` per dataset file (named by
 * its path, relative to `baseDir` when given), one `<testcase>` per case with a `<failure>` listing
 * every failure of every failed run, and the session and trace ids in `<system-out>`. Times are in
 * seconds (a case's is its mean wall time per run). Every text and attribute is XML-escaped, and
 * characters XML 1.0 cannot hold (control characters from a model's output) are dropped.
 */
export function reportToJunit(report: EvalReport, options: { baseDir?: string } = {}): string {
  const suites = new Map<string, CaseResult[]>();
  for (const result of report.cases) suites.set(result.file, [...(suites.get(result.file) ?? []), result]);
  const failures = report.cases.filter((result) => !result.passed).length;
  const totalSeconds = report.cases.reduce((sum, result) => sum + result.scores.wallMs, 0) / 1000;

  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="troupe eval" tests="${report.cases.length}" failures="${failures}" errors="0" time="${seconds(totalSeconds)}">`,
  ];
  for (const [file, cases] of suites) {
    const name = suiteName(file, options.baseDir);
    const suiteFailures = cases.filter((result) => !result.passed).length;
    const suiteSeconds = cases.reduce((sum, result) => sum + result.scores.wallMs, 0) / 1000;
    lines.push(
      `  <testsuite name="${attribute(name)}" tests="${cases.length}" failures="${suiteFailures}" errors="0" skipped="0" time="${seconds(suiteSeconds)}" timestamp="${attribute(report.startedAt)}">`,
    );
    for (const result of cases) {
      const attributes = `name="${attribute(result.id)}" classname="${attribute(name)}" time="${seconds(result.scores.wallMs / 1000)}"`;
      lines.push(`    <testcase ${attributes}>`);
      if (!result.passed) {
        const messages = failureLines(result);
        lines.push(`      <failure message="${attribute(messages[0] ?? 'failed')}" type="expectation">${xml(messages.join('\n'))}</failure>`);
      }
      const sessions = result.runs.map((run) => `run ${run.attempt}: session ${run.sessionId}${run.traceId === null ? '' : `, trace ${run.traceId}`}`);
      if (sessions.length > 0) lines.push(`      <system-out>${xml(sessions.join('\n'))}</system-out>`);
      lines.push('    </testcase>');
    }
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>');
  return `${lines.join('\n')}\n`;
}

function failureLines(result: CaseResult): string[] {
  if (result.runs.length === 0) return ['no run'];
  if (result.meantToFail !== undefined) return [`meant to fail (${result.meantToFail}), yet met every expectation`];
  const repeated = result.runs.length > 1;
  return result.runs.flatMap((run) => run.failures.map((failure) => (repeated ? `run ${run.attempt}: ${failure}` : failure)));
}

function suiteName(file: string, baseDir: string | undefined): string {
  if (baseDir === undefined) return file;
  const relative = path.relative(baseDir, file);
  return relative === '' || relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}

function seconds(value: number): string {
  return value.toFixed(3);
}

// Characters XML 1.0 cannot hold, even escaped: C0 controls but tab, LF and CR; lone surrogates; U+FFFE and U+FFFF.
const notXmlCharacters = /[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Element text. */
function xml(text: string): string {
  return text.replace(notXmlCharacters, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** An attribute value: line breaks and tabs as references too, which a parser would otherwise read as spaces. */
function attribute(text: string): string {
  return xml(text).replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}
