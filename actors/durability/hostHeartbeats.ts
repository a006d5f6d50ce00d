import { Kvm, type KV, type KvWatchEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import * as z from 'zod';
import { decisiveReads, jetStreamReplicas } from '../../transport/jetStreamReplicas.ts';
import { isWrongLastSequence } from '../../transport/kvConflicts.ts';
import type { WireNames } from '../../transport/subjects.ts';
import { decodeWireMessage } from '../../transport/wireMessage.ts';

const HostRecord = z.object({ owner: z.string(), expiresAt: z.number() });

// How long a process keeps trying to write its first beat (a new bucket's leader being elected).
const firstBeatWithinMs = 15_000;

/** An owner name (hostname, pid, a random part) as a KV key. */
const keyOf = (owner: string): string => owner.replace(/[^-\w]/g, '_');

/**
 * Which session-hosting processes are alive: one KV entry per process (`<namespace>_hosts`), renewed
 * every third of a short TTL (1 s by default). A lease names its host, and holds while that host's
 * heartbeat does: a host that dies frees all its sessions at once, within about a TTL, and a session
 * writes nothing to stay its host's.
 *
 * Each process follows the bucket with one watcher for its whole life, so asking who is alive reads
 * nothing, and it notices a death within a third of the TTL.
 */
export class HostHeartbeats {
  readonly #kv: KV;
  readonly #ttlMs: number;
  readonly #seen = new Map<string, { owner: string; expiresAt: number; revision: number }>();
  readonly #mourned = new Set<string>();
  #watch: { stop(): void } | undefined;
  #deathCheck: NodeJS.Timeout | undefined;

  private constructor(kv: KV, ttlMs: number) {
    this.#kv = kv;
    this.#ttlMs = ttlMs;
  }

  /** Opens (creating it if missing) the deployment's heartbeat bucket and follows it. */
  static async open(nc: NatsConnection, names: WireNames, options: { ttlMs?: number } = {}): Promise<HostHeartbeats> {
    const kv = await new Kvm(nc).create(names.buckets.hosts, { history: 1, replicas: jetStreamReplicas(nc), ...decisiveReads });
    const heartbeats = new HostHeartbeats(kv, options.ttlMs ?? 1_000);
    await heartbeats.#follow();
    return heartbeats;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** Whether `owner`'s heartbeat is alive now, by the latest entry this process saw. */
  isAlive(owner: string): boolean {
    const seen = this.#seen.get(keyOf(owner));
    return seen !== undefined && seen.owner === owner && seen.expiresAt > Date.now();
  }

  /**
   * Calls `onDeath` with each owner whose heartbeat lapses from now on (checked every third of the
   * TTL), after removing its entry, if it is still the lapsed one: an owner that was only stalled finds
   * its next beat refused, and stops acting for the sessions it held.
   */
  watchDeaths(onDeath: (owner: string) => void): void {
    this.#deathCheck = setInterval(() => {
      const now = Date.now();
      for (const [key, host] of this.#seen) {
        if (host.expiresAt > now || this.#mourned.has(`${key}@${host.revision}`)) continue;
        this.#mourned.add(`${key}@${host.revision}`);
        void this.#kv.delete(key, { previousSeq: host.revision }).catch(() => undefined);
        onDeath(host.owner);
      }
    }, Math.max(50, Math.floor(this.#ttlMs / 3)));
    this.#deathCheck.unref();
  }

  /** Starts this process's heartbeat as `owner`. `onBuried` is called once if another process took it for dead. */
  async start(owner: string, logger: Logger, onBuried: () => void): Promise<HostHeartbeat> {
    const heartbeat = new HostHeartbeat(this.#kv, keyOf(owner), owner, this.#ttlMs, logger, onBuried);
    await heartbeat.begin();
    return heartbeat;
  }

  stop(): void {
    clearInterval(this.#deathCheck);
    this.#watch?.stop();
  }

  /**
   * Follows the bucket, resolving once the entries there when it began are read: until then every
   * host would look dead, and every session free to take.
   */
  async #follow(): Promise<void> {
    const empty = (await this.#kv.status()).values === 0;
    const watcher = await this.#kv.watch();
    this.#watch = watcher;
    let loaded!: () => void;
    const initial = new Promise<void>((resolve) => (loaded = resolve));
    if (empty) loaded();
    void (async () => {
      for await (const entry of watcher as AsyncIterable<KvWatchEntry>) {
        if (entry.operation !== 'PUT') this.#seen.delete(entry.key);
        else {
          const record = decodeWireMessage(HostRecord, entry.value, 'A host heartbeat');
          if (record.ok) this.#seen.set(entry.key, { ...record.value, revision: entry.revision });
        }
        if (entry.isUpdate || entry.delta === 0) loaded();
      }
    })().catch(() => undefined).finally(() => loaded());
    await initial;
  }
}

/** This process's heartbeat, which its sessions check before they act. */
export class HostHeartbeat {
  readonly owner: string;
  readonly #kv: KV;
  readonly #key: string;
  readonly #ttlMs: number;
  readonly #logger: Logger;
  readonly #onBuried: () => void;
  #revision = 0;
  #beatAt = 0;
  #buried = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #startedAt = Date.now();

  constructor(kv: KV, key: string, owner: string, ttlMs: number, logger: Logger, onBuried: () => void) {
    this.owner = owner;
    this.#kv = kv;
    this.#key = key;
    this.#ttlMs = ttlMs;
    this.#logger = logger;
    this.#onBuried = onBuried;
  }

  /**
   * True while no other process can have taken this one for dead: its last stored beat, counted from
   * when it was sent, is younger than the TTL. A session writes its state, and so sends a
   * side-effecting call, only then.
   */
  alive(): boolean {
    return !this.#buried && Date.now() < this.#beatAt + this.#ttlMs;
  }

  async begin(): Promise<void> {
    // A bucket just created on a cluster has no stream leader for a moment, and answers "no responders".
    for (let delay = 100; ; delay = Math.min(1_000, delay * 2)) {
      const sentAt = Date.now();
      try {
        this.#revision = await this.#kv.put(this.#key, this.#record(sentAt));
        this.#beatAt = sentAt;
        break;
      } catch (error) {
        if (delay >= 1_000 && Date.now() - this.#startedAt > firstBeatWithinMs) throw error;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
    this.#timer = setInterval(() => void this.#beat(), Math.max(50, Math.floor(this.#ttlMs / 3)));
    this.#timer.unref();
  }

  /** Stops beating and removes the entry: the process hands its sessions over, or is done. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    if (!this.#buried) await this.#kv.delete(this.#key, { previousSeq: this.#revision }).catch(() => undefined);
    this.#buried = true;
  }

  async #beat(): Promise<void> {
    if (this.#buried) return;
    const sentAt = Date.now();
    try {
      this.#revision = await this.#kv.update(this.#key, this.#record(sentAt), this.#revision);
      this.#beatAt = sentAt;
    } catch (error) {
      if (!isWrongLastSequence(error)) {
        // JetStream electing a leader: sessions hold still (`alive` is false once the TTL passes) and beating goes on.
        this.#logger.warn({ err: error }, 'could not renew this process\'s heartbeat; will retry');
        return;
      }
      // Stored though unanswered, or removed by a process that took this one for dead.
      const entry = await this.#kv.get(this.#key).catch(() => null);
      const record = entry?.operation === 'PUT' ? decodeWireMessage(HostRecord, entry.value, 'A host heartbeat') : undefined;
      if (entry && record?.ok && record.value.owner === this.owner) {
        this.#revision = entry.revision;
        return;
      }
      this.#buried = true;
      clearInterval(this.#timer);
      this.#logger.error('another process took this one for dead and freed its sessions: it stops hosting them');
      this.#onBuried();
    }
  }

  #record(now: number): string {
    return JSON.stringify({ owner: this.owner, expiresAt: now + this.#ttlMs });
  }
}
