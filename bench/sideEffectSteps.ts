import type { NatsConnection } from '@nats-io/transport-node';
import { fmt, percentile } from './benchStats.ts';
import { runSessions, type SessionTimings } from './runSessions.ts';
import { BenchTask, stepsPerSession } from './benchWorkload.ts';

/** The same steps with a tool without side effects (`read`) and the same tool declared with them (`write`). */
export interface SideEffectSteps {
  readonly read: SessionTimings;
  readonly write: SessionTimings;
  /** Tool calls per second with `concurrency` sessions in flight. */
  readonly throughput: { concurrency: number; read: number; write: number };
}

/**
 * What declaring a tool's side effects costs a step: sessions of {@link stepsPerSession} calls of
 * `bench_noop` against the same of `bench_write`, the same handler with `sideEffects: true`. The
 * two kinds alternate in rounds, so a neighbour's load on the machine falls on both alike.
 */
export async function sideEffectSteps(nc: NatsConnection, options: { rounds: number; sessionsPerRound: number; concurrency: number }): Promise<SideEffectSteps> {
  const merged = (): SessionTimings => ({ stepOverheads: [], stepTimes: [], toolOverheads: [], toolCallsPerSecond: 0 });
  const read = merged();
  const write = merged();
  await runSessions(nc, 2, 4, BenchTask.steps);
  await runSessions(nc, 2, 4, BenchTask.writes);
  for (let round = 0; round < options.rounds; round++) {
    for (const [task, into] of [[BenchTask.steps, read], [BenchTask.writes, write]] as const) {
      const timings = await runSessions(nc, 1, options.sessionsPerRound, task);
      into.stepOverheads.push(...timings.stepOverheads);
      into.stepTimes.push(...timings.stepTimes);
      into.toolOverheads.push(...timings.toolOverheads);
    }
  }
  // Throughput alternates too: each kind's rate is its calls over its own time, summed over the rounds.
  const { concurrency } = options;
  const spent = { read: 0, write: 0 };
  for (let round = 0; round < options.rounds; round++) {
    for (const kind of ['read', 'write'] as const) {
      const started = performance.now();
      await runSessions(nc, concurrency, concurrency, kind === 'read' ? BenchTask.steps : BenchTask.writes);
      spent[kind] += (performance.now() - started) / 1000;
    }
  }
  const calls = options.rounds * concurrency * stepsPerSession;
  return { read, write, throughput: { concurrency, read: calls / spent.read, write: calls / spent.write } };
}

export function printSideEffectSteps(result: SideEffectSteps): void {
  const { read, write, throughput } = result;
  const line = (label: string, pick: (t: SessionTimings) => number[]) => {
    const r = percentile(pick(read), 50);
    const w = percentile(pick(write), 50);
    console.log(`  ${label.padEnd(34)} without ${fmt(r)} ms   with ${fmt(w)} ms   (${fmt(w / r, 2)}×, ${w - r >= 0 ? '+' : ''}${fmt(w - r)} ms)`);
  };
  console.log(`\ntool with side effects against the same tool without (${stepsPerSession} tool steps a session, 1 in flight, medians; model time excluded)`);
  line('per step, tool call included:', (t) => t.stepTimes);
  line('per step, tool call excluded:', (t) => t.stepOverheads);
  line('per tool call:', (t) => t.toolOverheads);
  console.log(`  ${`tool calls/s, ${throughput.concurrency} in flight:`.padEnd(34)} without ${fmt(throughput.read, 0)}   with ${fmt(throughput.write, 0)}   (${fmt(throughput.read / throughput.write, 2)}× the time per call)`);
}
