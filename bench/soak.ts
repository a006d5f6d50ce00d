import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { BenchDeployment } from './benchDeployment.ts';
import { canCollect, fmt, mib, readMemory, residentSetOf } from './benchStats.ts';
import type { DiscardingTelemetry } from './discardingTelemetry.ts';
import { runSessionBatch } from './sessionBatch.ts';
import { BenchTask } from './benchWorkload.ts';

/** Memory after a number of soak sessions had ended. */
export interface SoakReading {
  readonly label: 'start' | 'middle' | 'end';
  readonly afterSessions: number;
  /** This process (client, orchestrators, pool members, scripted model), after a full GC. */
  readonly heapUsed: number;
  readonly rss: number;
  /** nats-server's resident set, when it can be read. */
  readonly natsRss: number | undefined;
  /** What JetStream holds across every stream (events, checkpoints, leases, outcomes, …), and its consumers. */
  readonly jetStream: { bytes: number; consumers: number };
}

export interface SoakResult {
  readonly sessions: number;
  readonly concurrency: number;
  readonly completed: number;
  readonly failed: number;
  readonly wallMs: number;
  readonly readings: SoakReading[];
  /** Sessions the orchestrators still hosted at the end (0 unless one never ended). */
  readonly stillHosted: number;
  /** Spans exported over the whole soak, when it ran with the OpenTelemetry SDK. */
  readonly spans: number | undefined;
  readonly failures: string[];
}

export interface SoakOptions {
  sessions: number;
  concurrency: number;
  natsPid: number;
  /** The SDK the soak runs under, if any: its span processor and metric readers are soaked too. */
  telemetry?: DiscardingTelemetry;
  /** Told of each reading as it is taken (a long soak reports as it goes). */
  onReading?: (reading: SoakReading) => void;
}

/**
 * Runs `sessions` soak sessions (a tool call, a side-effecting tool call, an answer) in sequential
 * batches of `concurrency`, and reads memory after a full GC at the start (after a warm-up of a
 * twentieth of the sessions, at least four batches: JIT, pools, buffers), the middle and the end.
 * Flat means the heap at the end is where it was in the middle.
 */
export async function soak(deployment: BenchDeployment, options: SoakOptions): Promise<SoakResult> {
  const { sessions, concurrency } = options;
  const warmUp = Math.min(sessions, Math.max(concurrency * 4, Math.round(sessions / 20)));
  const marks: Array<[SoakReading['label'], number]> = [['start', warmUp], ['middle', Math.round(sessions / 2)], ['end', sessions]];
  const readings: SoakReading[] = [];
  const failures: string[] = [];
  let done = 0;
  let completed = 0;
  const started = performance.now();
  for (const [label, until] of marks) {
    while (done < until) {
      const batch = await runSessionBatch(deployment.client, { task: BenchTask.soak, sessions: Math.min(concurrency, until - done), namespace: deployment.namespace });
      done += batch.completed + batch.failed;
      completed += batch.completed;
      for (const failure of batch.failures) if (failures.length < 5) failures.push(failure);
    }
    const memory = await readMemory();
    const reading: SoakReading = { label, afterSessions: done, ...memory, natsRss: residentSetOf(options.natsPid), jetStream: await jetStreamHoldings(deployment.client) };
    readings.push(reading);
    options.onReading?.(reading);
  }
  const stillHosted = deployment.orchestrators.reduce((sum, o) => sum + o.sessions().size, 0);
  return {
    sessions, concurrency, completed, failed: done - completed, wallMs: performance.now() - started, readings, stillHosted,
    spans: options.telemetry?.spansExported(), failures,
  };
}

async function jetStreamHoldings(nc: NatsConnection): Promise<{ bytes: number; consumers: number }> {
  const holdings = { bytes: 0, consumers: 0 };
  for await (const info of (await jetstreamManager(nc)).streams.list()) {
    holdings.bytes += info.state.bytes;
    holdings.consumers += info.state.consumer_count;
  }
  return holdings;
}

export function printSoakHeader(options: SoakOptions): void {
  const gc = canCollect() ? 'after a full GC' : 'no --expose-gc: not after a GC';
  const otel = options.telemetry ? ', OpenTelemetry SDK registered (spans and metrics exported, then dropped)' : '';
  console.log(`\nsoak: ${options.sessions} sessions in batches of ${options.concurrency} (2 tool calls each, one with side effects), same deployment${otel}; memory ${gc}`);
}

export function printSoakReading(r: SoakReading): void {
  const nats = r.natsRss === undefined ? '' : `   nats-server RSS ${mib(r.natsRss).padStart(6)} MiB`;
  const held = `   JetStream ${mib(r.jetStream.bytes).padStart(6)} MiB stored, ${r.jetStream.consumers} consumers`;
  console.log(`  ${r.label.padEnd(6)} (after ${String(r.afterSessions).padStart(6)}): heap ${mib(r.heapUsed).padStart(6)} MiB   RSS ${mib(r.rss).padStart(6)} MiB${nats}${held}`);
}

export function printSoakSummary(result: SoakResult): void {
  const spans = result.spans === undefined ? '' : `, ${result.spans} spans exported`;
  console.log(`  completed ${result.completed}, failed ${result.failed}, ${fmt(result.wallMs / 1000, 0)} s (${fmt(result.completed / (result.wallMs / 1000), 1)} sessions/s), still hosted at the end: ${result.stillHosted}${spans}`);
  const [start, middle, end] = result.readings;
  if (start && middle && end && end.afterSessions > middle.afterSessions) {
    const perThousand = (a: SoakReading, b: SoakReading) => fmt(((b.heapUsed - a.heapUsed) / (b.afterSessions - a.afterSessions)) * 1000 / 1024, 1);
    console.log(`  heap growth per 1,000 sessions: start→middle ${perThousand(start, middle)} KiB, middle→end ${perThousand(middle, end)} KiB`);
  }
  for (const failure of result.failures) console.log(`  failure: ${failure}`);
}
