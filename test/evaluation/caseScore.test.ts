import { describe, expect, it } from 'vitest';
import { CaseResult, scoreCase } from '../../evaluation/caseScore.ts';
import { recoveryOf } from '../../evaluation/caseRecovery.ts';
import { buildReport, renderReportTable, reportToJunit } from '../../evaluation/evalReport.ts';
import { caseRun, loadedCase, made } from './evalFixtures.ts';

/** The failures of one run of a case with `expectation`. */
function failuresOf(expectation: Parameters<typeof loadedCase>[0], run = caseRun()): string[] {
  return scoreCase(loadedCase(expectation), [run]).runs[0]?.failures ?? [];
}

describe('scoreCase', () => {
  it('passes a run that meets every expectation and scores it', () => {
    const evalCase = loadedCase({
      agent: 'calculator',
      expect: {
        output: { contains: '3', regex: '^\\d+$', equals: '3' },
        trajectory: { mode: 'strict', calls: [{ tool: 'calc_add', arguments: { a: 1, b: 2 } }] },
        maxSteps: 2,
        maxToolCalls: 1,
        maxCostUsd: 0.01,
      },
    });
    const result = scoreCase(evalCase, [caseRun()]);
    expect(CaseResult.parse(result)).toEqual(result);
    expect(result).toMatchObject({ id: 'calc-add', file: '/evals/calc.yaml', agent: 'calculator', passed: true });
    expect(result.runs[0]).toMatchObject({ attempt: 1, sessionId: 'session-1', traceId: 'trace-1', passed: true, failures: [], trajectory: { matched: true } });
    expect(result.scores).toEqual({ success: 1, toolPrecision: 1, toolRecall: 1, trajectoryMatch: 1, steps: 2, toolCalls: 1, tokens: 120, costUsd: 0.01, wallMs: 1500 });
  });

  it('checks the phases a workflow went through, in order, and each call\'s phase', () => {
    const run = caseRun({
      phases: ['triage', 'investigate', 'report'],
      toolCalls: [{ tool: 'db_query', arguments: {}, status: 'ok', phase: 'triage' }, { tool: 'calc_evaluate', arguments: {}, status: 'ok', phase: 'investigate' }],
    });
    const inPhases = { mode: 'strict' as const, arguments: 'ignore' as const, calls: [{ tool: 'db_query', phase: 'triage' }, { tool: 'calc_evaluate', phase: 'investigate' }] };
    expect(failuresOf({ expect: { phases: ['triage', 'investigate', 'report'], trajectory: inPhases } }, run)).toEqual([]);
    expect(failuresOf({ expect: { phases: ['triage', 'investigate', 'propose', 'report'] } }, run)).toEqual([
      'phases: expected triage → investigate → propose → report, the run went triage → investigate → report',
    ]);
    expect(failuresOf({ expect: { phases: ['triage'] } }, caseRun())).toEqual(['phases: expected triage, the run went through no workflow']);
    expect(failuresOf({ expect: { trajectory: { ...inPhases, calls: [{ tool: 'db_query', phase: 'investigate' }, { tool: 'calc_evaluate', phase: 'investigate' }] } } }, run)).toEqual([
      'trajectory: call 1: expected db_query in phase investigate, the run called db_query({}) in phase triage',
    ]);
  });

  it('fails a run with another status, giving the stop reason', () => {
    const run = caseRun({ status: 'budget_exhausted', stopReason: 'budget exhausted: maxSteps' });
    expect(failuresOf({}, run)).toEqual(['status: expected completed, got budget_exhausted (budget exhausted: maxSteps)']);
  });

  it('passes a session that failed when the case expects it to fail', () => {
    const run = caseRun({ status: 'failed', stopReason: 'model call failed: HTTP 500', output: null });
    expect(failuresOf({ expect: { status: 'failed' } }, run)).toEqual([]);
  });

  it('fails a run with an error with that error alone, even when the case expects failed', () => {
    const run = caseRun({ status: 'failed', stopReason: 'eval', error: 'the session did not start', output: null });
    expect(failuresOf({ expect: { output: { contains: '3' }, maxSteps: 1 } }, run)).toEqual(['error: the session did not start']);
    expect(failuresOf({ expect: { status: 'failed' } }, run)).toEqual(['error: the session did not start']);
  });

  it('fails on output that does not contain each expected text', () => {
    expect(failuresOf({ expect: { output: { contains: ['3', '42', 'three'] } } })).toEqual(['output: does not contain "42"', 'output: does not contain "three"']);
  });

  it('fails on output that does not match the regex or equal the text', () => {
    expect(failuresOf({ expect: { output: { regex: '^\\d{2}$', equals: '4' } } })).toEqual(['output: does not match /^\\d{2}$/', 'output: expected exactly "4", got "3"']);
  });

  it('fails on an output check when there is no output', () => {
    expect(failuresOf({ expect: { output: { contains: '3' } } }, caseRun({ output: null }))).toEqual(['output: the run gave no output']);
  });

  it('checks JSON paths in the output, a fenced block read as its content', () => {
    const output = '```json\n{"total": 7, "items": [{"name": "a"}], "note": null}\n```';
    const json = [
      { path: '$.total', equals: 8 },
      { path: '$.items[0].name', equals: 'a' },
      { path: '$.items[1]' },
      { path: '$.note', exists: false },
      { path: '$.currency', equals: 'EUR' },
    ];
    expect(failuresOf({ expect: { output: { json } } }, caseRun({ output }))).toEqual([
      'output: $.total is 7, expected 8',
      'output: $.items[1] is missing',
      'output: $.note is present, expected absent',
      'output: $.currency is missing, expected "EUR"',
    ]);
  });

  it('fails a JSON check on output that is not JSON', () => {
    expect(failuresOf({ expect: { output: { json: [{ path: '$.total', equals: 3 }] } } }, caseRun({ output: 'three' }))[0]).toMatch(/^output: is not JSON \(/);
  });

  it('fails on steps, tool calls and cost over their limits', () => {
    const run = caseRun({ steps: 12, toolCallCount: 5, usage: { inputTokens: 1000, outputTokens: 200, costUsd: 0.0132 } });
    expect(failuresOf({ expect: { maxSteps: 10, maxToolCalls: 4, maxCostUsd: 0.01 } }, run)).toEqual([
      'steps: 12 > maxSteps 10',
      'tool calls: 5 > maxToolCalls 4',
      'cost: $0.0132 > maxCostUsd $0.01',
    ]);
  });

  it('fails on a wrong trajectory, its problems prefixed', () => {
    const run = caseRun({ toolCalls: [made('calc_mul', { a: 1, b: 2 })] });
    const result = scoreCase(loadedCase({ expect: { trajectory: { mode: 'strict', calls: [{ tool: 'calc_add', arguments: { a: 1, b: 2 } }] } } }), [run]);
    expect(result.runs[0]?.failures).toEqual(['trajectory: call 1: expected calc_add({"a":1,"b":2}), the run called calc_mul({"a":1,"b":2})']);
    expect(result.scores).toMatchObject({ success: 0, toolPrecision: 0, toolRecall: 0, trajectoryMatch: 0 });
  });

  it('gives pass^k 0 and the share of runs passed when one of several runs fails', () => {
    const runs = [caseRun(), caseRun({ attempt: 2, sessionId: 'session-2', output: '4', usage: { inputTokens: 300, outputTokens: 60, costUsd: 0.03 } }), caseRun({ attempt: 3, sessionId: 'session-3' })];
    const result = scoreCase(loadedCase({ repeat: 3, expect: { output: { equals: '3' } } }), runs);
    expect(result.passed).toBe(false);
    expect(result.runs.map((run) => run.passed)).toEqual([true, false, true]);
    expect(result.scores.success).toBeCloseTo(2 / 3);
    expect(result.scores.passHatK).toBe(0);
    expect(result.scores.costUsd).toBeCloseTo(0.05 / 3);
    expect(result.scores.tokens).toBeCloseTo(200);
  });

  it('gives pass^k 1 when every run passes, and none for a single run', () => {
    expect(scoreCase(loadedCase({ repeat: 2 }), [caseRun(), caseRun({ attempt: 2 })]).scores.passHatK).toBe(1);
    expect(scoreCase(loadedCase(), [caseRun()]).scores.passHatK).toBeUndefined();
  });

  it('does not pass a case without runs', () => {
    expect(scoreCase(loadedCase(), [])).toMatchObject({ passed: false, runs: [], scores: { success: 0 } });
  });
});

describe('scoreCase, a case meant to fail', () => {
  it('passes when a run misses an expectation, and fails, saying so, when every run meets them all', () => {
    const meant = loadedCase({ id: 'known-gap', meantToFail: 'the agent cannot multiply yet', expect: { output: { contains: '42' } } });
    const failedAsMeant = scoreCase(meant, [caseRun({ output: '41' })]);
    expect(failedAsMeant).toMatchObject({ passed: true, meantToFail: 'the agent cannot multiply yet' });
    expect(failedAsMeant.runs[0]?.failures).toEqual([expect.stringContaining('output: does not contain "42"')]);
    const surprise = scoreCase(meant, [caseRun({ output: '42' })]);
    expect(surprise.passed).toBe(false);
    const report = buildReport({ startedAt: 'a', finishedAt: 'b', datasets: ['d'], model: null, cases: [failedAsMeant, { ...surprise, id: 'surprise' }] });
    const table = renderReportTable(report, { width: 300 });
    expect(table).toMatch(/known-gap\s+XFAIL/);
    expect(table).toMatch(/surprise\s+XPASS .*meant to fail \(the agent cannot multiply yet\), yet met every expectation/);
    expect(reportToJunit(report)).toContain('meant to fail (the agent cannot multiply yet), yet met every expectation');
    expect(report.totals).toMatchObject({ passed: 1, failed: 1 });
  });
});

describe('scoreCase, files the run must leave', () => {
  it('fails a missing file, a file without the text, and a file that must not exist, each in a sentence', () => {
    const evalCase = loadedCase({
      id: 'files',
      expect: { files: [{ path: 'out/report.md', contains: ['revenue', 'total'] }, { path: 'out/draft.md', exists: false }, { path: 'out/log.md' }] },
    });
    const passed = scoreCase(evalCase, [caseRun({ files: { 'out/report.md': 'total revenue: 12', 'out/draft.md': null, 'out/log.md': '' } })]);
    expect(passed.passed).toBe(true);
    const failed = scoreCase(evalCase, [caseRun({ files: { 'out/report.md': 'revenue only', 'out/draft.md': 'left behind', 'out/log.md': null } })]);
    expect(failed.runs[0]?.failures).toEqual([
      'files: out/report.md does not contain "total"',
      'files: out/draft.md exists, expected it not to',
      'files: out/log.md does not exist',
    ]);
  });

  it('refuses a path outside the workspace when the dataset is loaded', () => {
    expect(() => loadedCase({ expect: { files: [{ path: '../etc/passwd' }] } })).toThrow(/a path inside the workspace/);
    expect(() => loadedCase({ expect: { files: [{ path: '/etc/passwd' }] } })).toThrow(/a path inside the workspace/);
  });
});

describe('scoreCase, side effects run once', () => {
  it('fails a run whose side-effecting call ran twice by the idempotency records, and counts it in the recovery', () => {
    const evalCase = loadedCase({ id: 'note', faults: { files_write: [{ kind: 'crash', at: 'after_effect', times: 1 }] }, expect: { sideEffects: 'once' } });
    const twice = caseRun({ toolCalls: [{ ...made('files_write', { path: 'a.md' }), handlerRuns: 2 }, made('calc_add', { a: 1, b: 2 })] });
    const once = caseRun({ toolCalls: [{ ...made('files_write', { path: 'a.md' }), handlerRuns: 1 }, made('calc_add', { a: 1, b: 2 })] });
    const faulted = scoreCase(evalCase, [twice]);
    expect(faulted.runs[0]?.failures).toEqual(['sideEffects: files_write ran 2 times for one call']);
    const control = scoreCase(evalCase, [once]);
    expect(control.passed).toBe(true);
    expect(recoveryOf(evalCase, faulted, control)).toMatchObject({ faultKinds: ['crash'], recovered: false, duplicatedSideEffects: 1 });
    expect(recoveryOf(evalCase, control, control)).toMatchObject({ recovered: true, duplicatedSideEffects: 0 });
  });

  it('does not judge handler runs when the case does not ask', () => {
    expect(failuresOf({}, caseRun({ toolCalls: [{ ...made('files_write'), handlerRuns: 3 }] }))).toEqual([]);
  });

  it('refuses a sideEffects value other than once when the dataset is loaded', () => {
    expect(() => loadedCase({ expect: { sideEffects: 'twice' as 'once' } })).toThrow(/sideEffects/);
  });
});
