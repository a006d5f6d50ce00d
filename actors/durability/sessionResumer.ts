import type { Logger } from 'pino';
import { PersistedSessionSnapshot } from '../../machines/persistedSnapshot.ts';
import { formatIssuePath } from '../../tools/validation.ts';
import { CheckpointUnreadableError, type Checkpoint } from './checkpointStore.ts';
import type { Durability } from '../session/hostedSession.ts';
import type { Lease } from './sessionLeases.ts';
import { isRequestTimeout } from '../../transport/natsConnection.ts';
import type { RefusalReason } from '../session/sessionEvents.ts';

export interface SessionResumerOptions {
  durability: Durability;
  logger: Logger;
  /** How often to look for free leases besides a burial: 5 s for a host that keeps a heartbeat, else half a lease (at least 500 ms). */
  intervalMs?: number;
  isHosted: (sessionId: string) => boolean;
  /** Host the session from its checkpoint; the lease is already ours. */
  resume: (checkpoint: Checkpoint, revision: number, lease: Lease) => void | Promise<void>;
  /** The session had ended when its host died: make sure its watchers get its end (see `publishStoredEnd`). */
  ended: (checkpoint: Checkpoint) => Promise<void>;
  /** The session cannot be resumed (unreadable checkpoint, unknown agent): tell its watchers why. */
  refuse: (sessionId: string, reason: string, stopReason?: RefusalReason) => void;
  /**
   * A lease with no checkpoint is a start whose host died before storing it. `drop` removes it without
   * a word: nobody was told the session started (an orchestrator accepts a start only once stored).
   * `refuse` tells its watchers it did not start (`not_started`): a delegation waiting on the session's
   * end, which sends it again.
   */
  unstored: 'drop' | 'refuse';
}

// How many orphaned sessions one scan takes at a time.
const resumesAtOnce = 32;

// How often a host that keeps a heartbeat looks for free leases besides when a host is buried.
const heartbeatHostScanMs = 5_000;

/**
 * Takes over sessions whose host died: on an interval (and at once when started), it lists leases
 * that have expired, takes each with compare-and-set (so exactly one orchestrator wins), reads the
 * checkpoint and resumes the session from it. After `stop` it takes none, whatever scan is under way.
 */
export function startSessionResumer(options: SessionResumerOptions): { scanNow(): Promise<void>; stop(): void } {
  const { durability, logger } = options;
  let listing: Promise<Promise<void>[]> | undefined;
  // Sessions being taken, and those waiting for a free taker: a take that hangs (a store call stuck in a
  // leader election) holds up only itself, never the next scans, which skip what is already under way.
  const underWay = new Map<string, Promise<void>>();
  const queue: Array<{ sessionId: string; done: () => void }> = [];
  let taking = 0;
  // Once stopped, no session is taken, not even by a scan already under way: its host is stopping and
  // has just handed its own sessions over, which such a scan would otherwise take straight back.
  let stopped = false;
  const pump = () => {
    while (taking < resumesAtOnce && queue.length > 0) {
      const { sessionId, done } = queue.shift() as { sessionId: string; done: () => void };
      taking += 1;
      void take(sessionId)
        .catch((error: unknown) => logger.warn({ sessionId, err: error }, 'could not take an orphaned session; the next scan tries again'))
        .finally(() => {
          taking -= 1;
          underWay.delete(sessionId);
          done();
          pump();
        });
    }
  };
  /** Lists the orphans and queues those not under way; resolves with their takes. */
  const scan = async (): Promise<Promise<void>[]> => {
    const takes: Promise<void>[] = [];
    for (const sessionId of await durability.leases.orphans()) {
      const going = underWay.get(sessionId);
      if (going) {
        takes.push(going);
        continue;
      }
      const taken = new Promise<void>((done) => queue.push({ sessionId, done }));
      underWay.set(sessionId, taken);
      takes.push(taken);
    }
    pump();
    return takes;
  };
  const take = async (sessionId: string): Promise<void> => {
    if (stopped || options.isHosted(sessionId)) return;
    const lease = await durability.leases.acquire(sessionId, durability.owner);
    if (!lease) return;
    if (stopped) {
      await lease.release();
      return;
    }
    try {
      const stored = await durability.checkpoints.read(sessionId);
      if (!stored) {
        // Its host died before the first checkpoint landed: nothing of it can be resumed, and (write-ahead)
        // nothing it did had side effects.
        if (options.unstored === 'refuse') {
          logger.warn({ sessionId }, 'a session whose host died before its first checkpoint was stored cannot be resumed');
          options.refuse(sessionId, 'Its host stopped before the session\'s first checkpoint was stored, so it cannot be resumed; it made no side-effecting call. Start it again.', 'not_started');
        } else {
          logger.info({ sessionId }, 'dropped the lease of a start whose host died before accepting it');
        }
        await lease.drop();
        return;
      }
      if (stored.checkpoint.status === 'ended') {
        // Its host died between storing the end and publishing it: the end is published before the lease goes.
        await options.ended(stored.checkpoint);
        await durability.leases.end(sessionId);
        return;
      }
      // The session's state is checked before the statechart and its host run on it: they trust it,
      // and a throw from inside them (an observer, a timer) would take the whole process down.
      const state = PersistedSessionSnapshot.safeParse(stored.checkpoint.snapshot);
      if (!state.success) {
        throw new CheckpointUnreadableError(sessionId, `its session state is malformed: ${state.error.issues.slice(0, 5).map((i) => `${formatIssuePath(['snapshot', ...i.path])}: ${i.message}`).join('; ')}`);
      }
      await options.resume(stored.checkpoint, stored.revision, lease);
    } catch (error) {
      if (isRequestTimeout(error)) {
        // JetStream busy electing a leader: the session is let go for the next scan to take, never refused.
        logger.warn({ sessionId, err: error }, 'could not resume a session for now; letting it go for the next scan');
        await lease.release().catch(() => undefined);
        return;
      }
      const reason = error instanceof CheckpointUnreadableError ? error.message : `resuming failed: ${String(error)}`;
      logger.error({ sessionId, err: error }, 'cannot resume a session');
      options.refuse(sessionId, reason);
      await durability.leases.end(sessionId);
    }
  };
  const list = () => (listing ??= scan().catch((error: unknown) => {
    logger.warn({ err: error }, 'resume scan failed');
    return [];
  }).finally(() => (listing = undefined)));
  /** Scans now, and resolves once the sessions it found are taken (resumed, refused or let go). */
  const scanNow = async () => void (await Promise.all(await list()));
  // With heartbeats, a burial sets off a scan at once: the interval only catches what a scan let go (a
  // take that timed out, a lease released on a graceful stop), so it need not follow the lease's TTL.
  const intervalMs = options.intervalMs ?? (durability.alive ? heartbeatHostScanMs : Math.max(500, Math.floor(durability.leases.ttlMs / 2)));
  const timer = setInterval(() => void list(), intervalMs);
  timer.unref();
  return {
    scanNow,
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
