import { connect, type NatsConnection } from '@nats-io/transport-node';
import OpenAI from 'openai';
import { startOrchestrator, type Orchestrator } from '../actors/orchestrator/orchestrator.ts';
import { startWorker, type ToolWorker } from '../actors/worker/toolWorker.ts';
import { defaultPriceTable } from '../models/priceTable.ts';
import { benchAgent, benchTools } from './benchWorkload.ts';

/** Orchestrators and members of the `bench` pool, each on its own NATS connection, in one namespace. */
export interface BenchDeployment {
  readonly namespace: string;
  /** The client's own connection, for starting sessions. */
  readonly client: NatsConnection;
  readonly orchestrators: readonly Orchestrator[];
  readonly workers: readonly ToolWorker[];
  /** Stops the orchestrators (no grace), then the workers, then closes every connection it opened. */
  stop(): Promise<void>;
}

/**
 * Starts `orchestrators` durable orchestrators and `poolMembers` workers of the `bench` pool in
 * `namespace`, so the deployment shares the bench's nats-server and scripted model with no other
 * case. All run in this process (the bench has no pattern for processes of its own), but each
 * has its own connection, so every session start, tool call and reply crosses nats-server as it
 * would between processes. Resolves once every orchestrator's catalog lists the pool.
 */
export async function startBenchDeployment(options: {
  natsUrl: string;
  modelUrl: string;
  namespace: string;
  orchestrators: number;
  poolMembers: number;
}): Promise<BenchDeployment> {
  const { namespace } = options;
  const connections: NatsConnection[] = [];
  const connection = async (name: string) => {
    const nc = await connect({ servers: options.natsUrl, name: `${namespace}-${name}`, noAsyncTraces: true });
    connections.push(nc);
    return nc;
  };
  const workers: ToolWorker[] = [];
  for (let i = 0; i < options.poolMembers; i++) {
    workers.push(await startWorker({ domain: 'bench', tools: benchTools(), nats: await connection(`worker-${i}`), namespace }));
  }
  const orchestrators: Orchestrator[] = [];
  for (let i = 0; i < options.orchestrators; i++) {
    const orchestrator = await startOrchestrator({
      nats: await connection(`orchestrator-${i}`),
      namespace,
      model: { client: new OpenAI({ baseURL: options.modelUrl, apiKey: 'bench', maxRetries: 0 }), providerName: 'openai', prices: defaultPriceTable },
      defaultModel: 'scripted',
      agents: [benchAgent],
    });
    await orchestrator.catalog.refresh();
    orchestrators.push(orchestrator);
  }
  const client = await connection('client');
  return {
    namespace,
    client,
    orchestrators,
    workers,
    async stop() {
      for (const orchestrator of orchestrators) await orchestrator.stop({ graceMs: 0 });
      for (const worker of workers) await worker.stop();
      for (const nc of connections) await nc.close();
    },
  };
}
