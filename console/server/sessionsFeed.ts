import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { CheckpointStore, type Checkpoint } from '../../actors/durability/checkpointStore.ts';
import type { WireNames } from '../../transport/subjects.ts';
import type { SessionList, SessionSummary } from '../consoleApi.ts';
import { sessionSummaryOf } from './sessionViews.ts';

/**
 * Every session of the deployment as the console's table shows it, kept current from the checkpoint
 * bucket: read whole once, then followed through a KV watch, and read whole again after NATS comes
 * back (a watch may have missed entries while it was away). Listeners hear of each change, at most
 * every `coalesceMs`.
 */
export class SessionsFeed {
  readonly #nc: NatsConnection;
  readonly #names: WireNames;
  readonly #logger: Logger;
  readonly #sessions = new Map<string, SessionSummary>();
  readonly #unreadable = new Map<string, string>();
  readonly #listeners = new Set<(list: SessionList) => void>();
  #store: CheckpointStore | undefined;
  #watch: { stop(): void } | undefined;
  #pending: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #stopped = false;

  readonly #coalesceMs: number;

  constructor(nc: NatsConnection, names: WireNames, logger: Logger, coalesceMs = 200) {
    this.#coalesceMs = coalesceMs;
    this.#nc = nc;
    this.#names = names;
    this.#logger = logger;
  }

  /** Reads the bucket (or finds there is none yet) and starts following it. */
  async start(): Promise<void> {
    await this.reload();
  }

  /** Reads every checkpoint again and follows the bucket from now: at start, and after NATS came back. */
  async reload(): Promise<void> {
    if (this.#stopped) return;
    this.#watch?.stop();
    this.#watch = undefined;
    // Opened for reading: an observer may not create the bucket, and none exists before the first session.
    this.#store ??= await CheckpointStore.openForReading(this.#nc, this.#names);
    if (!this.#store) {
      // No session has been stored yet: look again soon, so the first one appears without a reload.
      this.#retry = setTimeout(() => void this.reload().catch((error) => this.#logger.warn({ err: error }, 'reading the sessions failed')), 2_000);
      this.#changed();
      return;
    }
    this.#watch = await this.#store.watch((change) => this.#apply(change));
    const all = await this.#store.list();
    this.#sessions.clear();
    this.#unreadable.clear();
    for (const entry of all) this.#apply(entry);
    this.#changed();
  }

  /** The table now: newest first. */
  list(): SessionList {
    return {
      sessions: [...this.#sessions.values()].sort((a, b) => b.updatedAt.localeCompare(a.updatedAt)),
      unreadable: [...this.#unreadable].map(([sessionId, error]) => ({ sessionId, error })),
    };
  }

  /** Calls `listener` with the whole table after each change; returns how to stop. */
  subscribe(listener: (list: SessionList) => void): () => void {
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

  #apply(change: { sessionId: string; checkpoint?: Checkpoint; error?: string }): void {
    this.#sessions.delete(change.sessionId);
    this.#unreadable.delete(change.sessionId);
    if (change.checkpoint) {
      try {
        this.#sessions.set(change.sessionId, sessionSummaryOf(change.checkpoint));
      } catch (error) {
        this.#unreadable.set(change.sessionId, `its checkpoint could not be summarised: ${(error as Error).message}`);
        this.#logger.warn({ sessionId: change.sessionId, err: error }, 'a checkpoint could not be summarised for the console');
      }
    } else if (change.error !== undefined) this.#unreadable.set(change.sessionId, change.error);
    this.#changed();
  }

  #changed(): void {
    if (this.#pending || this.#stopped) return;
    this.#pending = setTimeout(() => {
      this.#pending = undefined;
      const list = this.list();
      for (const listener of this.#listeners) listener(list);
    }, this.#coalesceMs);
  }
}
