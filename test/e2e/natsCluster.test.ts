import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { CheckpointStore } from '../../actors/durability/checkpointStore.ts';
import { startSession } from '../../client/sessionClient.ts';
import { startNatsCluster, type NatsCluster } from '../../testing/natsCluster.ts';
import { startTestDeployment, type TestDeployment } from '../../testing/testDeployment.ts';
import { defineTool } from '../../tools/defineTool.ts';
import { jetStreamReplicas } from '../../transport/jetStreamReplicas.ts';
import { wireNames } from '../../transport/subjects.ts';
import { testNamespace } from '../fixtures/testNamespace.ts';

/** Held until the test opens it: every session is inside its tool call when a server is killed. */
class Gate {
  #open!: () => void;
  readonly opened = new Promise<void>((resolve) => (this.#open = resolve));
  open(): void {
    this.#open();
  }
}

/** Resolves once `count` calls have entered. */
class Arrivals {
  readonly #waiting: Array<{ count: number; resolve: () => void }> = [];
  readonly seen = new Set<string>();
  arrive(key: string): void {
    this.seen.add(key);
    for (const waiter of this.#waiting.filter((w) => this.seen.size >= w.count)) waiter.resolve();
  }
  async atLeast(count: number): Promise<void> {
    if (this.seen.size >= count) return;
    await new Promise<void>((resolve) => this.#waiting.push({ count, resolve }));
  }
}

/** Resolves once every one of `assets` has a leader other than `gone` that answers. */
async function leadersElected(jsm: JetStreamManager, assets: readonly string[], gone: string): Promise<void> {
  for (const asset of assets) {
    for (;;) {
      const leader = await jsm.streams.info(asset).then((info) => info.cluster?.leader, () => undefined);
      if (leader && leader !== gone) break;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

const sessions = 6;
// Each session's model gives its call an id of its own, as real models do: the idempotency record is per call id.
const taskOf = (i: number) => `Record cluster entry ${i}.`;

function writeScripts(dir: string, count: number): void {
  for (let i = 0; i < count; i++) {
    writeFileSync(join(dir, `clusterEntry${i}.json`), JSON.stringify({
      name: `cluster-entry-${i}`,
      match: { userIncludes: taskOf(i) },
      steps: [
        { toolCalls: [{ id: `cluster_call_${i}`, name: 'ledger_record', arguments: { entry: `entry-${i}` } }] },
        { content: `recorded {{tool:cluster_call_${i}:result.entry}}` },
      ],
    }));
  }
}

describe('Troupe on a three-node NATS cluster', () => {
  const namespace = testNamespace();
  const names = wireNames(namespace);
  let cluster: NatsCluster;
  let deployment: TestDeployment;
  let scripts: string;
  let gate = new Gate();
  const arrivals = new Arrivals();
  /** How many times each entry's side effect really happened. */
  const effects = new Map<string, number>();
  const ledgerRecord = defineTool({
    name: 'ledger_record',
    description: 'Records an entry in the ledger.',
    input: z.object({ entry: z.string() }),
    output: z.object({ entry: z.string() }),
    sideEffects: true,
    // Longer than the cluster takes to elect new leaders: the call waits through it in one attempt.
    timeoutMs: 60_000,
    // An undo capture makes the pool open its undo object store, so its replicas are checked too.
    compensation: { capture: ({ entry }) => ({ entry }), undo: () => undefined },
    handler: async ({ entry }) => {
      arrivals.arrive(entry);
      await gate.opened;
      effects.set(entry, (effects.get(entry) ?? 0) + 1);
      return { entry };
    },
  });

  beforeAll(async () => {
    cluster = await startNatsCluster({ name: 'troupe-e2e' });
    scripts = mkdtempSync(join(tmpdir(), 'troupe-cluster-scripts-'));
    writeScripts(scripts, sessions + 2);
    deployment = await startTestDeployment({ natsUrl: cluster.servers, namespace, domains: { ledger: [ledgerRecord] }, scripts: [scripts] });
  });
  afterAll(async () => {
    gate.open();
    await deployment?.stop();
    await cluster?.stop();
    if (scripts) rmSync(scripts, { recursive: true, force: true });
  });

  /** Every JetStream asset the deployment uses; the orchestrator and the pool create them all at start. */
  const troupeAssets = () => [
    `KV_${names.buckets.checkpoints}`,
    `KV_${names.buckets.leases}`,
    `KV_${names.buckets.toolOutcomes}`,
    names.streams.sessionEvents,
    names.streams.queuedStarts,
    `OBJ_${names.objectStores.results}`,
    `OBJ_${names.objectStores.undo('ledger')}`,
  ];

  it('creates every bucket, stream and object store it uses with three replicas, one on each server', async () => {
    expect(jetStreamReplicas(deployment.nats)).toBe(3);
    const jsm = await jetstreamManager(deployment.nats);
    for (const asset of troupeAssets()) {
      const info = await jsm.streams.info(asset);
      expect(info.config.num_replicas, asset).toBe(3);
      const holders = [info.cluster?.leader, ...(info.cluster?.replicas ?? []).map((r) => r.name)];
      expect(new Set(holders), asset).toEqual(new Set(cluster.nodes.map((n) => n.name)));
    }
  });

  it('completes every session, each side effect once, with the server leading the checkpoints killed mid-run; the server rejoins', async () => {
    const jsm = await jetstreamManager(deployment.nats);
    const runs = await Promise.all(Array.from({ length: sessions }, (_, i) => startSession(deployment.nats, { namespace, task: taskOf(i) })));
    // Every session is inside its side-effecting call: the kill lands mid-run, not between sessions.
    await arrivals.atLeast(sessions);
    const leader = (await jsm.streams.info(`KV_${names.buckets.checkpoints}`)).cluster?.leader;
    const victim = cluster.nodes.find((n) => n.name === leader);
    if (!victim) throw new Error(`no server leads the checkpoints (leader: ${leader})`);
    await victim.kill();
    // The survivors elect new leaders for what the victim led; the sessions then carry on.
    await leadersElected(jsm, troupeAssets(), victim.name);
    gate.open();

    const finished = await Promise.all(runs.map((run) => run.finished));
    expect(finished.map((f) => [f.status, f.output])).toEqual(Array.from({ length: sessions }, (_, i) => ['completed', `recorded entry-${i}`]));
    for (let i = 0; i < sessions; i++) expect(effects.get(`entry-${i}`), `entry-${i}`).toBe(1);
    // Nothing lost in JetStream either: every session's last checkpoint is the ended one.
    const checkpoints = await CheckpointStore.open(deployment.nats, names);
    for (const run of runs) expect((await checkpoints.read(run.sessionId))?.checkpoint.status, run.sessionId).toBe('ended');

    // Two of three servers still make a quorum: a session started now runs like any other.
    gate = new Gate();
    gate.open();
    const whileDown = await deployment.run(taskOf(sessions), { namespace });
    expect(whileDown).toMatchObject({ status: 'completed', output: `recorded entry-${sessions}` });

    await victim.restart();
    for (const asset of [`KV_${names.buckets.checkpoints}`, `KV_${names.buckets.leases}`, names.streams.sessionEvents]) {
      const info = await jsm.streams.info(asset);
      const holders = [info.cluster?.leader, ...(info.cluster?.replicas ?? []).map((r) => r.name)];
      expect(holders, asset).toContain(victim.name);
      expect(info.cluster?.replicas?.every((r) => r.current), asset).toBe(true);
    }
    const afterRestart = await deployment.run(taskOf(sessions + 1), { namespace });
    expect(afterRestart).toMatchObject({ status: 'completed', output: `recorded entry-${sessions + 1}` });
    expect([...effects.values()]).toEqual(Array.from({ length: sessions + 2 }, () => 1));
  }, 120_000);
});
