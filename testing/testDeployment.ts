import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import OpenAI from 'openai';
import type { Logger } from 'pino';
import type { AgentDefinition } from '../agents/defineAgent.ts';
import { startOrchestrator, type Orchestrator } from '../actors/orchestrator/orchestrator.ts';
import { startWorker, type ToolWorker } from '../actors/worker/toolWorker.ts';
import { startSession, type StartSessionOptions } from '../client/sessionClient.ts';
import { defaultPriceTable } from '../models/priceTable.ts';
import { silentLogger } from '../observability/logger.ts';
import { bundledScriptsDir, loadScripts } from '../scriptedModel/scriptLibrary.ts';
import { startScriptedModelServer, type ScriptedModelServer } from '../scriptedModel/server.ts';
import type { SessionFinished } from '../transport/messages.ts';
import type { ToolDefinition } from '../tools/defineTool.ts';
import { startNatsServer, type NatsServerProcess } from './natsServer.ts';


/** What {@link startTestDeployment} runs. */
export interface TestDeploymentOptions {
  /** Tool pools to serve, by domain: one worker per domain, e.g. `{ fx: [convert, rates] }`. */
  readonly domains?: Readonly<Record<string, readonly ToolDefinition[]>>;
  /** The agents sessions may run; the first is the default. Troupe's `assistant` when absent. */
  readonly agents?: readonly AgentDefinition[];
  /** Folders of scripted-model trajectories (`*.json`), played by a scripted OpenAI-compatible server. */
  readonly scripts?: readonly string[];
  /**
   * A running NATS to use instead of starting a `nats-server` of its own: one server's URL, or
   * several comma-separated (a cluster's, e.g. `startNatsCluster().servers`).
   */
  readonly natsUrl?: string;
  /**
   * The deployment's namespace on NATS (`troupe` by default): give each test its own when several
   * share one `natsUrl`, so their pools and sessions never meet.
   */
  readonly namespace?: string;
  /** Logs of the deployment's parts; silent by default. */
  readonly logger?: Logger;
}

/** A whole deployment in one process: NATS, the scripted model, your pools and an orchestrator. */
export interface TestDeployment {
  readonly natsUrl: string;
  /** The scripted model's base URL (`…/v1`), for an `openai` client of your own. */
  readonly modelUrl: string;
  /** A folder the deployment's tools may use as scratch space; removed by {@link stop}. */
  readonly workspace: string;
  /** A client connection to the deployment's NATS (closed by {@link stop}). */
  readonly nats: NatsConnection;
  readonly orchestrator: Orchestrator;
  readonly workers: readonly ToolWorker[];
  /** Starts a session and resolves with how it finished: `status`, `output`, steps, tool calls, usage and cost. */
  run(task: string, options?: Omit<StartSessionOptions, 'task'>): Promise<SessionFinished>;
  /** Stops everything it started, in order; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts a deployment for end-to-end tests of your own tools and agents, offline: a real
 * `nats-server` (unless `natsUrl` is given; it must be on `PATH` or in `NATS_SERVER_BIN`), the
 * scripted model over HTTP, one worker per tool domain, and an orchestrator whose model is
 * `scripted`. Everything crosses NATS as in production. The caller must {@link TestDeployment.stop}
 * it (in `afterAll`).
 *
 * @example
 * const deployment = await startTestDeployment({ domains: { fx: fxTools }, agents: [fxAgent], scripts: ['./scripts'] });
 * const finished = await deployment.run('Convert 100 EUR to USD');
 * expect(finished.status).toBe('completed');
 * await deployment.stop();
 */
export async function startTestDeployment(options: TestDeploymentOptions = {}): Promise<TestDeployment> {
  const logger = options.logger ?? silentLogger();
  const namespace = options.namespace ? { namespace: options.namespace } : {};
  const cleanups: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch((error: unknown) => logger.warn({ err: error }, 'could not stop a part of the test deployment'));
  };
  try {
    let natsServer: NatsServerProcess | undefined;
    if (!options.natsUrl) {
      natsServer = await startNatsServer();
      const server = natsServer;
      cleanups.push(() => server.stop());
    }
    const natsUrl = options.natsUrl ?? (natsServer as NatsServerProcess).url;
    const model: ScriptedModelServer = await startScriptedModelServer({ scripts: await loadScripts([bundledScriptsDir, ...(options.scripts ?? [])]), port: 0 });
    cleanups.push(() => model.close());
    const workspace = mkdtempSync(join(tmpdir(), 'troupe-test-workspace-'));
    cleanups.push(async () => rmSync(workspace, { recursive: true, force: true }));
    const connection = async (name: string) => {
      // Reconnects forever, to whichever server of the list is up, as a Troupe process does.
      const nc = await connect({ servers: natsUrl.split(','), name, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
      cleanups.push(() => nc.close());
      return nc;
    };
    const workers: ToolWorker[] = [];
    for (const [domain, tools] of Object.entries(options.domains ?? {})) {
      const worker = await startWorker({ domain, tools: [...tools], nats: await connection(`test-worker-${domain}`), logger, ...namespace });
      cleanups.push(() => worker.stop());
      workers.push(worker);
    }
    const orchestrator = await startOrchestrator({
      nats: await connection('test-orchestrator'),
      model: { client: new OpenAI({ baseURL: model.url, apiKey: 'scripted', maxRetries: 0 }), providerName: 'openai', prices: defaultPriceTable },
      defaultModel: 'scripted',
      logger,
      ...namespace,
      ...(options.agents ? { agents: [...options.agents] } : {}),
    });
    cleanups.push(() => orchestrator.stop({ graceMs: 0 }));
    // Pools started just before the orchestrator are in its catalog before the first session asks.
    await orchestrator.catalog.refresh();
    const nats = await connection('test-client');
    return {
      natsUrl,
      modelUrl: model.url,
      workspace,
      nats,
      orchestrator,
      workers,
      async run(task, runOptions = {}) {
        const run = await startSession(nats, { ...namespace, ...runOptions, task });
        return await run.finished;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
