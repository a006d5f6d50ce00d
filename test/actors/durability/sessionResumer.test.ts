import { TimeoutError } from '@nats-io/transport-node';
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
    nextEventSeq: 1, traceContext: {}, wallClockDeadline: Date.now() + 60_000, inFlightToolCalls: [], owner: 'gone', updatedAt: new Date().toISOString(), appliedControls: [],
  };
}

/** Durability over fixed checkpoints; every orphan's lease is there for the taking. */
function durabilityOf(checkpoints: Checkpoint[]) {
  const ended: string[] = [];
  const dropped: string[] = [];
  const lease = (sessionId: string): Lease => ({ sessionId, replaced: true, renew: async () => true, release: async () => {}, drop: async () => void dropped.push(sessionId) });
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
  return { durability, ended, dropped };
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
      refuse: (sessionId, reason) => void refused.push([sessionId, reason]), ended: async () => {}, unstored: 'drop',
    });
    await resumer.scanNow();
    resumer.stop();
    expect(resumed).toEqual(['s-sound']);
    expect(refused).toEqual([['s-broken', expect.stringContaining('its session state is malformed: snapshot.context.accepted')]]);
    expect(ended).toEqual(['s-broken']);
  });

  it('publishes the end of a session whose host died after storing its ended checkpoint, then removes the lease', async () => {
    const ended = { ...checkpointOf('s-ended'), status: 'ended' as const };
    const { durability, ended: leasesEnded } = durabilityOf([ended]);
    const published: string[] = [];
    const resumer = startSessionResumer({
      durability, logger: pino({ level: 'silent' }), intervalMs: 60_000, isHosted: () => false,
      resume: () => { throw new Error('an ended session is not resumed'); },
      refuse: () => { throw new Error('an ended session is not refused'); },
      ended: async (checkpoint) => void published.push(checkpoint.sessionId),
      unstored: 'drop',
    });
    await resumer.scanNow();
    resumer.stop();
    expect(published).toEqual(['s-ended']);
    expect(leasesEnded).toEqual(['s-ended']);
  });

  // Regression (chaos run, seed 12): a resume that timed out while JetStream elected a leader refused
  // the session for good, and its client got a failure for a session that went on to complete.
  it('lets a session go for the next scan when resuming it times out, never refusing it', async () => {
    const { durability, ended } = durabilityOf([checkpointOf('s-slow')]);
    const refused: string[] = [];
    const resumer = startSessionResumer({
      durability, logger: pino({ level: 'silent' }), intervalMs: 60_000, isHosted: () => false,
      resume: () => { throw new TimeoutError(); },
      refuse: (sessionId) => void refused.push(sessionId),
      ended: async () => {},
      unstored: 'drop',
    });
    await resumer.scanNow();
    resumer.stop();
    expect(refused).toEqual([]);
    expect(ended).toEqual([]);
  });

  // Regression: an orchestrator stopping with graceMs 0 handed its session over, and a scan already
  // under way took the freed lease straight back: the stopping host resumed the session it had just
  // let go, beside the orchestrator taking it over.
  it('takes no session after it is stopped, letting go of a lease a scan under way had just taken', async () => {
    const { durability } = durabilityOf([checkpointOf('s-handed-over')]);
    let acquiring!: () => void;
    const acquireStarted = new Promise<void>((resolve) => (acquiring = resolve));
    let leaseTaken!: () => void;
    const taken = new Promise<void>((resolve) => (leaseTaken = resolve));
    const released: string[] = [];
    const { acquire } = durability.leases;
    durability.leases.acquire = async (sessionId, owner) => {
      acquiring();
      await taken;
      const lease = (await acquire(sessionId, owner)) as Lease;
      return { ...lease, release: async () => void released.push(sessionId) };
    };
    const resumed: string[] = [];
    const resumer = startSessionResumer({
      durability, logger: pino({ level: 'silent' }), intervalMs: 60_000, isHosted: () => false,
      resume: (checkpoint) => void resumed.push(checkpoint.sessionId),
      refuse: () => { throw new Error('nothing is refused'); }, ended: async () => {}, unstored: 'drop',
    });
    const scan = resumer.scanNow();
    await acquireStarted;
    resumer.stop();
    leaseTaken();
    await scan;
    expect(resumed).toEqual([]);
    expect(released).toEqual(['s-handed-over']);
  });

  // Regression (chaos run): a delegated session whose member died before its first checkpoint landed
  // was dropped without a word, and the delegating call waited for its end until its timeout.
  it('tells the watchers of a session whose host died before its first checkpoint that it did not start, when they wait on it', async () => {
    const { refused, ended, dropped } = await scanUnstored('refuse');
    expect(refused).toEqual([['s-never', expect.stringContaining('before the session\'s first checkpoint was stored'), 'not_started']]);
    // The delegation sent again starts it, its events numbered past this try's.
    expect(dropped).toEqual(['s-never']);
    expect(ended).toEqual([]);
  });

  // A client's start is accepted only once stored: nobody waits on this one, and the same start sent
  // again must not find an end already published under its id.
  it('drops the lease of a start whose host died before storing it, publishing nothing, when nobody was told it started', async () => {
    const { refused, ended, dropped } = await scanUnstored('drop');
    expect(refused).toEqual([]);
    expect(ended).toEqual([]);
    expect(dropped).toEqual(['s-never']);
  });
});

async function scanUnstored(unstored: 'drop' | 'refuse') {
  const never = { ...checkpointOf('s-never'), snapshot: null as unknown as Record<string, unknown> };
  const { durability, ended, dropped } = durabilityOf([never]);
  const refused: Array<[string, string, string | undefined]> = [];
  const resumer = startSessionResumer({
    durability, logger: pino({ level: 'silent' }), intervalMs: 60_000, isHosted: () => false,
    resume: () => { throw new Error('nothing to resume'); },
    refuse: (sessionId, reason, stopReason) => void refused.push([sessionId, reason, stopReason]),
    ended: async () => {},
    unstored,
  });
  await resumer.scanNow();
  resumer.stop();
  return { refused, ended, dropped };
}
