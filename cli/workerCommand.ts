import { resolve } from 'node:path';
import { startWorker } from '../actors/toolWorker.ts';
import { faultSpecificationFromEnv, unknownFaultTools } from '../actors/workerFaults.ts';
import { exampleDomains, type ExampleDomain } from '../domains/exampleDomains.ts';
import { connectToNats } from '../transport/natsConnection.ts';
import { UsageError } from './usageError.ts';
import { readEnvironment } from './environment.ts';
import { startProcessRole } from './processLifecycle.ts';

/** `troupe worker <domain>`: one member of a domain's pool, until SIGTERM drains it. */
export async function workerCommand(args: string[]): Promise<void> {
  const domain = args[0];
  const known = Object.keys(exampleDomains);
  if (!domain || args.length > 1) throw new UsageError(`usage: troupe worker <domain>   (domains: ${known.join(', ')})`);
  if (!known.includes(domain)) throw new UsageError(`There is no domain "${domain}". Domains: ${known.join(', ')}.`);
  const env = readEnvironment();
  const role = startProcessRole(`worker-${domain}`, env.LOG_LEVEL);
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
