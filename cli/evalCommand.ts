import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { placeCaseDatabase } from '../evaluation/caseDatabase.ts';
import { hasFaults, modelFaultKindsOf, recoveryOf } from '../evaluation/caseRecovery.ts';
import type { CaseRun } from '../evaluation/caseRun.ts';
import { scoreCase } from '../evaluation/caseScore.ts';
import { DatasetError } from '../evaluation/datasetError.ts';
import { loadDatasets, type LoadedCase } from '../evaluation/datasetLoader.ts';
import { buildReport, compareToBaseline, readBaseline, renderReportTable, reportToJunit, type EvalReport, type Regression } from '../evaluation/evalReport.ts';
import { runEvalCases, type EvalProgress } from '../evaluation/evalRunner.ts';
import { reportToHtml } from '../evaluation/htmlReport.ts';
import { Script } from '../scriptedModel/script.ts';
import { bundledScriptsDir, loadScripts } from '../scriptedModel/scriptLibrary.ts';
import { readEnvironment, type Environment } from './environment.ts';
import { connectProcess } from './natsSettings.ts';
import { createLogger } from '../observability/logger.ts';
import { EvalProgressDisplay } from './evalProgress.ts';
import { onEvalStack, type EvalStack, type EvalStackPlan } from './evalStacks.ts';
import { UsageError } from './usageError.ts';
import { exampleAgents } from '../agents/exampleAgents.ts';
import { toolPatternWithin } from '../machines/workflowValidation.ts';
import { refundsToolName } from '../domains/refunds/refundsTools.ts';
import { loadAgents } from './agentModules.ts';
import { runGuardrails } from '../guardrails/defineGuardrail.ts';
import type { AgentDefinition } from '../agents/defineAgent.ts';

const usage = 'usage: troupe eval <dataset file or folder>… [--running] [--concurrency N] [--repeat K] [--filter ID]… [--json] [--junit FILE] [--html FILE] [--baseline FILE [--fail-on-regression]] [--timeout SECONDS] [--log-dir DIR]';

/** What `troupe eval` was asked to do. */
export interface EvalOptions {
  datasets: string[];
  concurrency: number;
  repeat?: number;
  filter: string[];
  json: boolean;
  junit?: string;
  html?: string;
  baseline?: string;
  failOnRegression: boolean;
  sessionTimeoutMs: number;
  logDir: string;
  /** Run on the stack already serving TROUPE_NAMESPACE (like `troupe run`) instead of starting stacks. */
  running: boolean;
}

const whole = (flag: string, text: string | undefined, min: number, max: number): number | undefined => {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} takes a whole number from ${min} to ${max}, not ${JSON.stringify(text)}\n${usage}`);
  return n;
};

export function parseEvalArgs(args: string[]): EvalOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        concurrency: { type: 'string' }, repeat: { type: 'string' }, filter: { type: 'string', multiple: true }, json: { type: 'boolean', default: false },
        junit: { type: 'string' }, html: { type: 'string' }, baseline: { type: 'string' }, 'fail-on-regression': { type: 'boolean', default: false },
        timeout: { type: 'string' }, 'log-dir': { type: 'string', default: '.troupe/logs/eval' }, running: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new UsageError(`${error instanceof Error ? error.message : String(error)}\n${usage}`);
  }
  const { values, positionals } = parsed;
  if (positionals.length === 0) throw new UsageError(`name at least one dataset (a .yaml, .yml or .jsonl file, or a folder of them)\n${usage}`);
  if (values['fail-on-regression'] && values.baseline === undefined) throw new UsageError(`--fail-on-regression compares with a baseline: give --baseline FILE\n${usage}`);
  const repeat = whole('--repeat', values.repeat, 1, 100);
  return {
    datasets: positionals,
    concurrency: whole('--concurrency', values.concurrency, 1, 64) ?? 4,
    ...(repeat !== undefined ? { repeat } : {}),
    filter: values.filter ?? [],
    json: values.json,
    ...(values.junit !== undefined ? { junit: values.junit } : {}),
    ...(values.html !== undefined ? { html: values.html } : {}),
    ...(values.baseline !== undefined ? { baseline: values.baseline } : {}),
    failOnRegression: values['fail-on-regression'],
    sessionTimeoutMs: (whole('--timeout', values.timeout, 1, 3_600) ?? 300) * 1000,
    logDir: values['log-dir'],
    running: values.running,
  };
}

/**
 * Checks, before anything runs, that each case with a script is answered by it: the scripted model
 * picks a script by the task's text, so a case whose task another script matches better would run
 * someone else's trajectory. Returns the folder of the cases' scripts, for the model server.
 */
async function stageScripts(cases: readonly LoadedCase[], agents: Readonly<Record<string, AgentDefinition>>): Promise<{ dir: string; problems: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'troupe-eval-scripts-'));
  const staged = new Map<string, string>();
  for (const scriptFile of cases.flatMap((c) => [...(c.scriptFile ? [c.scriptFile] : []), ...(c.specialistScriptFiles ?? [])])) {
    // A shipped trajectory (the refund desk's, say) is served already: staged again, its name would be taken twice.
    if (staged.has(scriptFile) || dirname(resolve(scriptFile)) === resolve(bundledScriptsDir)) continue;
    const name = `${staged.size}-${basename(scriptFile)}`;
    copyFileSync(scriptFile, join(dir, name));
    staged.set(scriptFile, name);
  }
  const problems: string[] = [];
  let library;
  try {
    library = await loadScripts([bundledScriptsDir, dir]);
  } catch (error) {
    return { dir, problems: [error instanceof Error ? error.message : String(error)] };
  }
  for (const evalCase of cases) {
    if (!evalCase.scriptFile) {
      problems.push(`${evalCase.file}: case ${evalCase.id}: script: no model is configured (OPENAI_BASE_URL or OPENAI_API_KEY), so every case needs a scripted trajectory`);
      continue;
    }
    const wanted = JSON.parse(readFileSync(evalCase.scriptFile, 'utf8')) as { name?: string };
    const choice = library.choose([{ role: 'user', content: await taskAsTheModelReadsIt(evalCase, agents) }]);
    const chosen = 'script' in choice ? choice.script.name : undefined;
    if (chosen !== wanted.name) {
      problems.push(`${evalCase.file}: case ${evalCase.id}: script: its task is answered by ${chosen ? `script "${chosen}"` : 'no script'}, not by "${String(wanted.name)}" (${evalCase.scriptFile}): make the task include that script's match.userIncludes`);
    }
  }
  return { dir, problems };
}

/** The task after the agent's input guardrails (a card number masked, say): what the scripted model chooses its script by. */
async function taskAsTheModelReadsIt(evalCase: LoadedCase, agents: Readonly<Record<string, AgentDefinition>>): Promise<string> {
  const guardrails = (evalCase.agent === undefined ? undefined : agents[evalCase.agent])?.guardrails ?? [];
  if (!guardrails.some((guardrail) => guardrail.at.includes('input'))) return evalCase.task;
  return (await runGuardrails(guardrails, { point: 'input', content: evalCase.task, sessionId: `eval-check-${evalCase.id}` })).content;
}

/** Whether a case's agent is an example agent that names the refunds pool's tool (the refund desk): its stack starts that pool. */
function needsRefundsPool(evalCase: LoadedCase): boolean {
  const agent = evalCase.agent === undefined ? undefined : exampleAgents[evalCase.agent];
  return agent?.tools?.some((pattern) => toolPatternWithin(refundsToolName, [pattern])) ?? false;
}

/** Cases that run on one stack, and where their runs go: the fault-free runs, or the faulted ones. */
interface StackJob {
  plan: EvalStackPlan;
  cases: LoadedCase[];
  /** After the case id in progress lines. */
  label: string;
  into: Map<string, CaseRun[]>;
  natsRestartAtStep?: number;
}

// Stacks started side by side: a case with faults spends most of its time waiting out deadlines, but
// each stack is a dozen processes, and starting them is what a small machine feels.
const stacksAtOnce = 2;

/** Runs `work` on every item, at most `atOnce` at a time; rejects with the first failure once all have settled. */
async function inTurns<T>(items: readonly T[], atOnce: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const results = await Promise.allSettled(Array.from({ length: Math.max(1, Math.min(atOnce, items.length)) }, async () => {
    for (let item = items[next++]; item !== undefined; item = items[next++]) await work(item);
  }));
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Runs every case on the stack serving `env`'s namespace, as `troupe run` would start its sessions. */
async function runOnRunningStack(env: Environment, options: EvalOptions, cases: readonly LoadedCase[], onProgress: (event: EvalProgress) => void, into: Map<string, CaseRun[]>): Promise<void> {
  const nats = await connectProcess(env, { name: 'troupe-eval', logger: createLogger({ name: 'eval', level: 'error' }), longRunning: false });
  try {
    const runs = await runEvalCases({
      nats, namespace: env.TROUPE_NAMESPACE, cases, concurrency: options.concurrency, sessionTimeoutMs: options.sessionTimeoutMs, onProgress,
      workspace: resolve(env.TROUPE_WORKSPACE), ...(options.repeat !== undefined ? { repeat: options.repeat } : {}),
    });
    for (const [id, caseRuns] of runs) into.set(id, caseRuns);
  } finally {
    await nats.drain().catch(() => undefined);
  }
}

/** Builds each case's `setup.database` once before anything runs, so that SQL that does not run is reported with its case. */
function checkDatabases(cases: readonly LoadedCase[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'troupe-eval-databases-'));
  try {
    return cases.flatMap((evalCase) => {
      if (evalCase.databaseFile === undefined) return [];
      try {
        placeCaseDatabase(evalCase.databaseFile, join(dir, 'check.sqlite'));
        return [];
      } catch (error) {
        return [`${evalCase.file}: case ${evalCase.id}: setup.database: ${evalCase.databaseFile}: ${error instanceof Error ? error.message : String(error)}`];
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * 0 when every case passed and nothing regressed, else 1. With `failOnRegression` only regressions
 * count: gating a change on a baseline judges the change, not the dataset, so a case that failed in
 * the baseline too does not fail the run.
 */
export function evalExitCode(report: EvalReport, regressions: readonly Regression[], failOnRegression: boolean): number {
  if (failOnRegression) return regressions.length === 0 ? 0 : 1;
  return report.totals.failed === 0 && regressions.length === 0 ? 0 : 1;
}

/** `troupe eval`: runs datasets of cases as real sessions and reports how each did (see README, Evals). */
export async function evalCommand(args: string[]): Promise<number> {
  const options = parseEvalArgs(args);
  const out = (line: string) => process.stdout.write(`${line}\n`);
  let cases: LoadedCase[];
  try {
    cases = await loadDatasets(options.datasets);
  } catch (error) {
    if (!(error instanceof DatasetError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return 2;
  }
  if (options.filter.length > 0) {
    const unknown = options.filter.filter((id) => !cases.some((c) => c.id === id));
    if (unknown.length > 0) throw new UsageError(`--filter names no case ${unknown.map((id) => JSON.stringify(id)).join(', ')} in ${options.datasets.join(', ')}`);
    cases = cases.filter((c) => options.filter.includes(c.id));
  }
  const unusableDatabases = checkDatabases(cases);
  if (unusableDatabases.length > 0) {
    process.stderr.write(`${unusableDatabases.join('\n')}\n`);
    return 2;
  }
  let baseline: EvalReport | undefined;
  if (options.baseline !== undefined) {
    try {
      baseline = readBaseline(readFileSync(options.baseline, 'utf8'));
    } catch (error) {
      process.stderr.write(`the baseline ${options.baseline} cannot be used: ${error instanceof Error ? error.message : String(error)}\n`);
      return 2;
    }
  }

  if (options.running) {
    // The running stack's pools are a deployment's: nothing may be injected into them or swapped under them.
    const own = cases.filter((c) => hasFaults(c) || c.databaseFile !== undefined)
      .map((c) => `${c.file}: case ${c.id}: ${c.databaseFile !== undefined ? 'setup.database' : c.faults ? 'faults' : 'natsRestart'}: needs a stack of its own, which --running does not start: leave out --running, or --filter the case out`);
    if (own.length > 0) {
      process.stderr.write(`${own.join('\n')}\n`);
      return 2;
    }
  }

  const env = readEnvironment();
  const realModel = Boolean(env.OPENAI_BASE_URL || env.OPENAI_API_KEY);
  // A running stack plays its own model (scripted with the scripts it was started with, or real).
  const staged = realModel || options.running ? undefined : await stageScripts(cases, await loadAgents(env));
  try {
    if (realModel && !options.running && cases.some((c) => c.scriptFile)) {
      throw new UsageError(`a model is configured (OPENAI_BASE_URL or OPENAI_API_KEY), so scripted cases cannot run: unset them to run ${cases.filter((c) => c.scriptFile).map((c) => c.id).join(', ')} on the scripted model, or --filter the others`);
    }
    if (staged && staged.problems.length > 0) {
      process.stderr.write(`${staged.problems.join('\n')}\n`);
      return 2;
    }
    const childEnv: NodeJS.ProcessEnv = staged ? { TROUPE_SCRIPTS: [staged.dir, ...(process.env.TROUPE_SCRIPTS?.split(':').filter(Boolean) ?? [])].join(':') } : {};
    const startedAt = new Date().toISOString();
    const total = cases.reduce((sum, c) => sum + (options.repeat ?? c.repeat ?? 1) * (hasFaults(c) ? 2 : 1), 0);
    // With --json the report owns stdout: the progress goes to stderr.
    const display = new EvalProgressDisplay(options.json ? process.stderr : process.stdout, total);
    const progress = (label: string) => (event: EvalProgress) => {
      if (event.kind !== 'finished') return;
      const passed = scoreCase(cases.find((c) => c.id === event.caseId) as LoadedCase, [event.run]).passed;
      display.finished({ caseId: event.caseId, label, attempt: event.attempt, passed, steps: event.run.steps, durationMs: event.run.durationMs });
    };
    const settings = { logDir: options.logDir, childEnv, say: (line: string) => display.note(line) };
    const runCases = (stack: EvalStack, of: readonly LoadedCase[], label: string, atStep?: Parameters<typeof runEvalCases>[0]['atStep']) => runEvalCases({
      nats: stack.stack.nats, namespace: stack.namespace, cases: of, concurrency: options.concurrency, sessionTimeoutMs: options.sessionTimeoutMs,
      onProgress: progress(label), workspace: stack.workspace,
      ...(options.repeat !== undefined ? { repeat: options.repeat } : {}),
      ...(atStep ? { atStep } : {}),
    });
    // Every case without a database of its own on one stack (a case with faults runs there without
    // them: its control); each case with a database, then each case with faults, on a stack of its
    // own, so that no other case meets them.
    const runs = new Map<string, CaseRun[]>();
    const faultedRuns = new Map<string, CaseRun[]>();
    const onShared = cases.filter((c) => c.databaseFile === undefined);
    const refunds = (of: readonly LoadedCase[]) => (of.some(needsRefundsPool) ? { refundDesk: true } : {});
    const jobs: StackJob[] = [
      ...(onShared.length > 0 ? [{ plan: refunds(onShared), cases: onShared, label: '', into: runs }] : []),
      ...cases.filter((c) => c.databaseFile !== undefined).map((c) => ({ plan: { databaseFile: c.databaseFile, ...refunds([c]) }, cases: [c], label: '', into: runs })),
      ...cases.filter(hasFaults).map((c): StackJob => ({
        plan: { ...(c.faults ? { faults: c.faults } : {}), ...(c.natsRestart ? { ownNats: true } : {}), ...(c.databaseFile ? { databaseFile: c.databaseFile } : {}), ...refunds([c]) },
        cases: [c], label: ' (faults)', into: faultedRuns, ...(c.natsRestart ? { natsRestartAtStep: c.natsRestart.atStep } : {}),
      })),
    ];
    try {
      if (options.running) await runOnRunningStack(env, options, cases, progress(''), runs);
      else await inTurns(jobs, Math.min(options.concurrency, stacksAtOnce), async (job) => {
        const jobRuns = await onEvalStack(job.plan, settings, (stack) => runCases(stack, job.cases, job.label,
          job.natsRestartAtStep !== undefined && stack.restartNats ? { step: job.natsRestartAtStep, inject: stack.restartNats } : undefined));
        for (const [id, caseRuns] of jobRuns) job.into.set(id, caseRuns);
      });
    } finally {
      display.end();
    }
    const report: EvalReport = buildReport({
      startedAt, finishedAt: new Date().toISOString(), datasets: options.datasets, model: realModel || options.running ? (env.TROUPE_MODEL ?? null) : 'scripted',
      cases: cases.map((c) => {
        const control = scoreCase(c, runs.get(c.id) ?? []);
        const modelFaults = c.scriptFile ? modelFaultKindsOf(Script.parse(JSON.parse(readFileSync(c.scriptFile, 'utf8')))) : [];
        const result = modelFaults.length > 0 ? { ...control, modelFaults } : control;
        if (!hasFaults(c)) return result;
        const faulted = scoreCase(c, faultedRuns.get(c.id) ?? []);
        return { ...faulted, ...(modelFaults.length > 0 ? { modelFaults } : {}), recovery: recoveryOf(c, faulted, control) };
      }),
    });
    if (options.json) out(JSON.stringify(report, null, 2));
    else out(renderReportTable(report, { width: process.stdout.columns || 120 }));
    if (options.junit) writeFileSync(options.junit, reportToJunit(report, { baseDir: process.cwd() }));
    const regressions = baseline ? compareToBaseline(report, baseline) : [];
    if (options.html) {
      writeFileSync(options.html, reportToHtml(report, {
        ...(baseline && options.baseline ? { baseline: { file: options.baseline, report: baseline, regressions } } : {}),
        ...(env.JAEGER_URL ? { jaegerUrl: env.JAEGER_URL } : {}),
      }));
    }
    if (baseline) {
      const say = options.json ? (line: string) => process.stderr.write(`${line}\n`) : out;
      say(regressions.length === 0 ? `no regression against ${options.baseline}` : `${regressions.length} regression(s) against ${options.baseline}:`);
      for (const r of regressions) say(`  ${r.caseId}: ${r.what}`);
    }
    return evalExitCode(report, regressions, options.failOnRegression);
  } finally {
    if (staged) rmSync(staged.dir, { recursive: true, force: true });
  }
}
