import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { startWorker, type ToolWorker } from '../../actors/worker/toolWorker.ts';
import { defineTool } from '../../tools/defineTool.ts';
import { InfoResponse, PingResponse, StatsResponse, type EndpointInfo } from '../../transport/serviceProtocol.ts';
import { startServiceResponder, type ServiceResponder } from '../../transport/serviceResponder.ts';
import { serviceDiscoverySubject } from '../../transport/subjects.ts';
import { startNatsServer, type NatsServerProcess } from '../../testing/natsServer.ts';
import { testWireNames } from '../fixtures/testNamespace.ts';

const names = testWireNames();

async function ask<T>(nc: NatsConnection, subject: string, schema: z.ZodType<T>): Promise<T> {
  const msg = await nc.request(subject, undefined, { timeout: 2_000 });
  return schema.parse(msg.json());
}

const endpoints: EndpointInfo[] = [
  { name: 'alpha', subject: 'svc.alpha', queue_group: 'svc', metadata: { note: 'first' } },
  { name: 'beta', subject: 'svc.beta', queue_group: 'svc', metadata: null },
];

describe('startServiceResponder', () => {
  let server: NatsServerProcess;
  let serviceNc: NatsConnection;
  let clientNc: NatsConnection;
  let responder: ServiceResponder;

  beforeAll(async () => {
    // Its own server: `$SRV.*` on the shared one would also reach other suites' pools.
    server = await startNatsServer();
    serviceNc = await connect({ servers: server.url, name: 'service' });
    clientNc = await connect({ servers: server.url, name: 'client' });
    responder = startServiceResponder(serviceNc, {
      name: 'svc-test',
      version: '1.2.3',
      description: 'A service under test.',
      metadata: { owner: 'tests' },
      endpoints,
    });
    await serviceNc.flush();
  });

  afterAll(async () => {
    responder?.stop();
    await serviceNc?.close();
    await clientNc?.close();
    await server?.stop();
  });

  const forms = () => [
    ['all services', undefined, undefined],
    ['by name', 'svc-test', undefined],
    ['by name and id', 'svc-test', responder.id],
  ] as const;

  it('has a 22-character upper-case hex id', () => {
    expect(responder.id).toMatch(/^[0-9A-F]{22}$/);
  });

  it('answers PING in each subject form', async () => {
    for (const [, name, id] of forms()) {
      const ping = await ask(clientNc, serviceDiscoverySubject('PING', name, id), PingResponse);
      expect(ping).toEqual({ type: 'io.nats.micro.v1.ping_response', name: 'svc-test', id: responder.id, version: '1.2.3', metadata: { owner: 'tests' } });
    }
  });

  it('answers INFO in each subject form with the description and endpoints', async () => {
    for (const [, name, id] of forms()) {
      const info = await ask(clientNc, serviceDiscoverySubject('INFO', name, id), InfoResponse);
      expect(info).toEqual({
        type: 'io.nats.micro.v1.info_response',
        name: 'svc-test',
        id: responder.id,
        version: '1.2.3',
        metadata: { owner: 'tests' },
        description: 'A service under test.',
        endpoints,
      });
    }
  });

  it('answers STATS in each subject form with zeroed counters and the start time', async () => {
    for (const [, name, id] of forms()) {
      const stats = await ask(clientNc, serviceDiscoverySubject('STATS', name, id), StatsResponse);
      expect(stats).toMatchObject({ type: 'io.nats.micro.v1.stats_response', name: 'svc-test', id: responder.id, version: '1.2.3' });
      expect(Number.isNaN(Date.parse(stats.started))).toBe(false);
      expect(stats.endpoints.map((e) => [e.name, e.subject, e.queue_group, e.num_requests, e.num_errors, e.last_error])).toEqual([
        ['alpha', 'svc.alpha', 'svc', 0, 0, ''],
        ['beta', 'svc.beta', 'svc', 0, 0, ''],
      ]);
    }
  });

  it('does not answer another service name or another instance id', async () => {
    await expect(clientNc.request(serviceDiscoverySubject('PING', 'other-svc'), undefined, { timeout: 2_000 })).rejects.toThrow(/no responders/i);
    await expect(clientNc.request(serviceDiscoverySubject('INFO', 'svc-test', 'NOT-THIS-ONE'), undefined, { timeout: 2_000 })).rejects.toThrow(
      /no responders/i,
    );
  });

  it('counts requests, errors, the last error and processing time after record()', async () => {
    responder.record('alpha', 1_000);
    responder.record('alpha', 3_000, 'the first failure');
    responder.record('alpha', 2_000, 'the latest failure');
    responder.record('beta', 500);
    responder.record('gamma', 9_999, 'an endpoint the service does not have');
    const stats = await ask(clientNc, serviceDiscoverySubject('STATS', 'svc-test'), StatsResponse);
    expect(stats.endpoints).toEqual([
      {
        name: 'alpha', subject: 'svc.alpha', queue_group: 'svc',
        num_requests: 3, num_errors: 2, last_error: 'the latest failure', processing_time: 6_000, average_processing_time: 2_000,
      },
      {
        name: 'beta', subject: 'svc.beta', queue_group: 'svc',
        num_requests: 1, num_errors: 0, last_error: '', processing_time: 500, average_processing_time: 500,
      },
    ]);
  });

  it('answers nothing after stop()', async () => {
    const nc = await connect({ servers: server.url, name: 'short-lived-service' });
    try {
      const shortLived = startServiceResponder(nc, { name: 'svc-gone', version: '0.0.1', description: '', metadata: {}, endpoints: [] });
      await nc.flush();
      await expect(ask(clientNc, serviceDiscoverySubject('PING', 'svc-gone'), PingResponse)).resolves.toMatchObject({ id: shortLived.id });
      shortLived.stop();
      await nc.flush();
      for (const verb of ['PING', 'INFO', 'STATS'] as const) {
        for (const [name, id] of [['svc-gone', undefined], ['svc-gone', shortLived.id]] as const) {
          await expect(clientNc.request(serviceDiscoverySubject(verb, name, id), undefined, { timeout: 2_000 })).rejects.toThrow(/no responders/i);
        }
      }
    } finally {
      await nc.close();
    }
  });
});

describe('the service protocol of a tool worker', () => {
  let server: NatsServerProcess;
  let workerNc: NatsConnection;
  let clientNc: NatsConnection;
  let worker: ToolWorker;

  const lookup = defineTool({
    name: 'meta_lookup',
    description: 'Looks a key up.',
    input: z.object({ key: z.string().min(1), limit: z.number().int().positive().optional() }),
    output: z.object({ value: z.string() }),
    timeoutMs: 4_321,
    sideEffects: true,
    handler: ({ key }) => ({ value: `value of ${key}` }),
  });
  const noop = defineTool({
    name: 'meta_noop',
    description: 'Does nothing.',
    input: z.object({}),
    output: z.object({}),
    handler: () => ({}),
  });

  const callLookup = async (args: Record<string, unknown>) => {
    const body = { type: 'tool.request', sessionId: 's-1', callId: `c-${Math.random()}`, tool: 'meta_lookup', arguments: args, deadline: Date.now() + 5_000 };
    return (await clientNc.request(names.subjects.tool('meta', 'meta_lookup'), JSON.stringify(body), { timeout: 2_000 })).json<{ status: string }>();
  };

  beforeAll(async () => {
    server = await startNatsServer();
    workerNc = await connect({ servers: server.url, name: 'worker-meta' });
    clientNc = await connect({ servers: server.url, name: 'client' });
    worker = await startWorker({ domain: 'meta', tools: [lookup, noop], nats: workerNc, namespace: names.namespace, version: '2.0.0' });
  });

  afterAll(async () => {
    await worker?.stop();
    await workerNc?.close();
    await clientNc?.close();
    await server?.stop();
  });

  it('advertises the pool, its namespace and each tool in INFO metadata', async () => {
    const info = await ask(clientNc, serviceDiscoverySubject('INFO', names.services.pool('meta')), InfoResponse);
    expect(info).toMatchObject({
      name: `${names.namespace}-meta`, id: worker.instanceId, version: '2.0.0',
      metadata: { 'troupe.kind': 'tool-pool', 'troupe.namespace': names.namespace, 'troupe.domain': 'meta' },
    });
    expect(info.description).toContain('meta_lookup');
    expect(info.endpoints.map((e) => [e.name, e.subject, e.queue_group])).toEqual([
      ['meta_lookup', `${names.namespace}.tools.meta.meta_lookup`, `${names.namespace}-meta`],
      ['meta_noop', `${names.namespace}.tools.meta.meta_noop`, `${names.namespace}-meta`],
    ]);
    const metadata = info.endpoints[0]?.metadata ?? {};
    expect(metadata).toMatchObject({
      'troupe.tool.description': 'Looks a key up.',
      'troupe.tool.timeout_ms': '4321',
      'troupe.tool.side_effects': 'true',
    });
    expect(info.endpoints[1]?.metadata?.['troupe.tool.side_effects']).toBe('false');
    const schema = z
      .object({ type: z.literal('object'), properties: z.record(z.string(), z.object({ type: z.string() })), required: z.array(z.string()) })
      .parse(JSON.parse(metadata['troupe.tool.input_schema'] ?? 'null'));
    expect(Object.keys(schema.properties).sort()).toEqual(['key', 'limit']);
    expect(schema.properties.key?.type).toBe('string');
    expect(schema.required).toEqual(['key']);
  });

  it('reports handled calls and failed calls in STATS', async () => {
    expect(await callLookup({ key: 'a' })).toMatchObject({ status: 'ok' });
    expect(await callLookup({ key: 'b', limit: 3 })).toMatchObject({ status: 'ok' });
    expect(await callLookup({ key: '' })).toMatchObject({ status: 'error' });
    const stats = await ask(clientNc, serviceDiscoverySubject('STATS', names.services.pool('meta'), worker.instanceId), StatsResponse);
    const lookupStats = stats.endpoints.find((e) => e.name === 'meta_lookup');
    expect(lookupStats).toMatchObject({ num_requests: 3, num_errors: 1 });
    expect(lookupStats?.last_error).toContain('Invalid arguments for tool "meta_lookup"');
    expect(lookupStats?.processing_time).toBeGreaterThan(0);
    expect(stats.endpoints.find((e) => e.name === 'meta_noop')).toMatchObject({ num_requests: 0, num_errors: 0 });
  });
});
