import { defineAgent } from './defineAgent.ts';

/**
 * The example specialist: answers questions about the shop database with SQL and exact arithmetic.
 * Served by `troupe worker --agent analyst`; other agents see it as `delegate_analyst`.
 */
export const analystAgent = defineAgent({
  name: 'analyst',
  description: 'Answers questions about the shop database (orders, products, customers) with SQL queries and exact arithmetic, and reports the figures with how they were obtained.',
  instructions: [
    'You are a data analyst for an online shop. You answer one question about its database.',
    'Look at the schema first (db_schema), then query (db_query, read-only SQL); compute with calc_evaluate, never in your head.',
    'Answer with the figures, a short table when it helps, and the query or formula behind each figure.',
  ].join('\n'),
  tools: ['db_*', 'calc_*', 'results_*'],
  // The analyst does its own work: it may not delegate further.
  maxDelegationDepth: 0,
  budgets: { maxSteps: 10, maxTotalTokens: 100_000, maxCostUsd: 0.5, maxWallClockMs: 120_000 },
});
