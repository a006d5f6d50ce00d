import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { checkpointSchemaVersion, type Checkpoint } from '../../../actors/durability/checkpointStore.ts';
import { startSessionResumer } from '../../../actors/durability/sessionResumer.ts';
import type { Lease } from '../../../actors/durability/sessionLeases.ts';
import type { Durability } from '../../../actors/session/hostedSession.ts';
import { sessionMachine } from '../../../machines/session.ts';
import { sessionInput } from '../../fixtures/sessionFakes.ts';

/** A checkpoint of a session that has not started its first turn, as the host writes one. */
function checkpointOf(sessionId: string, edit: (snapshot: Record<string, unknown>) => void = () => {}): Checkpoint {
  const snapshot = structuredClone(createActor(sessionMachine, { input: sessionInput({}, { sessionId }) }).getPersistedSnapshot()) as Record<string, unknown>;
  edit(snapshot);
  return {
    schemaVersion: checkpointSchemaVersion, sessionId, agent: 'assistant', task: 'Add two numbers.', status: 'running', snapshot,
    nextEventSeq: 1, traceContext: {}, wallClockDeadline: Date.now() + 60_000, inFlightToolCalls: [], owner: 'gone', updatedAt: new Date().toISOString(),
  };
}

/** Durability over fixed checkpoints; every orphan's lease is there for the taking. */
function durabilityOf(checkpoints: Checkpoint[]) {
  const ended: string[] = [];
  const lease = (sessionId: string): Lease => ({ sessionId, renew: async () => true, release: async () => {} });
  const durability = {
    owner: 'me',
    leases: { orphans: async () => checkpoints.map((c) => c.sessionId), acquire: async (sessionId: string) => lease(sessionId), end: async (sessionId: string) => void ended.push(sessionId) },
    checkpoints: {
      read: async (sessionId: string) => {
        const checkpoint = checkpoints.find((c) => c.sessionId === sessionId && c.snapshot !== null);
        return checkpoint ? { checkpoint, revision: 1 } : undefined;
      },
    },
  } as unknown as Durability;
  return { durability, ended };
}

describe('startSessionResumer', () => {
  // Regression (wire fuzzing): a checkpoint whose session state had the right envelope but a broken
  // context (here `accepted` not a list) was resumed, and the host's observer threw on it outside any
  // handler: an uncaught exception that would take the orchestrator and all its sessions down.
  it('refuses to resume a checkpoint whose session state is malformed, naming the field, and resumes a sound one', async () => {
    const sound = checkpointOf('s-sound');
    const broken = checkpointOf('s-broken', (snapshot) => ((snapshot.context as Record<string, unknown>).accepted = 'x'));
    const { durability, ended } = durabilityOf([sound, broken]);
    const resumed: string[] = [];
    const refused: Array<[string, string]> = [];
    const resumer = startSessionResumer({
      durability, logger: pino({ level: 'silent' }), intervalMs: 60_000, isHosted: () => false,
      resume: (checkpoint) => void resumed.push(checkpoint.sessionId),
      refuse: (sessionId, reason) => void refused.push([sessionId, reason]),
    });
    await resumer.scanNow();
    resumer.stop();
    expect(resumed).toEqual(['s-sound']);
    expect(refused).toEqual([['s-broken', expect.stringContaining('its session state is malformed: snapshot.context.accepted')]]);
    expect(ended).toEqual(['s-broken']);
  });

  // Regression (chaos run): a session whose host died before its first checkpoint landed was dropped
  // without a word, and its client waited for its end forever.
  it('tells the watchers of a session whose host died before its first checkpoint that it cannot be resumed', async () => {
    const never = { ...checkpointOf('s-never'), snapshot: null as unknown as Record<string, unknown> };
    const { durability, ended } = durabilityOf([never]);
    const refused: Array<[string, string]> = [];
    const resumer = startSessionResumer({
      durability, logger: pino({ level: 'silent' }), intervalMs: 60_000, isHosted: () => false,
      resume: () => { throw new Error('nothing to resume'); },
      refuse: (sessionId, reason) => void refused.push([sessionId, reason]),
    });
    await resumer.scanNow();
    resumer.stop();
    expect(refused).toEqual([['s-never', expect.stringContaining('before the session\'s first checkpoint was stored')]]);
    expect(ended).toEqual(['s-never']);
  });
});
