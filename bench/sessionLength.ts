import { readFileSync } from 'node:fs';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import OpenAI from 'openai';
import { defaultPriceTable } from '../models/priceTable.ts';
import { startOrchestrator } from '../actors/orchestrator/orchestrator.ts';
import { startWorker } from '../actors/worker/toolWorker.ts';
import { fmt } from './benchStats.ts';
import { benchAgent, benchTools, lengthTasks } from './benchWorkload.ts';
import type { DiscardingTelemetry } from './discardingTelemetry.ts';
import { runSessions } from './runSessions.ts';

/** What a step costs in sessions of one length, one session at a time. */
export interface LengthReading {
  /** Tool steps per session (one more model turn answers). */
  toolSteps: number;
  /** Wall time per step (model turn), model over HTTP included, as the peer benchmark counts it. */
  wallUsPerStep: number;
  /** CPU per step: this process (orchestrator, worker, client) and the nats-server. */
  cpuUsPerStep: { process: number; natsServer: number };
  /** Bytes per step the orchestrator's connection sent to NATS: checkpoints, journal segments, events, tool requests. */
  orchestratorBytesPerStep: number;
}

export interface SessionLengthResult {
  tracingOff: LengthReading[];
  /** The shortest length again, with OpenTelemetry registered and spans exported over OTLP/HTTP. */
  tracingOn?: LengthReading;
}

/** User plus system CPU time of a process in microseconds, from `/proc` (Linux); undefined elsewhere. */
function cpuMicrosOf(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; in clock ticks (100 a second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return undefined;
  }
}

/**
 * Runs sessions of each length in `lengths` one at a time on an orchestrator, a worker and a client
 * of their own (durable, as deployed), then the first length again with telemetry, when given.
 * Issue 15 asks that a step cost about the same at 100 steps as at 10, and with tracing as without.
 */
export async function sessionLength(options: {
  natsUrl: string; natsPid: number; modelUrl: string; lengths: readonly number[]; stepsPerLength: number;
  telemetry?: () => Promise<DiscardingTelemetry>;
}): Promise<SessionLengthResult> {
  const connections: NatsConnection[] = [];
  const connection = async (name: string) => {
    const nc = await connect({ servers: options.natsUrl, noAsyncTraces: true, name });
    connections.push(nc);
    return nc;
  };
  const client = await connection('bench-length-client');
  const worker = await startWorker({ domain: 'bench', tools: benchTools(), nats: await connection('bench-length-worker') });
  const orchestratorNc = await connection('bench-length-orchestrator');
  const orchestrator = await startOrchestrator({
    nats: orchestratorNc,
    model: { client: new OpenAI({ baseURL: options.modelUrl, apiKey: 'bench', maxRetries: 0 }), providerName: 'openai', prices: defaultPriceTable },
    defaultModel: 'scripted', agents: [benchAgent],
  });
  const measure = async (toolSteps: number): Promise<LengthReading> => {
    const task = lengthTasks[toolSteps];
    if (!task) throw new Error(`No bench script for sessions of ${toolSteps} tool steps; there are ${Object.keys(lengthTasks).join(', ')}.`);
    await runSessions(client, 1, 2, task); // warm-up
    const sessions = Math.max(3, Math.ceil(options.stepsPerLength / (toolSteps + 1)));
    const steps = sessions * (toolSteps + 1);
    const bytesBefore = orchestratorNc.stats().outBytes;
    const natsBefore = cpuMicrosOf(options.natsPid) ?? 0;
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    await runSessions(client, 1, sessions, task);
    const wallUs = (performance.now() - started) * 1000;
    const cpu = process.cpuUsage(cpuBefore);
    return {
      toolSteps,
      wallUsPerStep: wallUs / steps,
      cpuUsPerStep: { process: (cpu.user + cpu.system) / steps, natsServer: ((cpuMicrosOf(options.natsPid) ?? 0) - natsBefore) / steps },
      orchestratorBytesPerStep: (orchestratorNc.stats().outBytes - bytesBefore) / steps,
    };
  };
  try {
    const tracingOff: LengthReading[] = [];
    for (const length of options.lengths) tracingOff.push(await measure(length));
    if (!options.telemetry) return { tracingOff };
    await options.telemetry();
    return { tracingOff, tracingOn: await measure(options.lengths[0] ?? 10) };
  } finally {
    await orchestrator.stop({ graceMs: 0 });
    await worker.stop();
    for (const nc of connections) await nc.close();
  }
}

export function printSessionLength(result: SessionLengthResult): void {
  const [first] = result.tracingOff;
  if (!first) return;
  console.log('\nper step by session length (one session at a time, durable; a step is a model turn with its tool call; the process runs the scripted model too; bytes: the orchestrator\'s connection)');
  console.log('  tool steps     µs/step   CPU µs/step (process + nats-server)   bytes/step to NATS   × shortest: time, bytes');
  const row = (label: string, r: LengthReading) =>
    console.log(`  ${label.padEnd(11)} ${fmt(r.wallUsPerStep, 0).padStart(9)}   ${`${fmt(r.cpuUsPerStep.process, 0)} + ${fmt(r.cpuUsPerStep.natsServer, 0)}`.padStart(35)}   ${fmt(r.orchestratorBytesPerStep, 0).padStart(18)}   ${fmt(r.wallUsPerStep / first.wallUsPerStep, 2)}, ${fmt(r.orchestratorBytesPerStep / first.orchestratorBytesPerStep, 2)}`);
  for (const r of result.tracingOff) row(String(r.toolSteps), r);
  if (result.tracingOn) row(`${result.tracingOn.toolSteps}, traced`, result.tracingOn);
}
