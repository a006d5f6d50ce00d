import type { BenchDeployment } from './benchDeployment.ts';
import { fmt, percentile } from './benchStats.ts';
import { runSessionBatch } from './sessionBatch.ts';
import { BenchTask, stepsPerSession } from './benchWorkload.ts';

/** What {@link scaleOut} measured. */
export interface ScaleOutResult {
  readonly sessions: number;
  readonly completed: number;
  readonly failed: number;
  readonly wallMs: number;
  readonly sessionsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** How many sessions each orchestrator hosted, in the order of the deployment's. */
  readonly hostedBy: number[];
  readonly failures: string[];
}

/**
 * `sessions` sessions of {@link stepsPerSession} tool steps each, all started at once against the
 * deployment (its orchestrators share the starts through their queue group, its pool members the
 * calls); after a small warm-up batch, so JIT and connections are not what is measured.
 */
export async function scaleOut(deployment: BenchDeployment, sessions: number): Promise<ScaleOutResult> {
  const run = (count: number) => runSessionBatch(deployment.client, { task: BenchTask.steps, sessions: count, namespace: deployment.namespace });
  await run(Math.min(50, sessions));
  const hosted = deployment.orchestrators.map(() => 0);
  // Counted as sessions arrive, so the split between orchestrators is what the queue group did.
  const counting = setInterval(() => deployment.orchestrators.forEach((o, i) => (hosted[i] = Math.max(hosted[i] ?? 0, o.sessions().size))), 50);
  const result = await run(sessions).finally(() => clearInterval(counting));
  return {
    sessions,
    completed: result.completed,
    failed: result.failed,
    wallMs: result.wallMs,
    sessionsPerSecond: result.completed / (result.wallMs / 1000),
    p50Ms: percentile(result.latenciesMs, 50),
    p99Ms: percentile(result.latenciesMs, 99),
    hostedBy: hosted,
    failures: result.failures,
  };
}

export function printScaleOut(result: ScaleOutResult, deployment: BenchDeployment): void {
  console.log(`\n${result.sessions} concurrent sessions, ${deployment.orchestrators.length} orchestrators, ${deployment.workers.length} pool members (${stepsPerSession} tool steps a session; one process, a NATS connection each)`);
  console.log(`  completed ${result.completed}, failed ${result.failed}, wall ${fmt(result.wallMs / 1000, 1)} s, ${fmt(result.sessionsPerSecond, 1)} sessions/s (${fmt(result.sessionsPerSecond * (stepsPerSession + 1), 0)} steps/s)`);
  console.log(`  session latency: p50 ${fmt(result.p50Ms / 1000, 2)} s, p99 ${fmt(result.p99Ms / 1000, 2)} s   most in flight per orchestrator: ${result.hostedBy.join(' / ')}`);
  for (const failure of result.failures) console.log(`  failure: ${failure}`);
}
