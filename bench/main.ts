/**
 * `npm run bench`: orchestrator overhead, a delegation hop, pool throughput and memory per session, each printed
 * beside the same run's raw NATS request/reply floor. Not a test: it asserts nothing, it measures.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import OpenAI from 'openai';
import * as z from 'zod';
import { startOrchestrator } from '../actors/orchestrator/orchestrator.ts';
import { startSpecialistPool } from '../actors/worker/specialistPool.ts';
import { startWorker } from '../actors/worker/toolWorker.ts';
import { defineAgent } from '../agents/defineAgent.ts';
import { startSession } from '../client/sessionClient.ts';
import { defaultPriceTable } from '../models/priceTable.ts';
import { loadScripts } from '../scriptedModel/scriptLibrary.ts';
import { startScriptedModelServer } from '../scriptedModel/server.ts';
import { startNatsServer } from '../testing/natsServer.ts';
import { defineTool } from '../tools/defineTool.ts';
import { assembleContext, ContextSettings, type ContextSummary } from '../machines/contextAssembly.ts';
import type { ChatMessage } from '../machines/conversation.ts';
import type { LedgerEntry } from '../machines/ledger.ts';
import { tokenCounterFor } from '../models/tokenCounter.ts';
import type { SessionEvent } from '../transport/messages.ts';

const quick = process.argv.includes('--quick');
const stepsPerSession = 10;

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};
const fmt = (n: number, digits = 3) => n.toFixed(digits);

let release: () => void = () => {};
let held = new Promise<void>((resolve) => (release = resolve));
const benchTools = [
  defineTool({ name: 'bench_noop', description: 'Does nothing.', input: z.object({ i: z.number() }), output: z.object({ i: z.number() }), handler: ({ i }) => ({ i }) }),
  defineTool({
    name: 'bench_hold', description: 'Waits until the benchmark releases it.', input: z.object({}), output: z.object({}), timeoutMs: 120_000,
    handler: async () => {
      await held;
      return {};
    },
  }),
];

function writeScripts(dir: string): void {
  const steps = Array.from({ length: stepsPerSession }, (_, i) => ({ toolCalls: [{ id: `c${i}`, name: 'bench_noop', arguments: { i } }] }));
  writeFileSync(join(dir, 'steps.json'), JSON.stringify({ name: 'bench-steps', match: { userIncludes: 'bench steps' }, steps: [...steps, { content: 'done' }] }));
  writeFileSync(join(dir, 'hold.json'), JSON.stringify({
    name: 'bench-hold', match: { userIncludes: 'bench hold' },
    steps: [{ toolCalls: [{ id: 'h', name: 'bench_hold', arguments: {} }] }, { content: 'released' }],
  }));
  writeFileSync(join(dir, 'delegate.json'), JSON.stringify({
    name: 'bench-delegate', match: { userIncludes: 'bench delegate' },
    steps: [{ toolCalls: [{ id: 'd', name: 'delegate_benchy', arguments: { task: 'bench specialist' } }] }, { content: 'delegated' }],
  }));
  writeFileSync(join(dir, 'specialist.json'), JSON.stringify({ name: 'bench-specialist', match: { userIncludes: 'bench specialist' }, steps: [{ content: 'ok' }] }));
}

/**
 * What one delegation hop adds: the delegating call's duration minus the specialist's model time,
 * i.e. dispatch, the specialist pool's validation, hosting its session (statechart, spans, events)
 * and relaying its events back.
 */
async function delegationHops(nc: NatsConnection, sessions: number): Promise<number[]> {
  const hops: number[] = [];
  for (let i = 0; i < sessions; i++) {
    const run = await startSession(nc, { task: 'bench delegate', agent: 'bench' });
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

async function runSessions(nc: NatsConnection, concurrency: number, sessions: number) {
  const stepOverheads: number[] = [];
  const toolOverheads: number[] = [];
  let toolCalls = 0;
  const started = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, sessions) }, async () => {
    while (next++ < sessions) {
      const run = await startSession(nc, { task: 'bench steps', agent: 'bench' });
      const events: SessionEvent[] = [];
      for await (const event of run.events) events.push(event);
      const finished = events.at(-1);
      if (finished?.type !== 'session.finished' || finished.status !== 'completed') throw new Error(`bench session ended ${JSON.stringify(finished)}`);
      const modelMs = events.reduce((sum, e) => sum + (e.type === 'model.responded' ? e.durationMs : 0), 0);
      const toolMs = events.reduce((sum, e) => sum + (e.type === 'tool.call.finished' ? e.durationMs : 0), 0);
      stepOverheads.push((finished.durationMs - modelMs - toolMs) / finished.steps);
      for (const e of events) if (e.type === 'tool.call.finished') toolOverheads.push(e.durationMs);
      toolCalls += finished.toolCalls;
    }
  }));
  return { stepOverheads, toolOverheads, toolCallsPerSecond: toolCalls / ((performance.now() - started) / 1000) };
}

async function heapPerSession(nc: NatsConnection, sessions: number): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage().heapUsed;
  const runs = await Promise.all(Array.from({ length: sessions }, () => startSession(nc, { task: 'bench hold', agent: 'bench' })));
  // Every session is now parked on its in-flight tool call: measure while all of them are alive.
  await Promise.all(runs.map(async (run) => {
    for await (const event of run.events) if (event.type === 'tool.call.started') break;
  }));
  gc?.();
  const during = process.memoryUsage().heapUsed;
  release();
  await Promise.all(runs.map((r) => r.finished));
  held = new Promise<void>((resolve) => (release = resolve));
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
  writeScripts(scriptsDir);
  const model = await startScriptedModelServer({ scripts: await loadScripts([scriptsDir]), port: 0 });
  const orchestratorConnection = await connect({ servers: server.url });
  const workerConnection = await connect({ servers: server.url });
  const client = await connect({ servers: server.url });
  const worker = await startWorker({ domain: 'bench', tools: benchTools, nats: workerConnection });
  const specialistConnection = await connect({ servers: server.url });
  const agent = defineAgent({ name: 'bench', instructions: 'bench', budgets: { maxSteps: 100, maxWallClockMs: 600_000 } });
  const orchestratorOptions = {
    nats: orchestratorConnection,
    model: { client: new OpenAI({ baseURL: model.url, apiKey: 'bench', maxRetries: 0 }), providerName: 'openai', prices: defaultPriceTable },
    defaultModel: 'scripted',
    agents: [agent],
  };
  // First without checkpoints, for the price of durability per step; then durable, as deployed.
  const ephemeral = await startOrchestrator({ ...orchestratorOptions, durable: false });
  await runSessions(client, 2, 4);
  const withoutCheckpoints = await runSessions(client, 1, quick ? 10 : 30);
  await ephemeral.stop({ graceMs: 0 });
  const orchestrator = await startOrchestrator(orchestratorOptions);
  const specialist = await startSpecialistPool({
    ...orchestratorOptions, nats: specialistConnection,
    agent: defineAgent({ name: 'benchy', instructions: 'bench specialist', tools: ['bench_*'] }),
  });

  console.log(`Troupe benchmark — Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB${quick ? ' (quick)' : ''}`);
  await runSessions(client, 4, 8); // warm-up: JIT, connections, discovery
  const floor1 = await natsFloor(client, 1, quick ? 500 : 3000);
  console.log(`\nfloor: raw NATS request/reply, 1 in flight: median ${fmt(floor1.median)} ms, p99 ${fmt(floor1.p99)} ms, ${fmt(floor1.perSecond, 0)} req/s`);

  const single = await runSessions(client, 1, quick ? 10 : 40);
  const stepMedian = percentile(single.stepOverheads, 50);
  const toolMedian = percentile(single.toolOverheads, 50);
  console.log('\norchestrator overhead (scripted model over HTTP, no-op tool; model and tool time excluded)');
  console.log(`  per step:      median ${fmt(stepMedian)} ms, p99 ${fmt(percentile(single.stepOverheads, 99))} ms  (${fmt(stepMedian / floor1.median, 1)}× floor)`);
  console.log(`  per tool call: median ${fmt(toolMedian)} ms, p99 ${fmt(percentile(single.toolOverheads, 99))} ms  (${fmt(toolMedian / floor1.median, 1)}× floor; dispatch + NATS + worker validation)`);
  const ephemeralMedian = percentile(withoutCheckpoints.stepOverheads, 50);
  console.log(`  checkpointing: ${fmt(stepMedian - ephemeralMedian)} ms per step (median per step ${fmt(ephemeralMedian)} ms without checkpoints, ${fmt(stepMedian)} ms with)`);

  await delegationHops(client, 3); // warm-up
  const hops = await delegationHops(client, quick ? 10 : 40);
  const hopMedian = percentile(hops, 50);
  console.log(`  per delegation hop: median ${fmt(hopMedian)} ms, p99 ${fmt(percentile(hops, 99))} ms  (${fmt(hopMedian / toolMedian, 1)}× a plain tool call; specialist model time excluded)`);

  console.log('\ntool calls per second through one pool (one worker)');
  for (const concurrency of quick ? [1, 50] : [1, 50, 500]) {
    const sessions = concurrency === 1 ? (quick ? 10 : 30) : concurrency * 2;
    const result = await runSessions(client, concurrency, sessions);
    const floor = await natsFloor(client, concurrency, Math.max(2000, concurrency * 20));
    console.log(`  ${String(concurrency).padStart(3)} concurrent sessions: ${fmt(result.toolCallsPerSecond, 0).padStart(6)} tool calls/s   floor ${fmt(floor.perSecond, 0).padStart(6)} req/s   (${fmt(result.toolCallsPerSecond / floor.perSecond, 3)}× floor)`);
  }

  console.log('\ncontext assembly per turn (o200k tokenizer, 2 KB tool result a turn, 32k window), by session length');
  for (const turns of quick ? [10, 100, 1000] : [10, 100, 1000, 5000]) {
    console.log(`  ${String(turns).padStart(5)} turns: median ${fmt(assemblyCost(turns, 20))} ms per assembly`);
  }

  const heapSessions = quick ? 100 : 500;
  const heap = await heapPerSession(client, heapSessions);
  console.log(`\nheap per concurrent session (${heapSessions} parked on a tool call${(globalThis as { gc?: unknown }).gc ? '' : ', no --expose-gc'}): ${fmt(heap / 1024, 1)} KiB`);

  await orchestrator.stop({ graceMs: 0 });
  await specialist.stop({ graceMs: 0 });
  await worker.stop();
  for (const nc of [orchestratorConnection, workerConnection, specialistConnection, client]) await nc.close();
  await model.close();
  await server.stop();
}

await main();
