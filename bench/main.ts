/**
 * `npm run bench`: orchestrator overhead, a delegation hop, pool throughput and memory per session, each printed
 * beside the same run's raw NATS request/reply floor; the price of a tool's side effects; 1,000 concurrent sessions
 * over two orchestrators and two pool members; a soak whose memory must stay flat; and the hand-over of parked
 * sessions from an orchestrator that dies, with the KV writes they cost while parked. Not a test: it asserts
 * nothing, it measures.
 *
 * `npm run bench -- --only scale,soak` runs some cases (see {@link benchCases}); `--scale N` sets the concurrent
 * sessions (1,000) and `--soak N` the soak's sessions (20,000: about 4 of a whole run's 8 to 9 minutes on 2 shared
 * cores; `--soak 5000` for a shorter run); `--parked N` the hand-over's parked sessions (10,000); `--quick` is a
 * smoke run whose numbers mean little.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeHeapSnapshot } from 'node:v8';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import OpenAI from 'openai';
import { startOrchestrator } from '../actors/orchestrator/orchestrator.ts';
import { startSpecialistPool } from '../actors/worker/specialistPool.ts';
import { startWorker } from '../actors/worker/toolWorker.ts';
import { defineAgent } from '../agents/defineAgent.ts';
import { startSession } from '../client/sessionClient.ts';
import { defaultPriceTable } from '../models/priceTable.ts';
import { loadScripts } from '../scriptedModel/scriptLibrary.ts';
import { startScriptedModelServer } from '../scriptedModel/server.ts';
import { startNatsServer } from '../testing/natsServer.ts';
import { assembleContext, ContextSettings, type ContextSummary } from '../machines/contextAssembly.ts';
import type { ChatMessage } from '../machines/conversation.ts';
import type { LedgerEntry } from '../machines/ledger.ts';
import { tokenCounterFor } from '../models/tokenCounter.ts';
import type { SessionEvent } from '../transport/messages.ts';
import { startBenchDeployment } from './benchDeployment.ts';
import { canCollect, fmt, fullGc, percentile } from './benchStats.ts';
import { benchAgent, BenchTask, benchTools, releaseHeld, writeBenchScripts } from './benchWorkload.ts';
import { runSessions } from './runSessions.ts';
import { printScaleOut, scaleOut } from './scaleOut.ts';
import { printSideEffectSteps, sideEffectSteps } from './sideEffectSteps.ts';
import { startDiscardingTelemetry } from './discardingTelemetry.ts';
import { printSoakHeader, printSoakReading, printSoakSummary, soak, type SoakOptions } from './soak.ts';
import { handOver, printHandOver } from './handOver.ts';
import { printSessionLength, sessionLength } from './sessionLength.ts';

/** The cases `--only` selects, in the order they run; all of them by default. */
export const benchCases = ['overhead', 'throughput', 'heap', 'side-effects', 'assembly', 'scale', 'length', 'soak', 'handover'] as const;
type BenchCase = (typeof benchCases)[number];

const { values: args } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, soak: { type: 'string' }, scale: { type: 'string' }, parked: { type: 'string' } },
});
const quick = args.quick;
const only = args.only?.split(',').map((c) => c.trim()).filter((c) => c !== '');
const unknownCases = only?.filter((c) => !(benchCases as readonly string[]).includes(c)) ?? [];
if (unknownCases.length > 0) throw new Error(`No bench case ${unknownCases.join(', ')}; cases: ${benchCases.join(', ')}.`);
const selected = (name: BenchCase) => only === undefined || only.includes(name);
const count = (flag: string | undefined, name: string, fallback: number) => {
  if (flag === undefined) return fallback;
  const n = Number(flag);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} takes a positive whole number of sessions, not "${flag}".`);
  return n;
};
const scaleSessions = count(args.scale, 'scale', quick ? 200 : 1000);
const soakSessions = count(args.soak, 'soak', quick ? 1000 : 20_000);
const parkedSessions = count(args.parked, 'parked', quick ? 1000 : 10_000);

/**
 * What one delegation hop adds: the delegating call's duration minus the specialist's model time,
 * i.e. dispatch, the specialist pool's validation, hosting its session (statechart, spans, events)
 * and relaying its events back.
 */
async function delegationHops(nc: NatsConnection, sessions: number): Promise<number[]> {
  const hops: number[] = [];
  for (let i = 0; i < sessions; i++) {
    const run = await startSession(nc, { task: BenchTask.delegate, agent: 'bench' });
    const events: SessionEvent[] = [];
    for await (const event of run.events) events.push(event);
    const call = events.find((e) => e.type === 'tool.call.finished' && e.tool === 'delegate_benchy');
    if (call?.type !== 'tool.call.finished' || call.status !== 'ok') throw new Error(`bench delegation failed: ${JSON.stringify(call)}`);
    const specialistModelMs = events.reduce((sum, e) => sum + (e.type === 'specialist.event' && e.event.type === 'model.responded' ? e.event.durationMs : 0), 0);
    hops.push(call.durationMs - specialistModelMs);
  }
  return hops;
}

async function natsFloor(nc: NatsConnection, concurrency: number, total: number) {
  const sub = nc.subscribe('bench.echo', { callback: (_e, m) => void m.respond(m.data) });
  await nc.flush();
  const latencies: number[] = [];
  const started = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < total) {
      const t = performance.now();
      await nc.request('bench.echo', '{"type":"x"}', { timeout: 10_000 });
      latencies.push(performance.now() - t);
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  sub.unsubscribe();
  return { median: percentile(latencies, 50), p99: percentile(latencies, 99), perSecond: latencies.length / seconds };
}

async function heapPerSession(nc: NatsConnection, sessions: number): Promise<number> {
  await fullGc();
  const before = process.memoryUsage().heapUsed;
  const snapshotFile = process.env.TROUPE_BENCH_HEAP_SNAPSHOT;
  if (snapshotFile) console.log(`heap snapshot before the sessions: ${writeHeapSnapshot(snapshotFile.replace(/(\.heapsnapshot)?$/, '.before.heapsnapshot'))}`);
  const runs = await Promise.all(Array.from({ length: sessions }, () => startSession(nc, { task: BenchTask.hold, agent: 'bench' })));
  // Every session is now parked on its in-flight tool call: measure while all of them are alive.
  await Promise.all(runs.map(async (run) => {
    for await (const event of run.events) if (event.type === 'tool.call.started') break;
  }));
  await fullGc();
  const during = process.memoryUsage().heapUsed;
  // To see what a session holds: `TROUPE_BENCH_HEAP_SNAPSHOT=<file> npm run bench -- --only heap`, then compare the two in Chrome's DevTools.
  if (snapshotFile) console.log(`heap snapshot with ${sessions} sessions parked: ${writeHeapSnapshot(snapshotFile)}`);
  releaseHeld();
  await Promise.all(runs.map((r) => r.finished));
  return (during - before) / sessions;
}

/**
 * What assembling one request costs as a session grows: a conversation of `turns` turns, each with
 * a 2 KB tool result, assembled for a 32k window the way every turn does (counts of earlier
 * messages are remembered, so only the new turn is tokenized).
 */
function assemblyCost(turns: number, repeats: number): number {
  const conversation: ChatMessage[] = [{ role: 'system', content: 'You read records.' }, { role: 'user', content: 'Read every page.' }];
  const ledger: LedgerEntry[] = [];
  const count = tokenCounterFor('o200k_base');
  const page = (t: number) => JSON.stringify(Array.from({ length: 40 }, (_, i) => ({ id: t * 100 + i, sku: `SKU-${t}-${i}` })));
  const times: number[] = [];
  let summary: ContextSummary | null = null;
  for (let t = 1; t <= turns; t++) {
    conversation.push({ role: 'assistant', content: null, toolCalls: [{ id: `c${t}`, name: 'bulk_fetch', arguments: `{"page":${t}}` }] });
    conversation.push({ role: 'tool', toolCallId: `c${t}`, content: page(t) });
    ledger.push({ turn: t, callId: `c${t}`, toolCallId: `c${t}`, tool: 'bulk_fetch', arguments: { page: t }, status: 'ok' });
    if (t < turns - repeats) continue;
    const started = performance.now();
    const assembled = assembleContext({
      conversation, summary, ledger, toolTokens: 200, contextWindow: 32_000, settings: ContextSettings.parse({}), count, calibration: 1, canSummarise: true,
    });
    // As a session would: the summary takes the place of the turns it was asked for.
    if (assembled.summarise) summary = { text: 'Earlier pages were read; their records are in the ledger.', throughIndex: assembled.summarise.throughIndex, throughTurn: assembled.summarise.throughTurn };
    times.push(performance.now() - started);
  }
  return percentile(times, 50);
}

async function main(): Promise<void> {
  const server = await startNatsServer();
  const scriptsDir = mkdtempSync(join(tmpdir(), 'troupe-bench-'));
  writeBenchScripts(scriptsDir);
  const model = await startScriptedModelServer({ scripts: await loadScripts([scriptsDir]), port: 0 });
  console.log(`Troupe benchmark — Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB${quick ? ' (quick)' : ''}${only ? ` (only ${only.join(', ')})` : ''}`);
  try {
    if ((['overhead', 'throughput', 'heap', 'side-effects'] as const).some(selected)) await oneOfEach(server.url, model.url);
    if (selected('assembly')) {
      console.log('\ncontext assembly per turn (o200k tokenizer, 2 KB tool result a turn, 32k window), by session length');
      for (const turns of quick ? [10, 100, 1000] : [10, 100, 1000, 5000]) {
        console.log(`  ${String(turns).padStart(5)} turns: median ${fmt(assemblyCost(turns, 20))} ms per assembly`);
      }
    }
    // Its own namespace: the one-of-each deployment's orchestrator and worker take no part.
    const withDeployment = async (run: (deployment: Awaited<ReturnType<typeof startBenchDeployment>>) => Promise<void>) => {
      const deployment = await startBenchDeployment({ natsUrl: server.url, modelUrl: model.url, namespace: 'benchscale', orchestrators: 2, poolMembers: 2 });
      try {
        await run(deployment);
      } finally {
        await deployment.stop();
      }
    };
    if (selected('scale')) await withDeployment(async (deployment) => printScaleOut(await scaleOut(deployment, scaleSessions), deployment));
    // Registering the SDK is for good: the cases with tracing on come after every case without it.
    if (selected('length')) {
      printSessionLength(await sessionLength({
        natsUrl: server.url, natsPid: server.pid, modelUrl: model.url, lengths: quick ? [10, 30] : [10, 30, 100], stepsPerLength: quick ? 200 : 1_200,
        telemetry: startDiscardingTelemetry,
      }));
    }
    if (selected('soak')) {
      // The soak runs as a deployment does, with telemetry.
      await withDeployment(async (deployment) => {
        const options: SoakOptions = { sessions: soakSessions, concurrency: 50, natsPid: server.pid, telemetry: await startDiscardingTelemetry(), onReading: printSoakReading };
        printSoakHeader(options);
        printSoakSummary(await soak(deployment, options));
      });
    }
    if (selected('length') || selected('soak')) await (await startDiscardingTelemetry()).shutdown();
    if (selected('handover')) printHandOver(await handOver({ natsUrl: server.url, modelUrl: model.url, parked: parkedSessions }));
  } finally {
    await model.close();
    await server.stop();
    rmSync(scriptsDir, { recursive: true, force: true });
  }
}

/**
 * The cases run on one of each, each on its own connection: an orchestrator (first without
 * checkpoints, then durable), a `bench` pool member, a specialist pool and a client.
 */
async function oneOfEach(natsUrl: string, modelUrl: string): Promise<void> {
  const connections: NatsConnection[] = [];
  const connection = async () => {
    const nc = await connect({ servers: natsUrl, noAsyncTraces: true });
    connections.push(nc);
    return nc;
  };
  const client = await connection();
  const worker = await startWorker({ domain: 'bench', tools: benchTools(), nats: await connection() });
  const orchestratorOptions = {
    nats: await connection(),
    model: { client: new OpenAI({ baseURL: modelUrl, apiKey: 'bench', maxRetries: 0 }), providerName: 'openai', prices: defaultPriceTable },
    defaultModel: 'scripted',
    agents: [benchAgent],
  };
  let withoutCheckpoints: number[] = [];
  if (selected('overhead')) {
    // First without checkpoints, for the price of durability per step; then durable, as deployed.
    const ephemeral = await startOrchestrator({ ...orchestratorOptions, durable: false });
    await runSessions(client, 2, 4, BenchTask.steps);
    withoutCheckpoints = (await runSessions(client, 1, quick ? 10 : 30, BenchTask.steps)).stepOverheads;
    await ephemeral.stop({ graceMs: 0 });
  }
  const orchestrator = await startOrchestrator(orchestratorOptions);
  const specialist = await startSpecialistPool({
    ...orchestratorOptions, nats: await connection(),
    agent: defineAgent({ name: 'benchy', instructions: 'bench specialist', tools: ['bench_*'] }),
  });
  try {
    await runSessions(client, 4, 8, BenchTask.steps); // warm-up: JIT, connections, discovery
    const floor1 = await natsFloor(client, 1, quick ? 500 : 3000);
    console.log(`\nfloor: raw NATS request/reply, 1 in flight: median ${fmt(floor1.median)} ms, p99 ${fmt(floor1.p99)} ms, ${fmt(floor1.perSecond, 0)} req/s`);

    if (selected('overhead')) {
      const single = await runSessions(client, 1, quick ? 10 : 40, BenchTask.steps);
      const stepMedian = percentile(single.stepOverheads, 50);
      const toolMedian = percentile(single.toolOverheads, 50);
      console.log('\norchestrator overhead (scripted model over HTTP, no-op tool; model and tool time excluded)');
      console.log(`  per step:      median ${fmt(stepMedian)} ms, p99 ${fmt(percentile(single.stepOverheads, 99))} ms  (${fmt(stepMedian / floor1.median, 1)}× floor)`);
      console.log(`  per tool call: median ${fmt(toolMedian)} ms, p99 ${fmt(percentile(single.toolOverheads, 99))} ms  (${fmt(toolMedian / floor1.median, 1)}× floor; dispatch + NATS + worker validation)`);
      const ephemeralMedian = percentile(withoutCheckpoints, 50);
      console.log(`  checkpointing: ${fmt(stepMedian - ephemeralMedian)} ms per step (median per step ${fmt(ephemeralMedian)} ms without checkpoints, ${fmt(stepMedian)} ms with)`);

      await delegationHops(client, 3); // warm-up
      const hops = await delegationHops(client, quick ? 10 : 40);
      const hopMedian = percentile(hops, 50);
      console.log(`  per delegation hop: median ${fmt(hopMedian)} ms, p99 ${fmt(percentile(hops, 99))} ms  (${fmt(hopMedian / toolMedian, 1)}× a plain tool call; specialist model time excluded)`);
    }

    if (selected('throughput')) {
      console.log('\ntool calls per second through one pool (one worker)');
      for (const concurrency of quick ? [1, 50] : [1, 50, 500]) {
        const sessions = concurrency === 1 ? (quick ? 10 : 30) : concurrency * 2;
        const result = await runSessions(client, concurrency, sessions, BenchTask.steps);
        const floor = await natsFloor(client, concurrency, Math.max(2000, concurrency * 20));
        console.log(`  ${String(concurrency).padStart(3)} concurrent sessions: ${fmt(result.toolCallsPerSecond, 0).padStart(6)} tool calls/s   floor ${fmt(floor.perSecond, 0).padStart(6)} req/s   (${fmt(result.toolCallsPerSecond / floor.perSecond, 3)}× floor)`);
      }
    }

    if (selected('heap')) {
      const heapSessions = quick ? 100 : 500;
      const heap = await heapPerSession(client, heapSessions);
      console.log(`\nheap per concurrent session (${heapSessions} parked on a tool call${canCollect() ? '' : ', no --expose-gc'}): ${fmt(heap / 1024, 1)} KiB`);
    }

    if (selected('side-effects')) {
      printSideEffectSteps(await sideEffectSteps(client, { rounds: quick ? 2 : 5, sessionsPerRound: quick ? 5 : 8, concurrency: 50 }));
    }
  } finally {
    await orchestrator.stop({ graceMs: 0 });
    await specialist.stop({ graceMs: 0 });
    await worker.stop();
    for (const nc of connections) await nc.close();
  }
}

await main();
