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
 * A host is dead only once it is buried: its lapsed entry removed with compare-and-set, after a read
 * from the stream's leader confirmed that it lapsed. What this process's watcher shows can be stale
 * (its consumer stalls while JetStream elects a leader), so a lapse seen there only starts that
 * check, and an entry missing from it is read before its host counts as gone: a live host's sessions
 * are never taken. A buried host finds its next beat refused and stops acting for its sessions; it
 * wrote nothing since its last beat lapsed by its own clock (see `HostHeartbeat.alive`).
 */
export class HostHeartbeats {
  readonly #kv: KV;
  readonly #ttlMs: number;
  readonly #seen = new Map<string, { owner: string; expiresAt: number; revision: number }>();
  // Owners whose entry was removed: by a burial, or by the host itself as it stopped.
  readonly #buried = new Set<string>();
  // This process's own heartbeats: never buried from here.
  readonly #own = new Set<string>();
  #checking = false;
  #watch: { stop(): void } | undefined;
  #deathCheck: NodeJS.Timeout | undefined;
  #onDeath: (owner: string) => void = () => {};

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

  /**
   * Whether `owner` may still hold sessions: its heartbeat entry is there. An owner this process has
   * not seen is read from the bucket; when that read fails, the owner counts as alive.
   */
  async isAlive(owner: string): Promise<boolean> {
    if (this.#buried.has(owner)) return false;
    const key = keyOf(owner);
    if (this.#seen.get(key)?.owner === owner) return true;
    try {
      const entry = await this.#kv.get(key);
      const record = entry?.operation === 'PUT' ? decodeWireMessage(HostRecord, entry.value, 'A host heartbeat') : undefined;
      if (entry && record?.ok && record.value.owner === owner) {
        this.#note(key, record.value, entry.revision);
        return true;
      }
      return false;
    } catch {
      return true;
    }
  }

  /**
   * Calls `onDeath` with each owner buried from now on, here or by another process (and with owners
   * that stopped cleanly): its sessions are free to take. Lapses are looked for every third of the TTL.
   */
  watchDeaths(onDeath: (owner: string) => void): void {
    this.#onDeath = onDeath;
    this.#deathCheck = setInterval(() => void this.#buryLapsed(), Math.max(50, Math.floor(this.#ttlMs / 3)));
    this.#deathCheck.unref();
  }

  /** Starts this process's heartbeat as `owner`. `onBuried` is called once if another process took it for dead. */
  async start(owner: string, logger: Logger, onBuried: () => void): Promise<HostHeartbeat> {
    this.#own.add(keyOf(owner));
    const heartbeat = new HostHeartbeat(this.#kv, keyOf(owner), owner, this.#ttlMs, logger, onBuried);
    await heartbeat.begin();
    return heartbeat;
  }

  stop(): void {
    clearInterval(this.#deathCheck);
    this.#watch?.stop();
  }

  /** Buries the hosts whose lapse the watcher shows and a read from the leader confirms. */
  async #buryLapsed(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      const now = Date.now();
      for (const [key, host] of [...this.#seen]) {
        if (host.expiresAt > now || this.#own.has(key)) continue;
        try {
          const entry = await this.#kv.get(key);
          if (entry?.operation === 'PUT' && entry.revision !== host.revision) {
            const record = decodeWireMessage(HostRecord, entry.value, 'A host heartbeat');
            if (record.ok && record.value.expiresAt > Date.now()) {
              this.#note(key, record.value, entry.revision);
              continue;
            }
          }
          if (entry?.operation === 'PUT') await this.#kv.delete(key, { previousSeq: entry.revision });
          this.#mourn(key, host.owner);
        } catch {
          // Beaten meanwhile (compare-and-set lost), or JetStream electing a leader: looked at again next time.
        }
      }
    } finally {
      this.#checking = false;
    }
  }

  #note(key: string, record: { owner: string; expiresAt: number }, revision: number): void {
    const seen = this.#seen.get(key);
    if (!seen || seen.revision < revision) this.#seen.set(key, { ...record, revision });
  }

  #mourn(key: string, owner: string): void {
    this.#seen.delete(key);
    if (this.#buried.has(owner)) return;
    this.#buried.add(owner);
    this.#onDeath(owner);
  }

  /**
   * Follows the bucket, resolving once the entries there when it began are read: until then no lapse
   * is looked for.
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
        if (entry.operation !== 'PUT') {
          const gone = this.#seen.get(entry.key);
          if (gone) this.#mourn(entry.key, gone.owner);
        } else {
          const record = decodeWireMessage(HostRecord, entry.value, 'A host heartbeat');
          if (record.ok) this.#note(entry.key, record.value, entry.revision);
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
