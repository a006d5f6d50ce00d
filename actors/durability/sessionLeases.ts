import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import * as z from 'zod';
import { decisiveReads, jetStreamReplicas } from '../../transport/jetStreamReplicas.ts';
import { isWrongLastSequence } from '../../transport/kvConflicts.ts';
import type { HostHeartbeats } from './hostHeartbeats.ts';
import { latestEntries } from './latestEntries.ts';
import { decodeWireMessage } from '../../transport/wireMessage.ts';
import type { WireNames } from '../../transport/subjects.ts';

/** `heartbeat`: held while the owner's heartbeat is alive, whatever `expiresAt` says (never renewed per session). */
const LeaseRecord = z.object({ owner: z.string(), expiresAt: z.number(), heartbeat: z.boolean().optional() });
type LeaseRecord = z.infer<typeof LeaseRecord>;

/** This process's hold on one session. */
export interface Lease {
  readonly sessionId: string;
  /**
   * Whether the session id had a lease before this one: an expired or released holder's (a session to
   * resume, or a start whose host died before accepting it), never a fresh id.
   */
  readonly replaced: boolean;
  /** Extends the lease; false when it was lost (another owner took it): stop hosting the session then. */
  renew(): Promise<boolean>;
  /** Gives the session up so any orchestrator can take it at once (an ended session has no lease at all). */
  release(): Promise<void>;
  /**
   * Removes the lease of a start whose host died before storing it, if it is still this one's, leaving
   * a delete marker: the same start sent again then takes a lease that `replaced` one, and numbers its
   * events past the dead try's. Compare-and-set: the same start, already taken again by an
   * orchestrator, keeps its new lease.
   */
  drop(): Promise<void>;
}

/**
 * Who hosts which session: one key per live session holding its owner and an expiry, taken and
 * renewed with compare-and-set. An owner that stops renewing (it crashed) loses the session when
 * the lease expires, and the first orchestrator to take it over resumes it from its checkpoint.
 * Expiry compares clocks across machines: keep them in sync (NTP), and the TTL well above skew.
 */
export class SessionLeases {
  readonly #kv: KV;
  readonly #jsm: JetStreamManager;
  readonly #bucket: string;
  readonly #ttlMs: number;
  readonly #hosts: HostHeartbeats | undefined;

  private constructor(kv: KV, jsm: JetStreamManager, bucket: string, ttlMs: number, hosts: HostHeartbeats | undefined) {
    this.#kv = kv;
    this.#jsm = jsm;
    this.#bucket = bucket;
    this.#ttlMs = ttlMs;
    this.#hosts = hosts;
  }

  /** Whether someone other than `owner` holds the lease `record` says; `aliveNow` answers for each host once per scan. */
  async #heldByAnother(record: LeaseRecord, owner: string, aliveNow?: Map<string, Promise<boolean>>): Promise<boolean> {
    if (record.owner === owner) return false;
    // A lease released (expiry 0) is free; one held by a heartbeat holds exactly while that heartbeat does
    // (a host's first beat is stored before it takes any lease, and a host not seen yet is read).
    if (record.expiresAt === 0) return false;
    if (record.heartbeat !== true || !this.#hosts) return record.expiresAt > Date.now();
    let alive = aliveNow?.get(record.owner);
    if (!alive) {
      alive = this.#hosts.isAlive(record.owner);
      aliveNow?.set(record.owner, alive);
    }
    return await alive;
  }

  /**
   * Opens the deployment's lease bucket (`<namespace>_session_leases`), or `bucket` (a specialist
   * pool's own), creating it if missing.
   */
  static async open(nc: NatsConnection, names: WireNames, options: { ttlMs?: number; bucket?: string; hosts?: HostHeartbeats } = {}): Promise<SessionLeases> {
    const bucket = options.bucket ?? names.buckets.leases;
    const kv = await new Kvm(nc).create(bucket, { history: 1, replicas: jetStreamReplicas(nc), ...decisiveReads });
    return new SessionLeases(kv, await jetstreamManager(nc), bucket, options.ttlMs ?? 6_000, options.hosts);
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** Takes the lease of a session nobody holds, or whose holder let it expire; undefined when someone holds it. */
  async acquire(sessionId: string, owner: string): Promise<Lease | undefined> {
    // Held by the heartbeat: its expiry is only what a process that keeps no heartbeats goes by.
    const record = (): string => JSON.stringify(
      this.#hosts ? { owner, expiresAt: Date.now() + this.#hosts.ttlMs, heartbeat: true } : { owner, expiresAt: Date.now() + this.#ttlMs },
    );
    let revision: number;
    let replaced = false;
    try {
      const entry = await this.#kv.get(sessionId);
      replaced = entry !== null;
      if (!entry || entry.operation !== 'PUT') {
        revision = entry ? await this.#kv.update(sessionId, record(), entry.revision) : await this.#kv.create(sessionId, record());
      } else {
        const current = decodeWireMessage(LeaseRecord, entry.value, 'The lease');
        // A corrupt lease protects nothing: treat it as expired.
        if (current.ok && (await this.#heldByAnother(current.value, owner))) return undefined;
        revision = await this.#kv.update(sessionId, record(), entry.revision);
      }
    } catch (error) {
      if (isWrongLastSequence(error) || String(error).includes('exists')) return undefined;
      throw error;
    }
    return {
      sessionId,
      replaced,
      renew: async () => {
        try {
          revision = await this.#kv.update(sessionId, record(), revision);
          return true;
        } catch (error) {
          if (!isWrongLastSequence(error)) throw error;
        }
        // Lost, or behind its own renewal whose answer never came though it was stored (a timeout
        // while JetStream elected a leader): only this owner writes records naming it.
        const entry = await this.#kv.get(sessionId);
        const current = entry?.operation === 'PUT' ? decodeWireMessage(LeaseRecord, entry.value, 'The lease') : undefined;
        if (!entry || !current?.ok || current.value.owner !== owner) return false;
        try {
          revision = await this.#kv.update(sessionId, record(), entry.revision);
          return true;
        } catch (error) {
          if (isWrongLastSequence(error)) return false;
          throw error;
        }
      },
      drop: async () => {
        await this.#kv.delete(sessionId, { previousSeq: revision }).catch((error: unknown) => {
          if (!isWrongLastSequence(error)) throw error;
        });
      },
      release: async () => {
        // An expired record, not a delete: key listings skip deleted keys, and the session must stay findable.
        await this.#kv.update(sessionId, JSON.stringify({ owner, expiresAt: 0 } satisfies LeaseRecord), revision).catch(() => undefined);
      },
    };
  }

  /** Sessions whose lease has expired or was released without the session ending: candidates for resume. */
  async orphans(): Promise<string[]> {
    const found: string[] = [];
    const aliveNow = new Map<string, Promise<boolean>>();
    for (const entry of await latestEntries(this.#kv)) {
      const current = decodeWireMessage(LeaseRecord, entry.value, 'The lease');
      if (!current.ok || !(await this.#heldByAnother(current.value, '', aliveNow))) found.push(entry.key);
    }
    return found;
  }

  /**
   * Removes a session's lease for good: it has ended. Nothing of it is left in the bucket, not even
   * the marker a KV purge leaves, which this bucket (no age limit) would keep forever: every resume
   * scan reads each key's last entry, so the markers of ended sessions made each scan read every
   * session the deployment ever ran. A process that may not purge the stream leaves the marker.
   */
  async end(sessionId: string): Promise<void> {
    await this.#jsm.streams.purge(`KV_${this.#bucket}`, { filter: `$KV.${this.#bucket}.${sessionId}` })
      .catch(() => this.#kv.purge(sessionId))
      .catch(() => undefined);
  }
}

/** A name for one process hosting sessions, unique across restarts: what leases and checkpoints record as the owner. */
export function newHostName(): string {
  return `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
}
