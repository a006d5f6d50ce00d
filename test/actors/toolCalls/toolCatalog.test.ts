import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { ToolCatalog, type CatalogTool } from '../../../actors/toolCalls/toolCatalog.ts';
import { startWorker, type ToolWorker } from '../../../actors/worker/toolWorker.ts';
import { defineTool } from '../../../tools/defineTool.ts';
import type { InfoResponse } from '../../../transport/serviceProtocol.ts';
import { serviceDiscoverySubject } from '../../../transport/subjects.ts';
import { startNatsServer, type NatsServerProcess } from '../../setup/natsServerProcess.ts';
import { testNamespace } from '../../fixtures/testNamespace.ts';

const namespace = testNamespace();

const lookupTool = (domain: string) =>
  defineTool({
    name: `${domain}_lookup`,
    description: `Looks a key up in ${domain}.`,
    input: z.object({ key: z.string().min(1), limit: z.number().int().positive().optional() }),
    output: z.object({ value: z.string() }),
    timeoutMs: 1_234,
    sideEffects: true,
    handler: ({ key }) => ({ value: key }),
  });

/** Bounded polling: real waiting is only for what crosses processes or the network. */
async function eventually<T>(probe: () => T | undefined, timeoutMs = 5_000): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined || Date.now() >= deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('ToolCatalog', () => {
  let server: NatsServerProcess;
  let catalogNc: NatsConnection;
  const connections: NatsConnection[] = [];
  let workers: ToolWorker[] = [];
  let catalogs: ToolCatalog[] = [];
  let subscriptions: Subscription[] = [];

  const startPool = async (domain: string, inNamespace = namespace): Promise<ToolWorker> => {
    const nc = await connect({ servers: server.url, name: `worker-${domain}` });
    connections.push(nc);
    const worker = await startWorker({ domain, tools: [lookupTool(domain)], nats: nc, namespace: inNamespace });
    workers.push(worker);
    return worker;
  };
  const newCatalog = (options: { refreshIntervalMs?: number; quietPeriodMs?: number; namespace?: string } = {}): ToolCatalog => {
    // A long interval: anything that appears sooner came from refresh() or an announcement.
    const catalog = new ToolCatalog({ nats: catalogNc, namespace: options.namespace ?? namespace, refreshIntervalMs: options.refreshIntervalMs ?? 60_000, quietPeriodMs: options.quietPeriodMs ?? 100 });
    catalogs.push(catalog);
    return catalog;
  };

  beforeAll(async () => {
    // Its own server: discovery on the shared one would see other suites' pools.
    server = await startNatsServer();
    catalogNc = await connect({ servers: server.url, name: 'catalog' });
  });

  afterEach(async () => {
    for (const catalog of catalogs) catalog.stop();
    for (const worker of workers) await worker.stop();
    for (const sub of subscriptions) sub.unsubscribe();
    await catalogNc.flush();
    for (const nc of connections) await nc.flush();
    catalogs = [];
    workers = [];
    subscriptions = [];
  });

  afterAll(async () => {
    for (const nc of connections) await nc.close();
    await catalogNc?.close();
    await server?.stop();
  });

  it('is empty, without throwing, when no service runs', async () => {
    const catalog = newCatalog();
    await expect(catalog.start()).resolves.toBeUndefined();
    expect(catalog.list()).toEqual([]);
    await expect(catalog.refresh()).resolves.toBeUndefined();
    expect(catalog.get('any_tool')).toBeUndefined();
  });

  it('lists a running pool after refresh, with what the pool advertised', async () => {
    const catalog = newCatalog();
    const worker = await startPool('alpha');
    expect(catalog.get('alpha_lookup')).toBeUndefined();
    await catalog.refresh();
    const tool = catalog.get('alpha_lookup') as CatalogTool;
    expect(tool).toMatchObject({
      name: 'alpha_lookup',
      domain: 'alpha',
      description: 'Looks a key up in alpha.',
      subject: `${namespace}.tools.alpha.alpha_lookup`,
      timeoutMs: 1_234,
      sideEffects: true,
    });
    expect(tool.inputSchema).toMatchObject({ type: 'object', properties: { key: { type: 'string' } }, required: ['key'] });
    expect([...tool.instances]).toEqual([worker.instanceId]);
    expect(catalog.list().map((t) => t.name)).toEqual(['alpha_lookup']);
  });

  it('builds a validator that accepts valid arguments and rejects invalid ones', async () => {
    const catalog = newCatalog();
    await startPool('beta');
    await catalog.refresh();
    const validator = catalog.get('beta_lookup')?.validator;
    expect(validator?.safeParse({ key: 'k' }).success).toBe(true);
    expect(validator?.safeParse({ key: 'k', limit: 3 }).success).toBe(true);
    expect(validator?.safeParse({}).success).toBe(false);
    expect(validator?.safeParse({ key: 7 }).success).toBe(false);
    expect(validator?.safeParse({ key: 'k', limit: 1.5 }).success).toBe(false);
  });

  it('counts every member of a pool', async () => {
    const catalog = newCatalog();
    const first = await startPool('gamma');
    const second = await startPool('gamma');
    await catalog.refresh();
    const instances = catalog.get('gamma_lookup')?.instances;
    expect(instances?.size).toBe(2);
    expect([...(instances ?? [])].sort()).toEqual([first.instanceId, second.instanceId].sort());
  });

  it('lists a pool started after start() without an explicit refresh', async () => {
    const catalog = newCatalog();
    await catalog.start();
    expect(catalog.get('late_lookup')).toBeUndefined();
    await startPool('late');
    const tool = await eventually(() => catalog.get('late_lookup'));
    expect(tool?.domain).toBe('late');
  });

  // Regression: an announcement during a round joined that round, whose INFO request went out before the pool existed.
  it('lists a pool that announces itself while a discovery round is under way', async () => {
    await startPool('early');
    const catalog = newCatalog({ quietPeriodMs: 500 });
    await catalog.start();
    const round = catalog.refresh();
    await startPool('midround');
    await round;
    const tool = await eventually(() => catalog.get('midround_lookup'), 3_000);
    expect(tool?.domain).toBe('midround');
  });

  it('ignores services whose INFO is malformed or not a tool pool, and still lists valid pools', async () => {
    const rogue = await connect({ servers: server.url, name: 'rogue' });
    connections.push(rogue);
    const notATroupePool: InfoResponse = {
      type: 'io.nats.micro.v1.info_response',
      name: 'billing',
      id: 'BILLING1',
      version: '1.0.0',
      metadata: {},
      description: 'Not a Troupe pool.',
      endpoints: [{ name: 'billing_charge', subject: 'billing.charge', queue_group: 'q', metadata: null }],
    };
    subscriptions = [
      rogue.subscribe(serviceDiscoverySubject('INFO'), { callback: (_e, msg) => void msg.respond('this is not json') }),
      rogue.subscribe(serviceDiscoverySubject('INFO'), { callback: (_e, msg) => void msg.respond(JSON.stringify({ type: 'io.nats.micro.v1.info_response' })) }),
      rogue.subscribe(serviceDiscoverySubject('INFO'), { callback: (_e, msg) => void msg.respond(JSON.stringify(notATroupePool)) }),
    ];
    await rogue.flush();
    await startPool('delta');
    const catalog = newCatalog();
    await expect(catalog.refresh()).resolves.toBeUndefined();
    expect(catalog.list().map((t) => t.name)).toEqual(['delta_lookup']);
  });

  it('lists only the pools of its own namespace, though every deployment answers $SRV discovery', async () => {
    const ours = await startPool('alpha');
    const theirs = await startPool('alpha', `${namespace}-b`);
    const catalog = newCatalog();
    const theirCatalog = newCatalog({ namespace: `${namespace}-b` });
    await Promise.all([catalog.refresh(), theirCatalog.refresh()]);
    expect(catalog.get('alpha_lookup')).toMatchObject({ subject: `${namespace}.tools.alpha.alpha_lookup`, instances: new Set([ours.instanceId]) });
    expect(theirCatalog.get('alpha_lookup')).toMatchObject({ subject: `${namespace}-b.tools.alpha.alpha_lookup`, instances: new Set([theirs.instanceId]) });
  });

  it('takes a pool that advertises no namespace (from before namespaces) as one of the default namespace', async () => {
    const legacy = await connect({ servers: server.url, name: 'legacy-pool' });
    connections.push(legacy);
    const legacyPool: InfoResponse = {
      type: 'io.nats.micro.v1.info_response', name: 'troupe-legacy', id: 'LEGACY1', version: '0.1.0', description: 'A pool from before namespaces.',
      metadata: { 'troupe.kind': 'tool-pool', 'troupe.domain': 'legacy' },
      endpoints: [{ name: 'legacy_lookup', subject: 'troupe.tools.legacy.legacy_lookup', queue_group: 'troupe-legacy', metadata: null }],
    };
    subscriptions = [legacy.subscribe(serviceDiscoverySubject('INFO'), { callback: (_e, msg) => void msg.respond(JSON.stringify(legacyPool)) })];
    await legacy.flush();
    const ours = newCatalog();
    const byDefault = newCatalog({ namespace: 'troupe' });
    await Promise.all([ours.refresh(), byDefault.refresh()]);
    expect(ours.get('legacy_lookup')).toBeUndefined();
    expect(byDefault.get('legacy_lookup')).toMatchObject({ domain: 'legacy', subject: 'troupe.tools.legacy.legacy_lookup' });
  });

  it('drops a pool member, then the pool, once they stop', async () => {
    const catalog = newCatalog();
    const first = await startPool('omega');
    const second = await startPool('omega');
    await catalog.refresh();
    expect(catalog.get('omega_lookup')?.instances.size).toBe(2);

    await first.stop();
    await catalog.refresh();
    expect([...(catalog.get('omega_lookup')?.instances ?? [])]).toEqual([second.instanceId]);

    await second.stop();
    await catalog.refresh();
    // One round without the pool may be a blip: the tool stays until a second round confirms it is gone.
    expect(catalog.get('omega_lookup')).toBeDefined();
    await catalog.refresh();
    expect(catalog.get('omega_lookup')).toBeUndefined();
    expect(catalog.list()).toEqual([]);
  });

  // Regression: one discovery round that got no answers (a NATS blip) emptied the catalog.
  it('keeps its tools through one round that gets no answers', async () => {
    const catalog = newCatalog();
    const pool = await startPool('sigma');
    await catalog.refresh();
    await pool.stop();
    await catalog.refresh();
    expect(catalog.get('sigma_lookup')?.name).toBe('sigma_lookup');
  });
});
