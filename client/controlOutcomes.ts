import type { NatsConnection } from '@nats-io/transport-node';
import type { Checkpoint, CheckpointStore } from '../actors/durability/checkpointStore.ts';
import { lastStoredSessionEvent } from '../transport/streams.ts';
import type { WireNames } from '../transport/subjects.ts';
import type { RollbackReport } from '../machines/rollback.ts';
import type { SessionContext } from '../machines/sessionContext.ts';

/**
 * What some commands produce arrives after they are applied, in the session's checkpoint: a manual
 * call's answer once its worker answers, a rollback's report once the undo requests are answered.
 * Both the CLI and the console wait for them here.
 */

// Manual calls and rollbacks are in the snapshot itself: polled without reading the journal each time.
const contextOf = async (store: CheckpointStore, sessionId: string): Promise<SessionContext | undefined> =>
  (await store.read(sessionId, { journal: false }))?.checkpoint.snapshot.context as SessionContext | undefined;

async function pollFor<T>(read: () => Promise<T | undefined>, withinMs: number): Promise<T | undefined> {
  for (const deadline = Date.now() + withinMs; ;) {
    const found = await read();
    if (found !== undefined || Date.now() >= deadline) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** How many manual calls and rollbacks the session has recorded so far: the next one's index. */
export async function controlOutcomeMarks(store: CheckpointStore, sessionId: string): Promise<{ manualCalls: number; rollbacks: number }> {
  const context = await contextOf(store, sessionId);
  return { manualCalls: context?.manualCalls.length ?? 0, rollbacks: context?.rollbacks.length ?? 0 };
}

/** The answer (the JSON the model will read) of the manual call made after `mark` calls; undefined if none within `withinMs`. */
export async function manualCallAnswer(store: CheckpointStore, sessionId: string, mark: number, withinMs = 60_000): Promise<string | undefined> {
  return await pollFor(async () => (await contextOf(store, sessionId))?.manualCalls[mark]?.answer, withinMs);
}

/** The report of the rollback made after `mark` rollbacks; undefined if none within `withinMs`. */
export async function rollbackReportAfter(store: CheckpointStore, sessionId: string, mark: number, withinMs = 30_000): Promise<RollbackReport | undefined> {
  return await pollFor(async () => (await contextOf(store, sessionId))?.rollbacks[mark], withinMs);
}

/**
 * The session's checkpoint once it shows the session paused, for a rollback's plan. A rollback needs
 * the session paused with a person, and checkpoints are written just after each step, so a session
 * just paused may not be in one yet: the plan must list every call the session made, never those of
 * an older checkpoint. One whose events say it paused is waited for as long as its checkpoint takes
 * (a loaded machine took over 5 s); any other for 5 s, then its host says whether it can be rolled
 * back. Undefined when there is no such session.
 */
export async function checkpointOncePaused(nc: NatsConnection, names: WireNames, store: CheckpointStore, sessionId: string): Promise<{ checkpoint: Checkpoint; revision: number } | undefined> {
  let stored = await store.read(sessionId, { journal: false });
  if (!stored) return undefined;
  const paused = await pausedByItsEvents(nc, names, sessionId);
  for (let i = 0; i < (paused ? 600 : 50) && stored.checkpoint.status === 'running'; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    stored = (await store.read(sessionId, { journal: false })) ?? stored;
  }
  // The plan needs the ledger, which is in the journal: read whole once, at the end.
  return (await store.read(sessionId)) ?? stored;
}

/** Whether the session's last stored event says it is paused with a person (interrupted, rolled back, or escalated). */
async function pausedByItsEvents(nc: NatsConnection, names: WireNames, sessionId: string): Promise<boolean> {
  const last = await lastStoredSessionEvent(nc, names, sessionId);
  if (typeof last !== 'object') return false;
  return last.type === 'session.interrupted' || last.type === 'session.rolled_back' || (last.type === 'session.finished' && last.status === 'escalated');
}
