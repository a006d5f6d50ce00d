import OpenAI from 'openai';
import type { AgentDefinition } from '../agents/defineAgent.ts';
import type { ModelEndpoint } from '../actors/model/modelCall.ts';
import { defaultPriceTable } from '../models/priceTable.ts';
import type { Environment } from './environment.ts';

/** The model endpoint every session of this process calls, from `OPENAI_BASE_URL`, `OPENAI_API_KEY` and `TROUPE_PRICES`. */
export function modelEndpointOf(env: Environment): ModelEndpoint {
  const client = new OpenAI({
    // The scripted model needs no key; a real endpoint without one fails on the first call with the provider's message.
    apiKey: env.OPENAI_API_KEY ?? 'not-set',
    ...(env.OPENAI_BASE_URL ? { baseURL: env.OPENAI_BASE_URL } : {}),
    maxRetries: 2,
  });
  return { client, providerName: env.TROUPE_MODEL_PROVIDER, prices: { ...defaultPriceTable, ...env.TROUPE_PRICES } };
}

/** An agent with the deployment's overrides: `TROUPE_BUDGETS`, `TROUPE_ROUTING`, `TROUPE_FALLBACK_MODELS`, `TROUPE_MAX_DELEGATION_DEPTH`. */
export function withDeploymentSettings(agent: AgentDefinition, env: Environment): AgentDefinition {
  return {
    ...agent,
    ...(env.TROUPE_BUDGETS ? { budgets: { ...agent.budgets, ...env.TROUPE_BUDGETS } } : {}),
    ...(env.TROUPE_ROUTING ? { routing: env.TROUPE_ROUTING } : {}),
    ...(env.TROUPE_FALLBACK_MODELS ? { fallbackModels: env.TROUPE_FALLBACK_MODELS } : {}),
    ...(env.TROUPE_MAX_DELEGATION_DEPTH !== undefined ? { maxDelegationDepth: env.TROUPE_MAX_DELEGATION_DEPTH } : {}),
  };
}
