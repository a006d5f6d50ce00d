import { describe, expect, it } from 'vitest';
import { describeChaos, runChaos } from '../chaos/chaosRun.ts';

/**
 * Nothing lost, nothing twice, while processes and a NATS server die: the bounded chaos run (the
 * longer one is `npm run chaos`). Seeded: a failure prints the seed that replays its choices.
 */
describe('chaos on a three-node NATS cluster', () => {
  it('loses no session and runs no side effect twice while orchestrators, workers, specialists and a NATS server are killed', async () => {
    const seed = Number(process.env.TROUPE_CHAOS_SEED ?? Date.now() % 1_000_000);
    const report = await runChaos({
      seed, sessions: 200, calmSessions: 10, concurrency: 20, minKills: 40, killEveryMs: [400, 1_200],
      killNatsNode: true, settleWithinMs: 240_000,
    });
    const summary = describeChaos(report);
    console.log(summary);
    expect(report.started, summary).toBe(210);
    expect(report.lost, summary).toBe(0);
    expect(report.duplicated, summary).toEqual([]);
    expect(report.kills.orchestrator + report.kills.ledger + report.kills.auditor + report.kills.fault_crash, summary).toBeGreaterThanOrEqual(40);
    for (const role of ['orchestrator', 'ledger', 'auditor'] as const) expect(report.kills[role], summary).toBeGreaterThan(0);
    expect(report.kills.nats_node, summary).toBe(1);
  }, 900_000);
});
