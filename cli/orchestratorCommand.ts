import OpenAI from 'openai';
import { assistantAgent } from '../agents/assistant.ts';
import { startOrchestrator } from '../actors/orchestrator.ts';
import { toolsRequiringApproval } from '../actors/toolCallTriage.ts';
import { defaultPriceTable } from '../models/priceTable.ts';
import { connectToNats } from '../transport/natsConnection.ts';
import { defaultModelOf, readEnvironment } from './environment.ts';
import { startProcessRole } from './processLifecycle.ts';
import { UsageError } from './usageError.ts';

/** `troupe orchestrator`: hosts sessions until SIGTERM, then lets running ones finish. */
export async function orchestratorCommand(args: string[]): Promise<void> {
  if (args.length > 0) throw new UsageError('usage: troupe orchestrator');
  const env = readEnvironment();
  const role = startProcessRole('orchestrator', env.LOG_LEVEL);
  const client = new OpenAI({
    // The scripted model needs no key; a real endpoint without one fails on the first call with the provider's message.
    apiKey: env.OPENAI_API_KEY ?? 'not-set',
    ...(env.OPENAI_BASE_URL ? { baseURL: env.OPENAI_BASE_URL } : {}),
    maxRetries: 2,
  });
  const agent = env.TROUPE_BUDGETS ? { ...assistantAgent, budgets: { ...assistantAgent.budgets, ...env.TROUPE_BUDGETS } } : assistantAgent;
  const nc = await connectToNats({ url: env.NATS_URL, name: 'troupe-orchestrator', logger: role.logger });
  const orchestrator = await startOrchestrator({
    nats: nc,
    model: {
      client,
      providerName: env.TROUPE_MODEL_PROVIDER,
      prices: { ...defaultPriceTable, ...env.TROUPE_PRICES },
    },
    defaultModel: defaultModelOf(env),
    agents: [agent],
    logger: role.logger,
    ...(env.TROUPE_REQUIRE_APPROVAL ? { approvalPolicy: toolsRequiringApproval(env.TROUPE_REQUIRE_APPROVAL.split(',')) } : {}),
    ...(env.TROUPE_APPROVAL_TIMEOUT_MS ? { approvalTimeoutMs: env.TROUPE_APPROVAL_TIMEOUT_MS } : {}),
  });
  role.onShutdown(async () => {
    await orchestrator.stop();
    await nc.drain();
  });
}
