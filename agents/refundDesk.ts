import { defineAgent } from './defineAgent.ts';

/**
 * The example agent whose work needs phases: a refund is looked into before it is proposed, a
 * person approves the proposal before anything is refunded, and the one side-effecting tool is
 * offered only once they have. Served by the orchestrator as `refund_desk`; its refunds need the
 * `refunds` pool (`troupe up --refund-desk`).
 */
export const refundDeskAgent = defineAgent({
  name: 'refund_desk',
  description: 'Handles a customer\'s refund request for an order of the shop: checks the order, proposes a refund for a person to approve, issues it, and reports.',
  instructions: [
    'You handle refund requests for an online shop, one request per session.',
    'Your work goes through phases, each with its own tools; the current phase and what ends it are at the end of these instructions.',
    'Amounts are in cents. Compute them with calc_evaluate, never in your head. Never refund more than the customer paid for the items they name.',
  ].join('\n'),
  tools: ['db_schema', 'db_query', 'calc_evaluate', 'files_write', 'refunds_issue'],
  workflow: {
    initial: 'triage',
    states: {
      triage: {
        instructions: 'Find the order the customer names and who placed it (db_query: read-only SQL over orders, order_items, products, customers; db_schema shows the tables).',
        tools: ['db_schema', 'db_query'],
        on: {
          next_phase: [
            { target: 'investigate', description: 'the order is found' },
            { target: 'report', description: 'there is no such order: nothing to refund' },
          ],
        },
      },
      investigate: {
        instructions: 'Work out what the customer paid for the items they name, in cents, and whether the order can be refunded: its status must be paid or shipped (a refunded order is never refunded again).',
        tools: ['db_query', 'calc_evaluate'],
        on: {
          next_phase: [
            { target: 'propose', description: 'a refund is due; its amount is known' },
            { target: 'report', description: 'no refund is due' },
          ],
        },
        // Three failed queries: the order was probably misread; start again from finding it.
        always: [{ target: 'triage', guard: { type: 'failedCalls', tool: 'db_query', atLeast: 3 } }],
      },
      propose: {
        instructions: 'Write the proposal to proposals/order-<order id>.md with files_write: the order, the items, the amount in cents and why. Then move on to execute: a person reads the proposal and approves the refund first.',
        tools: ['files_write'],
        on: {
          next_phase: [
            { target: 'execute', requiresApproval: true, description: 'issue the refund as proposed' },
            { target: 'report', description: 'no refund after all (say why in the report)' },
          ],
        },
      },
      execute: {
        instructions: 'Issue exactly the refund of the approved proposal, once, with refunds_issue.',
        tools: ['refunds_issue'],
        on: { 'tool.refunds_issue': 'report' },
        // Refused (say, the order was refunded meanwhile): report what happened instead of trying again.
        always: [{ target: 'report', guard: { type: 'failedCalls', tool: 'refunds_issue', atLeast: 1 } }],
      },
      report: {
        instructions: 'Answer the customer in a few sentences: the refund issued (its id and amount) or why there is none.',
        tools: [],
        answer: true,
        budgets: { maxSteps: 2 },
      },
    },
  },
  maxDelegationDepth: 0,
  budgets: { maxSteps: 20, maxTotalTokens: 200_000, maxCostUsd: 1, maxWallClockMs: 600_000 },
});
