import { resolve } from 'node:path';
import { startSpecialistPool } from '../actors/worker/specialistPool.ts';
import { startWorker } from '../actors/worker/toolWorker.ts';
import { faultSpecificationFromEnv, unknownFaultTools } from '../actors/worker/workerFaults.ts';
import { exampleAgents } from '../agents/exampleAgents.ts';
import { exampleDomains, type ExampleDomain } from '../domains/exampleDomains.ts';
import { connectToNats } from '../transport/natsConnection.ts';
import { loadAgents } from './agentModules.ts';
import { modelEndpointOf, withDeploymentSettings } from './agentSettings.ts';
import { defaultModelOf, readEnvironment } from './environment.ts';
import { startProcessRole } from './processLifecycle.ts';
import { UsageError } from './usageError.ts';
import { startInspector } from '../observability/inspector.ts';
import { defaultModelTable } from '../models/modelTable.ts';
import { parseInspectArgs } from './inspectArgs.ts';

const workerUsage = `usage: troupe worker <domain>          (domains: ${Object.keys(exampleDomains).join(', ')})
       troupe worker --agent <name> [--inspect [--inspect-port 8080]]   (agents: ${Object.keys(exampleAgents).join(', ')}, or yours with TROUPE_AGENTS)`;

/** `troupe worker <domain>` or `troupe worker --agent <name>`: one member of a pool, until SIGTERM drains it. */
export async function workerCommand(args: string[]): Promise<void> {
  if (args[0] === '--agent') {
    if (args.length < 2 || !args[1] || args[1].startsWith('-')) throw new UsageError(workerUsage);
    await serveSpecialist(args[1], parseInspectArgs(args.slice(2), workerUsage));
    return;
  }
  const domain = args[0];
  const known = Object.keys(exampleDomains);
  if (args.includes('--inspect')) {
    throw new UsageError('A tool pool runs no statecharts (its tools are plain handlers): --inspect applies to `troupe orchestrator` and `troupe worker --agent <name>`.');
  }
  if (!domain || args.length > 1) throw new UsageError(workerUsage);
  if (!known.includes(domain)) throw new UsageError(`There is no domain "${domain}". Domains: ${known.join(', ')}.`);
  const env = readEnvironment();
  const role = startProcessRole(`worker-${domain}`, env.LOG_LEVEL, env.TROUPE_REDACT);
  const defined = exampleDomains[domain as ExampleDomain]({ workspace: resolve(env.TROUPE_WORKSPACE) });
  const tools = env.TROUPE_TOOL_TIMEOUT_MS ? defined.map((t) => ({ ...t, timeoutMs: env.TROUPE_TOOL_TIMEOUT_MS as number })) : defined;
  const faults = faultSpecificationFromEnv();
  if (faults) {
    const unknown = unknownFaultTools(faults, tools.map((t) => t.name));
    role.logger.warn({ faults, ...(unknown.length > 0 ? { unknownTools: unknown } : {}) }, 'fault injection is on (TROUPE_FAULTS)');
  }
  const nc = await connectToNats({ url: env.NATS_URL, name: `troupe-worker-${domain}`, logger: role.logger });
  const worker = await startWorker({ domain, tools, nats: nc, logger: role.logger, ...(faults ? { faults } : {}) });
  role.onShutdown(async () => {
    await worker.stop();
    await nc.drain();
  });
}

/** A member of a specialist's pool: its sessions run here, calling the tool pools over NATS. */
async function serveSpecialist(name: string, inspection: { port: number } | undefined): Promise<void> {
  const env = readEnvironment();
  const known = await loadAgents(env);
  const defined = known[name];
  if (!defined) throw new UsageError(`There is no agent "${name}". Agents: ${Object.keys(known).join(', ')} (add your own with TROUPE_AGENTS).`);
  const role = startProcessRole(`specialist-${name}`, env.LOG_LEVEL, env.TROUPE_REDACT);
  role.logger.info({ config: env }, 'configuration');
  const inspector = inspection ? startInspector({ port: inspection.port, logger: role.logger, captureContent: env.TROUPE_CAPTURE_CONTENT }) : undefined;
  const nc = await connectToNats({ url: env.NATS_URL, name: `troupe-specialist-${name}`, logger: role.logger });
  const pool = await startSpecialistPool({
    agent: withDeploymentSettings(defined, env),
    nats: nc,
    model: modelEndpointOf(env),
    defaultModel: defaultModelOf(env),
    logger: role.logger,
    ...(env.TROUPE_ALERTS ? { alerts: env.TROUPE_ALERTS } : {}),
    source: `troupe-specialist-${name}`,
    ...(env.TROUPE_MODELS ? { models: { ...defaultModelTable, ...env.TROUPE_MODELS } } : {}),
    captureContent: env.TROUPE_CAPTURE_CONTENT,
    ...(inspector ? { inspect: inspector.inspect } : {}),
  });
  role.onShutdown(async () => {
    await pool.stop();
    await nc.drain();
    inspector?.stop();
  });
}
