import { isWrongLastSequence } from '../../transport/kvConflicts.ts';
import { decisiveReads, jetStreamReplicas } from '../../transport/jetStreamReplicas.ts';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import * as z from 'zod';
import { silentLogger } from '../../observability/logger.ts';
import { ToolReply } from '../../transport/messages.ts';
import type { WireNames } from '../../transport/subjects.ts';

/** How long records live when `open` is given no `ttlMs`: long enough for any retry of a call. */
export const defaultOutcomeTtlMs = 24 * 60 * 60 * 1000;

// A write of a claim's record whose answer was lost is tried this often, this far apart (times the try), before giving up.
const ownWriteAttempts = 4;
const ownWriteBackoffMs = 250;
const pollIntervalMs = 50;
// A claim lost to a concurrent writer is re-read and decided again; this many rounds means
// something keeps rewriting the key, which no well-behaved worker does.
const maxClaimRounds = 8;

/**
 * The stored value: a call someone owns, or a call's final reply. An owner marks its claim
 * `started` just before the handler runs: a started claim whose owner is gone is in doubt (the
 * effect may have happened), an unstarted one is free to take over.
 */
export const OutcomeRecord = z.discriminatedUnion('state', [
  z.object({
    state: z.literal('running'), instanceId: z.string(), deadline: z.number(),
    /** Epoch ms when the handler started; absent while only claimed. */
    startedAt: z.number().optional(),
    /** Handler runs for this call id so far, this claim's included once started; see {@link handlerRunsOf}. */
    runs: z.number().int().nonnegative().optional(),
  }),
  z.object({ state: z.literal('done'), reply: ToolReply, runs: z.number().int().nonnegative().optional() }),
]);
export type OutcomeRecord = z.infer<typeof OutcomeRecord>;

/**
 * How many times a call's handler ran, as its record says: more than 1 only when a call in doubt
 * was run again because the tool's `reconcile` said its effect was not there (a wrong `reconcile`
 * makes that a duplicated side effect, which is what evals look for). Records written before the
 * count existed say 1 for a started or finished call.
 */
export function handlerRunsOf(record: OutcomeRecord): number {
  if (record.runs !== undefined) return record.runs;
  return record.state === 'done' || record.startedAt !== undefined ? 1 : 0;
}

/** Who claims a call, and until when the claim holds (the call's deadline, epoch ms). */
export interface OutcomeClaim {
  instanceId: string;
  deadline: number;
}

/** This caller owns the call: `start` it, run the handler, then `commit` its reply or `release` the claim. */
export interface ExecuteDecision {
  kind: 'execute';
  /**
   * The claim's fencing token (the KV revision it was written at): every later owner of the call
   * holds a larger one, and a late owner's writes to the record fail.
   */
  fencingToken: number;
  /**
   * Marks the claim started, just before the handler runs: from now on an owner that dies leaves the
   * call in doubt rather than free. Throws when it cannot (the claim was lost or NATS failed); the
   * handler must not run then.
   */
  start(): Promise<void>;
  /** Records the final reply; later attempts replay it. Never throws for a lost claim (it logs). */
  commit(reply: ToolReply): Promise<void>;
  /** Gives the claim up without an outcome, so the next attempt executes. Never throws (it logs). */
  release(): Promise<void>;
  /**
   * Keeps the claim past its deadline: the handler is still running (it outlived the deadline), so
   * a retry must wait for its outcome rather than run it again. Never throws (it logs).
   */
  extend(untilEpochMs: number): Promise<void>;
}

/** The call already finished: send this reply, do not execute. */
export interface ReplayDecision {
  kind: 'replay';
  reply: ToolReply;
}

/** Another attempt holds a live claim; wait with `waitForOutcome(callId, until)`. */
export interface BusyDecision {
  kind: 'busy';
  heldBy: string;
  until: number;
}

/** What is known about a call whose owner started the handler and then stopped answering. */
export interface InDoubtEvidence {
  heldBy: string;
  startedAt: string;
  claimExpiredAt: string;
  fencingToken: number;
}

/**
 * A started claim expired: its owner died (or stalled) after the handler began, so the effect may or
 * may not have happened. Settle it when the effect can be looked up, or leave it for a person.
 */
export interface InDoubtDecision {
  kind: 'in_doubt';
  evidence: InDoubtEvidence;
  /** It happened: record this reply as the call's outcome. False when the record changed meanwhile. */
  settle(reply: ToolReply): Promise<boolean>;
  /** It did not happen: own the call now (a new fencing token). Undefined when the record changed meanwhile. */
  takeOver(claim: OutcomeClaim): Promise<ExecuteDecision | undefined>;
}

export type OutcomeDecision = ExecuteDecision | ReplayDecision | BusyDecision | InDoubtDecision;

/** The store could not reach a decision (the KV kept changing under it). */
export class IdempotencyStoreError extends Error {
  readonly callId: string;

  constructor(callId: string, message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.callId = callId;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * KV keys allow only `[-/_=.a-zA-Z0-9]` and no empty tokens; call ids are arbitrary strings, so
 * they are stored base64url-encoded (an alphabet inside the allowed set, and reversible).
 */
export function outcomeKey(callId: string): string {
  if (callId === '') throw new IdempotencyStoreError(callId, 'A call id must not be empty.');
  return Buffer.from(callId, 'utf8').toString('base64url');
}

/** The call id a key was made from: the inverse of {@link outcomeKey}. */
export function callIdOfKey(key: string): string {
  return Buffer.from(key, 'base64url').toString('utf8');
}

function encodeRecord(record: OutcomeRecord): Uint8Array {
  return encoder.encode(JSON.stringify(record));
}

type StoredState =
  | { kind: 'absent' }
  | { kind: 'record'; record: OutcomeRecord; revision: number }
  // A deleted/purged marker or a value that is not a valid record: claimable with CAS.
  | { kind: 'claimable'; revision: number };

/**
 * Records the outcome of side-effecting tool calls in JetStream KV under the call id, so a call
 * retried after a lost reply, or re-sent after a worker restart, returns the recorded reply and
 * never executes twice. Every write is a compare-and-set on the key's revision, so two workers
 * racing for one call cannot both execute it, and a worker that lost its claim cannot record over
 * its successor. A claim whose handler started and whose owner then vanished is in doubt, never
 * free. Records expire with the bucket's TTL.
 */
export class IdempotencyStore {
  readonly #kv: KV;
  readonly #logger: Logger;

  private constructor(kv: KV, logger: Logger) {
    this.#kv = kv;
    this.#logger = logger;
  }

  /**
   * Opens the deployment's bucket (`<namespace>_tool_outcomes`), creating it (history 1, `ttlMs`
   * as the stream's max age) if missing. An existing bucket is used as it is: its TTL is not changed.
   */
  static async open(nc: NatsConnection, names: WireNames, options: { ttlMs?: number; logger?: Logger } = {}): Promise<IdempotencyStore> {
    const kv = await new Kvm(nc).create(names.buckets.toolOutcomes, { history: 1, ttl: options.ttlMs ?? defaultOutcomeTtlMs, replicas: jetStreamReplicas(nc), ...decisiveReads });
    const logger = (options.logger ?? silentLogger()).child({ component: 'idempotency-store' });
    return new IdempotencyStore(kv, logger);
  }

  /**
   * Decides what to do with an arriving call: `execute` when this caller now owns it (a fresh
   * call, an expired claim whose handler never started, or a corrupt record taken over), `replay`
   * when it already finished, `busy` when another attempt's claim is still within its deadline,
   * `in_doubt` when an expired claim's handler had started. Throws only when NATS fails or the key
   * keeps changing under it ({@link IdempotencyStoreError}).
   */
  async begin(callId: string, claim: OutcomeClaim): Promise<OutcomeDecision> {
    const key = outcomeKey(callId);
    let lastRace: unknown;
    for (let round = 0; round < maxClaimRounds; round++) {
      const stored = await this.#read(key, callId);
      let revision: number;
      // A released claim leaves no record: its handler failed retryably, which promises no effect.
      let priorRuns = 0;
      if (stored.kind === 'record') {
        const { record } = stored;
        if (record.state === 'done') return { kind: 'replay', reply: record.reply };
        if (record.deadline > Date.now()) return { kind: 'busy', heldBy: record.instanceId, until: record.deadline };
        if (record.startedAt !== undefined) return this.#inDoubt(key, callId, record, stored.revision);
        this.#logger.info({ callId, heldBy: record.instanceId, deadline: record.deadline }, 'taking over an expired claim whose handler never started');
        revision = stored.revision;
        priorRuns = handlerRunsOf(record);
      } else if (stored.kind === 'claimable') {
        revision = stored.revision;
      } else {
        revision = 0;
      }
      try {
        const running = encodeRecord({ state: 'running', instanceId: claim.instanceId, deadline: claim.deadline, ...(priorRuns > 0 ? { runs: priorRuns } : {}) });
        const claimed = revision === 0 ? await this.#kv.create(key, running) : await this.#kv.update(key, running, revision);
        return this.#execute(key, callId, claimed, claim.instanceId, claim.deadline, priorRuns);
      } catch (error) {
        if (!isWrongLastSequence(error)) throw error;
        lastRace = error; // someone wrote the key between our read and our write: look again
      }
    }
    throw new IdempotencyStoreError(callId, `Could not claim call "${callId}": its record kept changing.`, { cause: lastRace });
  }

  /**
   * Polls (about every 50 ms) until the call has a recorded reply or `untilEpochMs` passes;
   * resolves `undefined` at the deadline. Read errors are logged and polling continues.
   */
  async waitForOutcome(callId: string, untilEpochMs: number): Promise<ToolReply | undefined> {
    const key = outcomeKey(callId);
    for (;;) {
      try {
        const stored = await this.#read(key, callId);
        if (stored.kind === 'record' && stored.record.state === 'done') return stored.record.reply;
      } catch (error) {
        this.#logger.warn({ callId, err: error }, 'reading a call outcome failed; still waiting');
      }
      const remaining = untilEpochMs - Date.now();
      if (remaining <= 0) return undefined;
      await new Promise((resolve) => setTimeout(resolve, Math.min(pollIntervalMs, remaining)));
    }
  }

  /**
   * How many times the call's handler ran ({@link handlerRunsOf}); undefined when the store holds no
   * record of it (never a side-effecting call, released after a retryable failure, or expired).
   */
  async handlerRuns(callId: string): Promise<number | undefined> {
    const stored = await this.#read(outcomeKey(callId), callId);
    return stored.kind === 'record' ? handlerRunsOf(stored.record) : undefined;
  }

  async #read(key: string, callId: string): Promise<StoredState> {
    const entry: KvEntry | null = await this.#kv.get(key);
    if (entry === null) return { kind: 'absent' };
    if (entry.operation !== 'PUT') return { kind: 'claimable', revision: entry.revision };
    let json: unknown;
    try {
      json = JSON.parse(decoder.decode(entry.value));
    } catch (error) {
      this.#logger.warn({ callId, revision: entry.revision, err: error }, 'stored call outcome is not JSON; treating it as claimable');
      return { kind: 'claimable', revision: entry.revision };
    }
    const parsed = OutcomeRecord.safeParse(json);
    if (!parsed.success) {
      this.#logger.warn({ callId, revision: entry.revision, issues: parsed.error.issues }, 'stored call outcome is malformed; treating it as claimable');
      return { kind: 'claimable', revision: entry.revision };
    }
    return { kind: 'record', record: parsed.data, revision: entry.revision };
  }

  #inDoubt(key: string, callId: string, record: Extract<OutcomeRecord, { state: 'running' }>, revision: number): InDoubtDecision {
    const evidence: InDoubtEvidence = {
      heldBy: record.instanceId,
      startedAt: new Date(record.startedAt ?? 0).toISOString(),
      claimExpiredAt: new Date(record.deadline).toISOString(),
      fencingToken: revision,
    };
    this.#logger.warn({ callId, ...evidence }, 'call in doubt: its handler started on a worker that stopped before recording the outcome');
    return {
      kind: 'in_doubt',
      evidence,
      settle: async (reply) => {
        try {
          await this.#kv.update(key, encodeRecord({ state: 'done', reply, runs: handlerRunsOf(record) }), revision);
          return true;
        } catch (error) {
          if (isWrongLastSequence(error)) return false;
          throw error;
        }
      },
      takeOver: async (claim) => {
        try {
          const runs = handlerRunsOf(record);
          const claimed = await this.#kv.update(key, encodeRecord({ state: 'running', instanceId: claim.instanceId, deadline: claim.deadline, runs }), revision);
          return this.#execute(key, callId, claimed, claim.instanceId, claim.deadline, runs);
        } catch (error) {
          if (isWrongLastSequence(error)) return undefined;
          throw error;
        }
      },
    };
  }

  /**
   * Writes a claim's record over `revision`. When the answer is lost (a timeout while JetStream elects
   * a leader), it reads back whether the write was stored, and tries again while the record is still
   * at `revision`: only the claim's holder writes its body, so a stored write is known by its bytes.
   * A claim marked started unknowingly would put a call that never ran in doubt; an outcome not
   * recorded would do the same to one that did.
   */
  async #updateOwn(key: string, body: Uint8Array, revision: number): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#kv.update(key, body, revision);
      } catch (error) {
        const entry = await this.#kv.get(key).catch(() => undefined);
        if (entry?.operation === 'PUT' && Buffer.from(entry.value).equals(body)) return entry.revision;
        const unchanged = entry === undefined || entry?.revision === revision;
        if (isWrongLastSequence(error) || !unchanged || attempt >= ownWriteAttempts) throw error;
        await new Promise((resolve) => setTimeout(resolve, attempt * ownWriteBackoffMs));
      }
    }
  }

  #execute(key: string, callId: string, revision: number, instanceId: string, deadline: number, priorRuns: number): ExecuteDecision {
    const fencingToken = revision;
    let startedAt: number | undefined;
    const runs = () => (startedAt === undefined ? priorRuns : priorRuns + 1);
    const counted = () => (runs() > 0 ? { runs: runs() } : {});
    let settled = false;
    // One write at a time, each over the revision the last one left: an extension sent while marking
    // started is still unanswered would lose to it, and leave the claim to lapse with its handler running.
    let writes: Promise<unknown> = Promise.resolve();
    const inTurn = <T>(write: () => Promise<T>): Promise<T> => {
      const next = writes.then(write, write);
      writes = next.catch(() => undefined);
      return next;
    };
    const once = (action: string): boolean => {
      if (settled) {
        this.#logger.warn({ callId, action }, 'claim already committed or released; ignored');
        return false;
      }
      settled = true;
      return true;
    };
    return {
      kind: 'execute',
      fencingToken,
      start: () => inTurn(async () => {
        startedAt = Date.now();
        revision = await this.#updateOwn(key, encodeRecord({ state: 'running', instanceId, deadline, startedAt, ...counted() }), revision);
      }),
      commit: async (reply) => {
        if (!once('commit')) return;
        await inTurn(async () => {
          try {
            await this.#updateOwn(key, encodeRecord({ state: 'done', reply, ...counted() }), revision);
          } catch (error) {
            // Lost the claim (it expired and another attempt took over) or NATS failed: the reply
            // still goes to the caller; only later replays of this call miss it.
            this.#logger.warn({ callId, err: error, lostClaim: isWrongLastSequence(error) }, 'could not record the call outcome');
          }
        });
      },
      extend: (untilEpochMs) => inTurn(async () => {
        if (settled) return;
        try {
          revision = await this.#updateOwn(key, encodeRecord({ state: 'running', instanceId, deadline: untilEpochMs, ...(startedAt !== undefined ? { startedAt } : {}), ...counted() }), revision);
        } catch (error) {
          this.#logger.warn({ callId, err: error, lostClaim: isWrongLastSequence(error) }, 'could not extend the call claim');
        }
      }),
      release: async () => {
        if (!once('release')) return;
        await inTurn(async () => {
          try {
            await this.#kv.delete(key, { previousSeq: revision });
          } catch (error) {
            this.#logger.warn({ callId, err: error, lostClaim: isWrongLastSequence(error) }, 'could not release the call claim');
          }
        });
      },
    };
  }
}
