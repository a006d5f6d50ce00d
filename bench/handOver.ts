import { randomUUID } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import OpenAI from 'openai';
import { startOrchestrator, type Orchestrator } from '../actors/orchestrator/orchestrator.ts';
import { startWorker } from '../actors/worker/toolWorker.ts';
import { startSession } from '../client/sessionClient.ts';
import { defaultPriceTable } from '../models/priceTable.ts';
import { SessionStartReply, type SessionStartRequest } from '../transport/messages.ts';
import { wireNames } from '../transport/subjects.ts';
import { decodeWireMessage, encodeWireMessage } from '../transport/wireMessage.ts';
import { fmt, percentile } from './benchStats.ts';
import { benchAgent, BenchTask, benchTools } from './benchWorkload.ts';

/** What {@link handOver} measured. */
export interface HandOverResult {
  readonly parked: number;
  /** KV writes a second while every session is parked, by bucket. */
  readonly writesPerSecond: { leases: number; checkpoints: number; heartbeats: number };
  /** Per session of the orchestrator that died: from its death to the other hosting the session. */
  readonly handOverMs: number[];
  readonly moved: number;
}

/**
 * `parked` sessions waiting for approval on two orchestrators; the KV writes they cost while they
 * wait; then one orchestrator dies (its connection cut, as `kill -9` would: no hand-over) and the time
 * each of its sessions takes to be hosted by the other.
 */
export async function handOver(options: { natsUrl: string; modelUrl: string; parked: number }): Promise<HandOverResult> {
  const namespace = 'benchhandover';
  const names = wireNames(namespace);
  const connections: NatsConnection[] = [];
  const connection = async (name: string) => {
    const nc = await connect({ servers: options.natsUrl, name: `${namespace}-${name}`, noAsyncTraces: true });
    connections.push(nc);
    return nc;
  };
  const worker = await startWorker({ domain: 'bench', tools: benchTools(), nats: await connection('worker'), namespace });
  const orchestrator = async (name: string): Promise<{ nc: NatsConnection; orchestrator: Orchestrator }> => {
    const nc = await connection(name);
    const started = await startOrchestrator({
      nats: nc, namespace, defaultModel: 'scripted', agents: [benchAgent],
      model: { client: new OpenAI({ baseURL: options.modelUrl, apiKey: 'bench', maxRetries: 0 }), providerName: 'openai', prices: defaultPriceTable },
      approvalPolicy: ({ tool }) => tool === 'bench_write',
    });
    await started.catalog.refresh();
    return { nc, orchestrator: started };
  };
  const dying = await orchestrator('orchestrator-dying');
  const surviving = await orchestrator('orchestrator-surviving');
  const client = await connection('client');
  try {
    // The first through the client (which sets the streams up), the rest as bare start requests: a client
    // following ten thousand sessions' events would cost more than the sessions. A few hundred at a time.
    const first = await startSession(client, { task: BenchTask.approve, agent: 'bench', namespace, acceptTimeoutMs: 60_000 });
    first.detach();
    for (let begun = 1; begun < options.parked; begun += 250) {
      await Promise.all(Array.from({ length: Math.min(250, options.parked - begun) }, async () => {
        const start: SessionStartRequest = { type: 'session.start', sessionId: randomUUID(), task: BenchTask.approve, agent: 'bench' };
        const reply = decodeWireMessage(SessionStartReply, (await client.request(names.subjects.sessionStart, encodeWireMessage(start), { timeout: 60_000 })).data, 'The start reply');
        if (!reply.ok) throw new Error(reply.error);
        if (reply.value.type !== 'session.accepted') throw new Error(`a parked session was not started: ${reply.value.reason}`);
      }));
    }
    const parked = () => [dying.orchestrator, surviving.orchestrator].reduce((n, o) => n + [...o.sessions().values()].filter((s) => s.actor.getSnapshot().matches('awaiting_approval')).length, 0);
    while (parked() < options.parked) await new Promise((resolve) => setTimeout(resolve, 100));
    // The checkpoints of the last to park land, then the writes of waiting alone are counted.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const jsm = await jetstreamManager(client);
    const lastSeqs = async () => Promise.all([names.buckets.leases, names.buckets.checkpoints, names.buckets.hosts].map(async (b) => (await jsm.streams.info(`KV_${b}`)).state.last_seq));
    const before = await lastSeqs();
    const windowMs = 10_000;
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const after = await lastSeqs();
    const perSecond = (i: number) => ((after[i] ?? 0) - (before[i] ?? 0)) / (windowMs / 1000);

    const moving = [...dying.orchestrator.sessions().keys()];
    const diedAt = performance.now();
    await dying.nc.close();
    const handOverMs: number[] = [];
    const waiting = new Set(moving);
    const deadline = Date.now() + 120_000;
    while (waiting.size > 0 && Date.now() < deadline) {
      for (const id of waiting) {
        if (surviving.orchestrator.sessions().has(id)) {
          handOverMs.push(performance.now() - diedAt);
          waiting.delete(id);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return { parked: options.parked, writesPerSecond: { leases: perSecond(0), checkpoints: perSecond(1), heartbeats: perSecond(2) }, handOverMs: handOverMs.sort((a, b) => a - b), moved: moving.length };
  } finally {
    await surviving.orchestrator.stop({ graceMs: 0 });
    // The dead one's sessions are still in this process, cut off from NATS: they are let go, unheard.
    await Promise.race([dying.orchestrator.stop({ graceMs: 0 }).catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 5_000))]);
    await worker.stop();
    for (const nc of connections) await nc.close().catch(() => undefined);
  }
}

export function printHandOver(result: HandOverResult): void {
  console.log(`\nhand-over: ${result.parked} sessions parked for approval on two orchestrators, then one dies (connection cut, no hand-over)`);
  const w = result.writesPerSecond;
  console.log(`  KV writes while parked: ${fmt(w.leases + w.checkpoints + w.heartbeats, 1)}/s (leases ${fmt(w.leases, 1)}, checkpoints ${fmt(w.checkpoints, 1)}, heartbeats ${fmt(w.heartbeats, 1)})`);
  console.log(`  ${result.handOverMs.length} of the dead one's ${result.moved} sessions hosted by the other: p50 ${fmt(percentile(result.handOverMs, 50) / 1000, 2)} s, p99 ${fmt(percentile(result.handOverMs, 99) / 1000, 2)} s, last ${fmt((result.handOverMs.at(-1) ?? 0) / 1000, 2)} s after the death`);
}
