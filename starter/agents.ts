import { defineAgent } from 'troupe';

/** Served by `troupe orchestrator --agents ./agents.ts`; the first agent here is the default. */
export const cashier = defineAgent({
  name: 'cashier',
  description: 'Converts amounts between currencies.',
  instructions: [
    'You convert amounts of money between currencies for the user.',
    'Always use fx_convert for the figure; never compute a rate yourself.',
    'Answer in one sentence with the converted amount and the rate used.',
  ].join('\n'),
  tools: ['fx_*'],
  budgets: { maxSteps: 6, maxCostUsd: 0.05, maxWallClockMs: 60_000 },
});
