import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evalExitCode, parseEvalArgs } from '../../cli/evalCommand.ts';
import { UsageError } from '../../cli/usageError.ts';
import { EvalReport } from '../../evaluation/evalReport.ts';
import { startNatsServer, type NatsServerProcess } from '../../testing/natsServer.ts';
import { startTroupe } from '../fixtures/troupeProcess.ts';
import { startProcessStack, type ProcessStack } from '../fixtures/processStack.ts';
import { CheckpointStore } from '../../actors/durability/checkpointStore.ts';
import { wireNames } from '../../transport/subjects.ts';

const shippedScripts = new URL('../../evals/scripts/', import.meta.url);

describe('parseEvalArgs', () => {
  it('reads the datasets and flags, with defaults', () => {
    expect(parseEvalArgs(['evals/', '--concurrency', '2', '--filter', 'a', '--filter', 'b', '--baseline', 'base.json', '--fail-on-regression'])).toMatchObject({
      datasets: ['evals/'], concurrency: 2, filter: ['a', 'b'], baseline: 'base.json', failOnRegression: true, json: false, sessionTimeoutMs: 300_000,
    });
  });

  it('refuses what it cannot run, saying why', () => {
    expect(() => parseEvalArgs([])).toThrow(UsageError);
    expect(() => parseEvalArgs(['evals/', '--concurrency', '0'])).toThrow('--concurrency takes a whole number from 1 to 64, not "0"');
    expect(() => parseEvalArgs(['evals/', '--repeat', 'many'])).toThrow('--repeat takes a whole number from 1 to 100');
    expect(() => parseEvalArgs(['evals/', '--fail-on-regression'])).toThrow('--fail-on-regression compares with a baseline');
    expect(() => parseEvalArgs(['evals/', '--colour'])).toThrow(UsageError);
  });
});

describe('evalExitCode', () => {
  const report = (failed: number) => ({ totals: { failed } }) as EvalReport;
  it('is 0 only when every case passed and nothing regressed, or, gating on a baseline, when nothing regressed', () => {
    expect(evalExitCode(report(0), [], false)).toBe(0);
    expect(evalExitCode(report(1), [], false)).toBe(1);
    expect(evalExitCode(report(0), [{ caseId: 'a', what: 'cost up' }], false)).toBe(1);
    expect(evalExitCode(report(1), [], true)).toBe(0);
    expect(evalExitCode(report(0), [{ caseId: 'a', what: 'failed' }], true)).toBe(1);
  });
});

describe('troupe eval', () => {
  let server: NatsServerProcess;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const env = (workspace: string) => ({ NATS_URL: server.url, OPENAI_BASE_URL: '', OPENAI_API_KEY: '', TROUPE_WORKSPACE: workspace });

  /** A dataset folder with the shipped scripts beside `yaml`. */
  const dataset = (yaml: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-eval-'));
    mkdirSync(join(dir, 'scripts'));
    for (const file of ['calcSum.json', 'dbCount.json']) copyFileSync(new URL(file, shippedScripts), join(dir, 'scripts', file));
    writeFileSync(join(dir, 'cases.yaml'), yaml);
    return dir;
  };

  it('reports every problem of a dataset with its file, case and field, and runs nothing', async () => {
    const dir = dataset([
      '- id: typo',
      '  task: "Eval: add 1234 and 5678 with the calculator."',
      '  script: scripts/calcSum.json',
      '  expect: { trajectory: { mode: sorted, calls: [] } }',
      '- id: misspelt',
      '  task: "Eval: how many customers does the shop have?"',
      '  expects: {}',
      '- id: lost',
      '  task: "Eval: how many customers does the shop have?"',
      '  script: scripts/missing.json',
      '- id: bad-fault',
      '  task: "Eval: add 1234 and 5678 with the calculator."',
      '  script: scripts/calcSum.json',
      '  faults: { calc_evaluate: [{ kind: explode }] }',
      '- id: no-database',
      '  task: "Eval: how many customers does the shop have?"',
      '  script: scripts/dbCount.json',
      '  setup: { database: data/missing.sql }',
      '- id: no-specialist-script',
      '  task: "Eval: add 1234 and 5678 with the calculator."',
      '  script: scripts/calcSum.json',
      '  specialistScripts: [scripts/calcSum.json, scripts/nowhere.json]',
      '- id: restart-before-start',
      '  task: "Eval: add 1234 and 5678 with the calculator."',
      '  script: scripts/calcSum.json',
      '  natsRestart: { atStep: 0 }',
      '- id: brief-a',
      '  task: "Eval: add 1234 and 5678 with the calculator."',
      '  script: scripts/calcSum.json',
      '  setup: { files: { brief.md: "one" } }',
      '- id: brief-b',
      '  task: "Eval: add 1234 and 5678 with the calculator."',
      '  script: scripts/calcSum.json',
      '  setup: { files: { brief.md: "two" } }',
      '- id: brief-outside',
      '  task: "Eval: add 1234 and 5678 with the calculator."',
      '  script: scripts/calcSum.json',
      '  setup: { files: { ../outside.md: "x" } }',
    ].join('\n'));
    const run = startTroupe(['eval', dir], env(dir));
    expect(await run.exited).toBe(2);
    expect(run.output()).toContain('case typo: expect.trajectory.mode');
    expect(run.output()).toContain('case misspelt: expects');
    expect(run.output()).toMatch(/case lost: script: .*missing\.json/);
    expect(run.output()).toContain('case bad-fault: faults.calc_evaluate[0].kind');
    expect(run.output()).toMatch(/case no-database: setup\.database: no such database file: .*missing\.sql/);
    expect(run.output()).toContain('case restart-before-start: natsRestart.atStep');
    expect(run.output()).toMatch(/case no-specialist-script: specialistScripts\[1\]: no such script file: .*nowhere\.json/);
    expect(run.output()).toContain('case brief-b: setup.files: brief.md is set up with another text by case brief-a');
    expect(run.output()).toMatch(/case brief-outside: setup\.files.*a path inside the workspace/);
    expect(run.output()).not.toContain('started an orchestrator');
  }, 60_000);

  it('refuses a database whose SQL does not run, before anything runs', async () => {
    const dir = dataset(['- id: broken-db', '  task: "Eval: how many customers does the shop have?"', '  script: scripts/dbCount.json', '  setup: { database: broken.sql }'].join('\n'));
    writeFileSync(join(dir, 'broken.sql'), 'CREATE TABLE customers (id INTEGER PRIMARY KEY;');
    const run = startTroupe(['eval', dir], env(dir));
    expect(await run.exited).toBe(2);
    expect(run.output()).toMatch(/case broken-db: setup\.database: .*broken\.sql: its SQL does not run: .*syntax error/);
    expect(run.output()).not.toContain('started an orchestrator');
  }, 60_000);

  it('refuses a case whose task another script would answer, before anything runs', async () => {
    const dir = dataset(['- id: wrong-script', '  task: "Eval: add 1234 and 5678 with the calculator."', '  script: scripts/dbCount.json'].join('\n'));
    const run = startTroupe(['eval', dir], env(dir));
    expect(await run.exited).toBe(2);
    expect(run.output()).toContain('case wrong-script: script: its task is answered by no script, not by "eval-db-count"');
  }, 60_000);

  it('passes every case of the shipped dataset, offline', async () => {
    const workspace = mkdtempSync(join(tmpdir(), 'troupe-eval-shipped-'));
    const run = startTroupe(['eval', fileURLToPath(new URL('../../evals/', import.meta.url)), '--json', '--log-dir', join(workspace, 'logs')], env(workspace));
    const code = await run.exited;
    const report = EvalReport.parse(JSON.parse(run.output().slice(run.output().indexOf('{\n'), run.output().lastIndexOf('\n}') + 2)));
    // On a failure, say which cases failed and why, not the report's last lines.
    const failed = report.cases.filter((c) => !c.passed).map((c) => `${c.id}: ${c.runs.flatMap((r) => [...r.failures, r.stopReason]).join('; ')}`);
    // An exit code the cases do not explain (a failure while the stacks stop): its last lines say why.
    expect({ code, failed, ...(code !== 0 && failed.length === 0 ? { output: run.output().slice(run.output().lastIndexOf('\n}') + 2).slice(-2_000) } : {}) }).toEqual({ code: 0, failed: [] });
    expect(report.totals.cases).toBeGreaterThanOrEqual(25);
    expect(report.totals.failed).toBe(0);
    // The two meant to fail failed, as meant.
    const meant = report.cases.filter((c) => c.meantToFail);
    expect(meant.map((c) => [c.id, c.passed, c.runs[0]?.passed])).toEqual([['meant-to-fail-order', true, false], ['meant-to-fail-answer', true, false]]);
    // A third of the cases or more have faults, every kind the pools, the bus and the scripted model inject among them.
    const withFaults = report.cases.filter((c) => c.recovery || c.modelFaults);
    expect(withFaults.length * 3).toBeGreaterThanOrEqual(report.totals.cases);
    expect(Object.keys(report.byFaultKind).sort()).toEqual([
      'crash', 'delay', 'drop_reply', 'error', 'model_http_429', 'model_http_500', 'model_malformed_tool_call', 'model_refusal', 'nats_restart', 'none', 'timeout',
    ]);
    // The cases with faults ran on pools that injected them, recovered, and ran no side effect twice.
    const faulted = report.cases.filter((c) => c.recovery);
    expect(faulted.length).toBeGreaterThanOrEqual(8);
    for (const c of faulted) expect(c.recovery, c.id).toMatchObject({ recovered: true, controlPassed: true, duplicatedSideEffects: 0 });
    // The worker crashed mid-call of a side-effecting tool, and its handler still ran once.
    const crashed = report.cases.find((c) => c.id === 'files-note-worker-crash');
    expect(crashed?.recovery?.faultKinds).toEqual(['crash']);
    expect(crashed?.runs[0]?.toolCalls.find((call) => call.tool === 'files_write')?.handlerRuns).toBe(1);
  }, 600_000);

  it('runs a case on budgets of its own, and fails one that asks for more than its agent allows, saying so', async () => {
    const dir = dataset([
      '- id: one-step',
      '  task: "Eval: add 1234 and 5678 with the calculator."',
      '  script: scripts/calcSum.json',
      '  budgets: { maxSteps: 1 }',
      '  expect: { status: budget_exhausted }',
      '- id: too-generous',
      '  task: "Eval: add 1234 and 5678 with the calculator."',
      '  script: scripts/calcSum.json',
      '  budgets: { maxSteps: 1000 }',
    ].join('\n'));
    const run = startTroupe(['eval', dir, '--json', '--log-dir', join(dir, 'logs')], env(dir));
    expect(await run.exited, run.output().slice(-3000)).toBe(1);
    const report = EvalReport.parse(JSON.parse(run.output().slice(run.output().indexOf('{\n'), run.output().lastIndexOf('\n}') + 2)));
    expect(report.cases.find((c) => c.id === 'one-step')?.runs[0]).toMatchObject({ passed: true, status: 'budget_exhausted', steps: 1 });
    expect(report.cases.find((c) => c.id === 'too-generous')?.runs[0]?.failures).toEqual([
      expect.stringMatching(/^error: the session did not start: .*maxSteps 1000 \(its limit is 20\)/),
    ]);
  }, 120_000);

  it('runs cases as sessions, fails the one whose expectation does not hold, and writes JSON, JUnit and the regression against a baseline', async () => {
    const dir = dataset([
      '- id: sum',
      '  task: "Eval: add 1234 and 5678 with the calculator."',
      '  script: scripts/calcSum.json',
      '  expect: { output: { contains: "6912" }, trajectory: { mode: strict, calls: [{ tool: calc_evaluate, arguments: { expression: "1234 + 5678" } }] } }',
      '- id: count-wrong-order',
      '  task: "Eval: how many customers does the shop have?"',
      '  script: scripts/dbCount.json',
      '  expect: { trajectory: { mode: strict, arguments: ignore, calls: [{ tool: db_query }, { tool: db_schema }] } }',
    ].join('\n'));
    const junit = join(dir, 'junit.xml');
    const html = join(dir, 'report.html');
    const first = startTroupe(['eval', dir, '--json', '--junit', junit, '--html', html, '--log-dir', join(dir, 'logs')], env(dir));
    expect(await first.exited, first.output().slice(-3000)).toBe(1);
    const json = first.output().slice(first.output().indexOf('{\n'), first.output().lastIndexOf('\n}') + 2);
    const report = EvalReport.parse(JSON.parse(json));
    expect(report.totals).toMatchObject({ cases: 2, passed: 1, failed: 1 });
    const wrong = report.cases.find((c) => c.id === 'count-wrong-order');
    expect(wrong?.runs[0]?.failures.join('\n')).toMatch(/trajectory: call 1: expected db_query/);
    expect(report.cases.find((c) => c.id === 'sum')?.runs[0]?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(readFileSync(junit, 'utf8')).toMatch(/<testcase name="count-wrong-order"[^>]*>\s*<failure/);
    expect(readFileSync(html, 'utf8')).toMatch(/<details id="case-count-wrong-order" open>/);

    // A baseline in which both cases passed: the failing one is a regression, and gates the run.
    const baselineFile = join(dir, 'baseline.json');
    writeFileSync(baselineFile, JSON.stringify({ ...report, cases: report.cases.map((c) => ({ ...c, passed: true, runs: c.runs.map((r) => ({ ...r, passed: true, failures: [] })) })), totals: { ...report.totals, passed: 2, failed: 0, passRate: 1 } }));
    const gated = startTroupe(['eval', dir, '--baseline', baselineFile, '--fail-on-regression', '--log-dir', join(dir, 'logs')], env(dir));
    expect(await gated.exited, gated.output().slice(-3000)).toBe(1);
    expect(gated.output()).toMatch(/regression\(s\) against .*baseline\.json/);
    expect(gated.output()).toContain('count-wrong-order');
  }, 240_000);
});

describe('troupe eval --running', () => {
  let stack: ProcessStack;
  beforeAll(async () => {
    stack = await startProcessStack();
    await stack.startWorker('calc');
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('runs the cases on the stack already serving the namespace, starting none of its own', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-eval-running-'));
    writeFileSync(join(dir, 'cases.yaml'), [
      '- id: two-plus-two',
      '  task: "Please compute two plus two."',
      '  expect: { trajectory: { mode: strict, calls: [{ tool: calc_evaluate, arguments: { expression: "2 + 2" } }] } }',
    ].join('\n'));
    const run = await stack.troupe(['eval', dir, '--running', '--json']);
    expect(run.code, run.output.slice(-3000)).toBe(0);
    expect(run.output).not.toContain('started an orchestrator');
    const report = EvalReport.parse(JSON.parse(run.output.slice(run.output.indexOf('{\n'), run.output.lastIndexOf('\n}') + 2)));
    expect(report.cases[0]).toMatchObject({ id: 'two-plus-two', passed: true });
    // The session is the running stack's own: its orchestrator stored it in the stack's namespace.
    const stored = await (await CheckpointStore.open(stack.client, wireNames(stack.namespace))).read(report.cases[0]?.runs[0]?.sessionId as string);
    expect(stored?.checkpoint.status).toBe('ended');
  }, 120_000);

  it('refuses cases that need a stack of their own, before anything runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-eval-running-'));
    writeFileSync(join(dir, 'cases.yaml'), [
      '- id: faulted',
      '  task: "Please compute two plus two."',
      '  faults: { calc_evaluate: [{ kind: error, times: 1 }] }',
    ].join('\n'));
    const run = await stack.troupe(['eval', dir, '--running']);
    expect(run.code).toBe(2);
    expect(run.output).toContain('case faulted: faults: needs a stack of its own, which --running does not start');
  }, 60_000);
});
