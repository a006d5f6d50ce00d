import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { CheckpointStore, type StoredCheckpointChange } from '../../actors/durability/checkpointStore.ts';
import type { WireNames } from '../../transport/subjects.ts';
import type { SessionList, SessionSummary } from '../consoleApi.ts';
import { sessionSummaryOf } from './sessionViews.ts';

/** What listeners hear: the rows that changed since the last time (and the unreadable ones, whole). */
export interface SessionsChange {
  upserted: SessionSummary[];
  removed: string[];
  unreadable: SessionList['unreadable'];
}

// A key that expires (the bucket's TTL) sends no delete to a watch: read everything again this often.
const fullReadEveryMs = 10 * 60_000;
const retryAfterMs = 2_000;

/**
 * Every session of the deployment as the console's table shows it, kept current from the checkpoint
 * bucket: read whole, then followed through a KV watch, and read whole again after NATS comes back,
 * when the watch ends, and every ten minutes. Each row keeps the revision it was read at, so a
 * listing slower than the watch never puts an older state back. Listeners hear the rows that
 * changed, at most every `coalesceMs`.
 */
export class SessionsFeed {
  readonly #nc: NatsConnection;
  readonly #names: WireNames;
  readonly #logger: Logger;
  readonly #coalesceMs: number;
  readonly #sessions = new Map<string, { revision: number; summary: SessionSummary }>();
  readonly #unreadable = new Map<string, { revision: number; error: string }>();
  readonly #listeners = new Set<(change: SessionsChange, json: string) => void>();
  readonly #changed = new Set<string>();
  // Sessions the watch reported since the current full read began: a listing taken before they were written does not remove them.
  readonly #watchedSinceRead = new Set<string>();
  #store: CheckpointStore | undefined;
  #watch: { stop(): void } | undefined;
  #pending: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #reloading: Promise<void> | undefined;
  #reloadAgain = false;
  #stopped = false;

  constructor(nc: NatsConnection, names: WireNames, logger: Logger, coalesceMs = 200) {
    this.#nc = nc;
    this.#names = names;
    this.#logger = logger;
    this.#coalesceMs = coalesceMs;
  }

  /** Reads the bucket (or finds there is none yet) and starts following it. */
  async start(): Promise<void> {
    await this.reload();
  }

  /**
   * Reads every checkpoint again and follows the bucket from now. One at a time: a reload asked for
   * while one runs runs once more after it. A failure is retried, never left to freeze the table.
   */
  reload(): Promise<void> {
    if (this.#reloading) {
      this.#reloadAgain = true;
      return this.#reloading;
    }
    this.#reloading = (async () => {
      do {
        this.#reloadAgain = false;
        clearTimeout(this.#retry);
        try {
          await this.#readAll();
        } catch (error) {
          this.#logger.warn({ err: error }, 'reading the sessions failed; trying again');
          this.#scheduleReload(retryAfterMs);
        }
      } while (this.#reloadAgain && !this.#stopped);
      this.#reloading = undefined;
    })();
    return this.#reloading;
  }

  /** The table now: newest first. */
  list(): SessionList {
    return {
      sessions: [...this.#sessions.values()].map((row) => row.summary).sort((a, b) => b.updatedAt.localeCompare(a.updatedAt)),
      unreadable: [...this.#unreadable].map(([sessionId, { error }]) => ({ sessionId, error })),
    };
  }

  /**
   * Calls `listener` with the rows that changed after each change, and the change as the stream's
   * `changes` message in JSON, made once for every page; returns how to stop.
   */
  subscribe(listener: (change: SessionsChange, json: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  stop(): void {
    this.#stopped = true;
    this.#watch?.stop();
    clearTimeout(this.#pending);
    clearTimeout(this.#retry);
    this.#listeners.clear();
  }

  async #readAll(): Promise<void> {
    if (this.#stopped) return;
    // Opened for reading: an observer may not create the bucket, and none exists before the first session.
    this.#store ??= await CheckpointStore.openForReading(this.#nc, this.#names);
    if (this.#stopped) return;
    if (!this.#store) {
      // No session has been stored yet: look again soon, so the first one appears without a reload.
      this.#scheduleReload(retryAfterMs);
      return;
    }
    this.#watch?.stop();
    this.#watchedSinceRead.clear();
    // The watch first, then the listing: nothing written in between is missed, and revisions keep the newer of the two.
    const watch = await this.#store.watch((change) => {
      this.#watchedSinceRead.add(change.sessionId);
      this.#apply(change);
    }, { onEnd: (error) => this.#watchEnded(watch, error) });
    if (this.#stopped) {
      watch.stop();
      return;
    }
    this.#watch = watch;
    const listed = await this.#store.list();
    const present = new Set(listed.map((entry) => entry.sessionId));
    for (const entry of listed) this.#apply(entry);
    // Gone since the last read (deleted or expired), unless the watch has just seen it written.
    for (const sessionId of [...this.#sessions.keys(), ...this.#unreadable.keys()]) {
      if (!present.has(sessionId) && !this.#watchedSinceRead.has(sessionId)) this.#forget(sessionId);
    }
    this.#scheduleReload(fullReadEveryMs);
  }

  #watchEnded(watch: { stop(): void }, error: unknown): void {
    if (this.#stopped || this.#watch !== watch) return;
    this.#logger.warn({ err: error }, 'the watch on the sessions ended; reading them again');
    this.#scheduleReload(retryAfterMs);
  }

  #scheduleReload(afterMs: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => void this.reload(), afterMs);
    this.#retry.unref();
  }

  #apply(change: StoredCheckpointChange): void {
    const known = this.#sessions.get(change.sessionId)?.revision ?? this.#unreadable.get(change.sessionId)?.revision ?? 0;
    if (change.revision < known) return;
    if (change.checkpoint) {
      try {
        this.#sessions.set(change.sessionId, { revision: change.revision, summary: sessionSummaryOf(change.checkpoint) });
        this.#unreadable.delete(change.sessionId);
      } catch (error) {
        this.#sessions.delete(change.sessionId);
        this.#unreadable.set(change.sessionId, { revision: change.revision, error: `its checkpoint could not be summarised: ${(error as Error).message}` });
        this.#logger.warn({ sessionId: change.sessionId, err: error }, 'a checkpoint could not be summarised for the console');
      }
    } else if (change.error !== undefined) {
      this.#sessions.delete(change.sessionId);
      this.#unreadable.set(change.sessionId, { revision: change.revision, error: change.error });
    } else {
      this.#forget(change.sessionId);
      return;
    }
    this.#markChanged(change.sessionId);
  }

  #forget(sessionId: string): void {
    this.#sessions.delete(sessionId);
    this.#unreadable.delete(sessionId);
    this.#markChanged(sessionId);
  }

  #markChanged(sessionId: string): void {
    this.#changed.add(sessionId);
    if (this.#pending || this.#stopped) return;
    this.#pending = setTimeout(() => {
      this.#pending = undefined;
      const ids = [...this.#changed];
      this.#changed.clear();
      const change: SessionsChange = {
        upserted: ids.flatMap((id) => this.#sessions.get(id)?.summary ?? []),
        removed: ids.filter((id) => !this.#sessions.has(id)),
        unreadable: this.list().unreadable,
      };
      const json = JSON.stringify({ kind: 'changes', ...change });
      for (const listener of this.#listeners) listener(change, json);
    }, this.#coalesceMs);
  }
}
