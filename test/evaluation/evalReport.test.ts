import { describe, expect, it } from 'vitest';
import { BaselineError } from '../../evaluation/baselineError.ts';
import { scoreCase, type CaseResult } from '../../evaluation/caseScore.ts';
import { buildReport, compareToBaseline, EvalReport, readBaseline, renderReportTable, reportToJunit } from '../../evaluation/evalReport.ts';
import { modelFaultKindsOf } from '../../evaluation/caseRecovery.ts';
import { caseRun, loadedCase, made } from './evalFixtures.ts';

const addCase = scoreCase(
  loadedCase({ agent: 'calculator', expect: { trajectory: { mode: 'strict', calls: [{ tool: 'calc_add', arguments: { a: 1, b: 2 } }] } } }),
  [caseRun()],
);
const mulCase = scoreCase(
  loadedCase({ id: 'calc-mul', agent: 'calculator', expect: { output: { contains: '<6 & "six">' }, trajectory: { mode: 'superset', calls: [{ tool: 'calc_mul' }] } } }),
  [caseRun({ caseId: 'calc-mul', sessionId: 'session-2', output: 'five', toolCalls: [made('calc_add', { a: 1, b: 2 })], steps: 4, durationMs: 500 })],
);
const reportCase = scoreCase(loadedCase({ id: 'report', task: 'Write the report' }, '/evals/files.jsonl'), [
  caseRun({ caseId: 'report', toolCalls: [], toolCallCount: 0, steps: 3, usage: { inputTokens: 1000, outputTokens: 500, costUsd: 0.02 } }),
]);

function report(cases: CaseResult[] = [addCase, mulCase, reportCase]): EvalReport {
  return buildReport({ startedAt: '2025-01-01T00:00:00.000Z', finishedAt: '2025-01-01T00:01:00.000Z', datasets: ['/evals'], model: null, cases });
}

/** `result` with its cost per run set to `costUsd` (and its runs' usage to match). */
function withCost(result: CaseResult, costUsd: number): CaseResult {
  return { ...result, runs: result.runs.map((run) => ({ ...run, usage: { ...run.usage, costUsd } })), scores: { ...result.scores, costUsd } };
}

describe('buildReport', () => {
  it('sums up the cases in total, by agent and by dataset', () => {
    const built = report();
    expect(EvalReport.parse(built)).toEqual(built);
    expect(built.schemaVersion).toBe(1);
    expect(built.totals).toMatchObject({ cases: 3, passed: 2, failed: 1, steps: 3, tokens: 120 + 120 + 1500 });
    expect(built.totals.passRate).toBeCloseTo(2 / 3);
    expect(built.totals.costUsd).toBeCloseTo(0.04);
    expect(built.totals.wallMs).toBeCloseTo((1500 + 500 + 1500) / 3);
    // Over the two cases that expect a trajectory: the report case has none.
    expect(built.totals.toolPrecision).toBeCloseTo(0.5);
    expect(built.totals.toolRecall).toBeCloseTo(0.5);
    expect(Object.keys(built.byAgent)).toEqual(['calculator', '(default)']);
    expect(built.byAgent.calculator).toMatchObject({ cases: 2, passed: 1, failed: 1, passRate: 0.5 });
    expect(built.byAgent['(default)']).toMatchObject({ cases: 1, passed: 1, toolPrecision: 1 });
    expect(built.byDataset['/evals/calc.yaml']).toMatchObject({ cases: 2 });
    expect(built.byDataset['/evals/files.jsonl']).toMatchObject({ cases: 1 });
  });

  it('gives a pass rate of 0 for no cases', () => {
    expect(report([]).totals).toMatchObject({ cases: 0, passRate: 0, toolPrecision: 1 });
  });
});

describe('renderReportTable', () => {
  it('shows one line per case with its result and first failure, then the totals', () => {
    const table = renderReportTable(report());
    const lines = table.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^CASE\s+RESULT\s+STEPS\s+TOOLS\s+COST\s+WALL\s+FIRST FAILURE$/);
    expect(lines[1]).toMatch(/^calc-add\s+PASS\s+2\s+1\s+\$0\.01\s+1\.5s$/);
    expect(lines[2]).toMatch(/^calc-mul\s+FAIL\s+4\s+1\s+\$0\.01\s+500ms\s+output: does not contain "<6 & \\"six\\">"$/);
    expect(lines[3]).toMatch(/^report\s+PASS\s+3\s+0\s+\$0\.02\s+1\.5s$/);
    expect(table).toContain('3 cases: 2 passed, 1 failed (66.7%)');
    expect(table).toContain('in all: 1740 tokens, $0.04');
    expect(table).toContain('calculator: 1/2 passed');
  });

  it('keeps every line within the width', () => {
    const table = renderReportTable(report(), { width: 60 });
    for (const line of table.trimEnd().split('\n')) expect(line.length).toBeLessThanOrEqual(60);
    expect(table).toContain('…');
  });

  it('shows the runs passed of a repeated case and which run failed first', () => {
    const repeated = scoreCase(loadedCase({ repeat: 2, expect: { output: { equals: '3' } } }), [caseRun(), caseRun({ attempt: 2, output: '4' })]);
    expect(renderReportTable(report([repeated]))).toMatch(/calc-add\s+FAIL 1\/2 .*run 2: output: expected exactly "3", got "4"/);
  });
});

describe('reportToJunit', () => {
  it('writes well-formed XML: a suite per dataset file, a case per case, failures escaped', () => {
    const xml = reportToJunit(report(), { baseDir: '/evals' });
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ')).toBe(true);
    // Loosely well-formed: every tag closed in order, and no raw < & or " left inside text or attributes.
    const stack: string[] = [];
    for (const [, closing, name, selfClosing] of xml.replace(/<\?xml[^>]*\?>/, '').matchAll(/<(\/?)([A-Za-z-]+)(?:\s+[A-Za-z-]+="[^"<]*")*\s*(\/?)>/g)) {
      if (closing === '/') expect(stack.pop()).toBe(name);
      else if (selfClosing !== '/' && name !== undefined) stack.push(name);
    }
    expect(stack).toEqual([]);
    const text = xml.replace(/<[^>]*>/g, '');
    expect(text).not.toMatch(/[<"]|&(?!(amp|lt|gt|quot|apos|#\d+);)/);

    expect(xml).toContain('<testsuites name="troupe eval" tests="3" failures="1" errors="0" time="3.500">');
    expect(xml.match(/<testsuite /g)).toHaveLength(2);
    expect(xml).toContain('<testsuite name="calc.yaml" tests="2" failures="1"');
    expect(xml).toContain('<testcase name="calc-mul" classname="calc.yaml" time="0.500">');
    expect(xml).toContain('<failure message="output: does not contain &quot;&lt;6 &amp; \\&quot;six\\&quot;&gt;&quot;" type="expectation">');
    expect(xml).toContain('trajectory: expected calc_mul, the run never called calc_mul</failure>');
    expect(xml).toContain('<system-out>run 1: session session-2, trace trace-1</system-out>');
  });

  it('drops characters XML cannot hold', () => {
    const broken = scoreCase(loadedCase(), [caseRun({ status: 'failed', error: 'bell\u0007 and \u001b[31mred\uFFFF' })]);
    expect(reportToJunit(report([broken]))).toContain('<failure message="error: bell and [31mred" type="expectation">error: bell and [31mred</failure>');
  });
});

describe('compareToBaseline', () => {
  it('finds a case that passed in the baseline and fails now, and the pass rate down', () => {
    const baseline = report([addCase, { ...mulCase, passed: true, runs: mulCase.runs.map((run) => ({ ...run, passed: true, failures: [] })) }, reportCase]);
    expect(compareToBaseline(report(), baseline)).toEqual([
      { caseId: 'calc-mul', what: 'passed in the baseline, fails now: output: does not contain "<6 & \\"six\\">"' },
      { caseId: '(all cases)', what: 'pass rate down from 100% to 66.7% over the 3 cases in both reports' },
    ]);
  });

  it('finds cost up by half and steps up by more than a fifth', () => {
    const now = report([withCost(reportCase, 0.03), { ...addCase, scores: { ...addCase.scores, steps: 5 } }]);
    const baseline = report([reportCase, addCase]);
    expect(compareToBaseline(now, baseline)).toEqual([
      { caseId: 'report', what: 'cost up from $0.02 to $0.03 (+50%)' },
      { caseId: 'calc-add', what: 'steps up from 2 to 5 (+150%)' },
    ]);
  });

  it('ignores noise on tiny numbers: one step more of two, a fraction of a hundredth of a cent', () => {
    const now = report([{ ...withCost(addCase, 0.00015), scores: { ...withCost(addCase, 0.00015).scores, steps: 3 } }]);
    const baseline = report([withCost(addCase, 0.0001)]);
    expect(compareToBaseline(now, baseline)).toEqual([]);
  });

  it('finds a faulted case whose side-effecting calls ran more than once where they did not before', () => {
    const recovery = { faultKinds: ['crash'], recovered: true, extraSteps: 1, extraCostUsd: 0, controlPassed: true, duplicatedSideEffects: 0 };
    const baseline = report([{ ...addCase, recovery }]);
    const now = report([{ ...addCase, recovery: { ...recovery, duplicatedSideEffects: 1 } }]);
    expect(compareToBaseline(now, baseline)).toEqual([{ caseId: 'calc-add', what: 'side-effecting calls run more than once under its faults: 1, 0 in the baseline' }]);
    expect(compareToBaseline(baseline, now)).toEqual([]);
  });

  it('reads a baseline written before duplicated side effects were counted as none', () => {
    const { duplicatedSideEffects: _counted, ...older } = { faultKinds: ['crash'], recovered: true, extraSteps: 1, extraCostUsd: 0, controlPassed: true, duplicatedSideEffects: 0 };
    const written = JSON.parse(JSON.stringify(report([{ ...addCase, recovery: older as never }])));
    expect(readBaseline(JSON.stringify(written)).cases[0]?.recovery?.duplicatedSideEffects).toBe(0);
  });

  it('does not count a baseline case missing now, nor a new case', () => {
    const baseline = report([addCase, mulCase]);
    expect(compareToBaseline(report([addCase, reportCase]), baseline)).toEqual([]);
  });
});

describe('readBaseline', () => {
  it('reads a report written as JSON', () => {
    const written = report();
    expect(readBaseline(JSON.stringify(written))).toEqual(written);
  });

  it('refuses a report of another schema version, saying which it reads', () => {
    const future = { ...report(), schemaVersion: 2 };
    expect(() => readBaseline(JSON.stringify(future))).toThrow(/schemaVersion 2; this troupe reads schemaVersion 1/);
  });

  it('refuses a malformed report, naming the field', () => {
    const broken = JSON.parse(JSON.stringify(report()));
    broken.cases[1].scores.costUsd = 'cheap';
    let thrown: unknown;
    try {
      readBaseline(JSON.stringify(broken));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(BaselineError);
    expect(thrown).toMatchObject({ name: 'BaselineError', field: 'cases[1].scores.costUsd' });
    expect(String(thrown)).toContain('The baseline is not an eval report: cases[1].scores.costUsd:');
  });

  it('refuses text that is not JSON', () => {
    expect(() => readBaseline('{"schemaVersion": 1,')).toThrow(/^The baseline is not JSON/);
  });
});

describe('fault kinds in the report', () => {
  it('names the faults a script plays on the model, and groups cases by them beside the pools\' kinds', () => {
    expect(modelFaultKindsOf({ steps: [
      { fault: { kind: 'http_error', status: 429, times: 2 }, content: 'a' },
      { content: 'b' },
      { fault: { kind: 'malformed_tool_call' }, toolCalls: [{ name: 'calc_evaluate', arguments: {} }] },
      { fault: { kind: 'http_error', status: 429 }, content: 'c' },
    ] } as never)).toEqual(['model_http_429', 'model_malformed_tool_call']);
    const recovery = { faultKinds: ['crash'], recovered: true, extraSteps: 1, extraCostUsd: 0, controlPassed: true, duplicatedSideEffects: 0 };
    const built = report([{ ...addCase, modelFaults: ['model_http_429'] }, { ...mulCase, recovery, modelFaults: ['model_http_429'] }, reportCase]);
    expect(Object.fromEntries(Object.entries(built.byFaultKind).map(([kind, totals]) => [kind, totals.cases]))).toEqual({ crash: 1, model_http_429: 2, none: 1 });
    expect(renderReportTable(built)).toContain('  fault model_http_429: 1/2 passed');
  });
});
