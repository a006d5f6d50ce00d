import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { CheckpointStore } from '../../actors/durability/checkpointStore.ts';
import { callIdOfKey } from '../../actors/durability/idempotencyStore.ts';
import type { Orchestrator } from '../../actors/orchestrator/orchestrator.ts';
import { startWorker, type ToolWorker } from '../../actors/worker/toolWorker.ts';
import { NoOrchestratorError, startSession } from '../../client/sessionClient.ts';
import { defineTool } from '../../tools/defineTool.ts';
import type { SessionEvent } from '../../transport/messages.ts';
import { InfoResponse } from '../../transport/serviceProtocol.ts';
import { serviceDiscoverySubject, wireNames, type WireNames } from '../../transport/subjects.ts';
import { decodeWireMessage } from '../../transport/wireMessage.ts';
import { startInProcessStack, type InProcessStack } from '../fixtures/inProcessStack.ts';

/** The same tool in every deployment; each pool member answers with its own label. */
const whoami = (label: string) =>
  defineTool({
    name: 'ledger_whoami',
    description: 'Says which pool member answered.',
    input: z.object({}),
    output: z.object({ servedBy: z.string() }),
    // Side effects, so each deployment also records outcomes in its own bucket.
    sideEffects: true,
    handler: () => ({ servedBy: label }),
  });

interface Deployment {
  readonly label: string;
  readonly names: WireNames;
  readonly workers: ToolWorker[];
  orchestrator: Orchestrator;
  /** Each session's id, output and the ids of its tool calls. */
  readonly sessions: Array<{ sessionId: string; output: string | null; callIds: string[] }>;
}

describe('two deployments with different namespaces on one nats-server', () => {
  let stack: InProcessStack;
  let nc: NatsConnection;
  const deployments: Deployment[] = [];

  beforeAll(async () => {
    stack = await startInProcessStack();
    nc = await stack.connection('client');
    // Same pool (domain and tool), same agent, same scripted model: only the namespace differs.
    for (const label of ['a', 'b']) {
      const names = wireNames(`${stack.namespace}-${label}`);
      const workers: ToolWorker[] = [];
      for (const member of [1, 2]) {
        workers.push(await startWorker({ domain: 'ledger', tools: [whoami(`${label}${member}`)], nats: await stack.connection(`${label}-ledger-${member}`), namespace: names.namespace }));
      }
      deployments.push({ label, names, workers, orchestrator: await stack.startOrchestrator({ namespace: names.namespace }), sessions: [] });
    }
    // Sessions in both deployments at once, so that any crossing would have had the chance to happen.
    await Promise.all(deployments.flatMap((deployment) => Array.from({ length: 4 }, async () => {
      const run = await startSession(nc, { namespace: deployment.names.namespace, task: 'Please tell who serves this deployment.' });
      const callIds: string[] = [];
      for await (const event of run.events as AsyncIterable<SessionEvent>) if (event.type === 'tool.call.started') callIds.push(event.callId);
      deployment.sessions.push({ sessionId: run.sessionId, output: (await run.finished).output, callIds });
    })));
  }, 60_000);

  afterAll(async () => {
    for (const deployment of deployments) for (const worker of deployment.workers) await worker.stop();
    await stack?.stop();
  });

  it('serves each deployment\'s calls only by its own pool members', () => {
    for (const { label, sessions } of deployments) {
      expect(sessions).toHaveLength(4);
      for (const { output } of sessions) expect([`served by ${label}1`, `served by ${label}2`]).toContain(output);
    }
  });

  it('lists in each orchestrator\'s catalog only its own deployment\'s pool members', () => {
    for (const { orchestrator, names, workers } of deployments) {
      expect(orchestrator.catalog.get('ledger_whoami')).toMatchObject({
        subject: names.subjects.tool('ledger', 'ledger_whoami'),
        instances: new Set(workers.map((w) => w.instanceId)),
      });
      // The results pool every orchestrator serves is its own deployment's too.
      expect(orchestrator.catalog.get('results_fetch')?.instances.size).toBe(1);
    }
  });

  it('shows every service\'s namespace in $SRV, under names that start with it', async () => {
    const replies = await nc.requestMany(serviceDiscoverySubject('INFO'), undefined, { strategy: 'stall', stall: 300, maxWait: 3_000 });
    const seen: Array<[string, string | undefined]> = [];
    for await (const msg of replies) {
      const info = decodeWireMessage(InfoResponse, msg.data, 'INFO');
      if (info.ok) seen.push([info.value.name, info.value.metadata['troupe.namespace']]);
    }
    const [a, b] = deployments.map((d) => d.names) as [WireNames, WireNames];
    expect(seen.sort()).toEqual([
      [a.services.pool('ledger'), a.namespace], [a.services.pool('ledger'), a.namespace],
      [a.services.orchestrator, a.namespace], [a.services.pool('results'), a.namespace],
      [b.services.pool('ledger'), b.namespace], [b.services.pool('ledger'), b.namespace],
      [b.services.orchestrator, b.namespace], [b.services.pool('results'), b.namespace],
    ].sort());
  });

  it('keeps each deployment\'s checkpoints, events and recorded outcomes in its own buckets and streams', async () => {
    const jsm = await jetstreamManager(nc);
    for (const { names, sessions } of deployments) {
      const own = sessions.map((s) => s.sessionId).sort();
      expect((await (await CheckpointStore.open(nc, names)).list()).map((s) => s.sessionId).sort()).toEqual(own);
      const events = await jsm.streams.info(names.streams.sessionEvents, { subjects_filter: '>' });
      expect(Object.keys(events.state.subjects ?? {}).sort()).toEqual(own.map((id) => names.subjects.sessionEvents(id)).sort());
      const outcomes = await new Kvm(nc).open(names.buckets.toolOutcomes);
      const recorded: string[] = [];
      for await (const key of await outcomes.keys()) recorded.push(callIdOfKey(key));
      expect(recorded.sort()).toEqual(sessions.flatMap((s) => s.callIds).sort());
    }
  });

  it('starts no session for a namespace whose orchestrators are not running, though others\' are', async () => {
    await expect(startSession(nc, { namespace: `${stack.namespace}-c`, task: 'Please tell who serves this deployment.', whenNoOrchestrator: 'fail' }))
      .rejects.toBeInstanceOf(NoOrchestratorError);
  });
});
