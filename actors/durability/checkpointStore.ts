import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm, KvWatchInclude, type KV, type KvEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import * as z from 'zod';
import { formatIssuePath } from '../../tools/validation.ts';
import { decisiveReads, jetStreamReplicas } from '../../transport/jetStreamReplicas.ts';
import { isWrongLastSequence } from '../../transport/kvConflicts.ts';
import type { WireNames } from '../../transport/subjects.ts';
import { decodeWireMessage } from '../../transport/wireMessage.ts';
import { latestEntries } from './latestEntries.ts';
import { JournalBrokenError, JournalReference, replayJournal, type JournalSegment } from './sessionJournal.ts';

/**
 * The version of the checkpoint format this code writes. Bump it whenever the session statechart's
 * states or context change shape, and add a migration from the previous version below (or leave
 * none, and older checkpoints are refused with a clear error rather than misread).
 */
export const checkpointSchemaVersion = 4;

/** A session's checkpoint as a listing or a watch reads it: the checkpoint, why it cannot be read, or neither (deleted). */
export interface StoredCheckpointChange {
  sessionId: string;
  revision: number;
  checkpoint?: Checkpoint;
  error?: string;
}

/** Everything needed to resume a session in another process. */
export const Checkpoint = z.object({
  schemaVersion: z.literal(checkpointSchemaVersion),
  sessionId: z.string(),
  agent: z.string(),
  task: z.string(),
  /** `parked` sessions wait for a person (answer, approval, redirect); `running` and `parked` ones are resumed after a crash, `ended` ones never. */
  status: z.enum(['running', 'parked', 'ended']),
  /** The session actor's persisted XState snapshot, children (in-flight calls) included. */
  snapshot: z.record(z.string(), z.unknown()),
  /** The next event sequence number, so a resumed session's events continue the same numbering. */
  nextEventSeq: z.number().int().nonnegative(),
  /** The W3C trace context of the session span: a resumed session stays in the same trace. */
  traceContext: z.record(z.string(), z.string()),
  /** Epoch milliseconds: the wall-clock deadline, re-armed on resume. */
  wallClockDeadline: z.number(),
  /** For people and tools: the tool calls in flight at this checkpoint (they are re-sent with these ids on resume). */
  inFlightToolCalls: z.array(z.object({ callId: z.string(), tool: z.string() })),
  owner: z.string(),
  updatedAt: z.string(),
  /** The ids of the recorded commands applied so far (the latest 200): a resumed session applies each once. */
  appliedControls: z.array(z.string()).default([]),
  /**
   * Where the conversation and the ledger are (version 3 on): stored, the snapshot's `conversation` and
   * `ledger` are empty and the journal holds them; read through {@link CheckpointStore.read}, they are
   * filled in again. Absent, they are in the snapshot.
   */
  journal: JournalReference.optional(),
});
export type Checkpoint = z.infer<typeof Checkpoint>;

/**
 * Migrations from older formats, keyed by the version they read: each returns the next version's
 * shape.
 */
const migrations: Record<number, (old: Record<string, unknown>) => Record<string, unknown>> = {
  // 2 added delegation, routing, attribution, the context budget and caching to the session's context.
  1: (old) => ({ ...old, schemaVersion: 2, snapshot: withVersion2Context((old.snapshot ?? {}) as Record<string, unknown>) }),
  // 3 may keep the conversation and the ledger in a journal beside the checkpoint; a version-2
  // checkpoint has them in its snapshot, which version 3 reads as a checkpoint without a journal.
  // The version changed so that an older orchestrator refuses a version-3 checkpoint instead of
  // resuming its session with an empty conversation.
  2: (old) => ({ ...old, schemaVersion: 3 }),
  // 4 added the workflow and its phase, and the guardrails' points, to the session's context (a
  // version-3 session has neither). The version changed so that an older orchestrator refuses a
  // session with a workflow or guardrails instead of running it with neither enforced.
  3: (old) => ({ ...old, schemaVersion: 4 }),
};

/**
 * The context fields versions 2 and 4 added, filled where absent: a version-1 session is a top-level
 * session without a routing policy that has delegated nothing, for nobody in particular, with the
 * default context settings; a version-3 one has no workflow. Also applied to version-2 checkpoints, so that one written before a
 * field existed reads the same way instead of failing later inside the running session.
 */
function withVersion2Context(snapshot: Record<string, unknown>): Record<string, unknown> {
  const context = (snapshot.context ?? {}) as Record<string, unknown>;
  return {
    ...snapshot,
    context: {
      routing: null, depth: 0, delegationDepthLeft: 2, routingDecision: null, tenant: null, user: null,
      summary: null, contextCalibration: 1, cache: { modelHits: 0, toolHits: 0, savedUsd: 0 },
      contextSettings: { outputHeadroomTokens: 4_096, recentTurns: 4, summaryMaxTokens: 800 },
      delegated: { usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 }, steps: 0, toolCalls: 0 },
      workflow: null, phase: null, phaseChoice: null, guardrailPoints: [], uncheckedInput: [], inputChecks: 'before', heldResponse: null,
      ...context,
    },
  };
}

/** A stored checkpoint that this code cannot use; it is left untouched. */
export class CheckpointUnreadableError extends Error {
  readonly sessionId: string;
  constructor(sessionId: string, message: string) {
    super(`The checkpoint of session ${sessionId} cannot be used: ${message}`);
    this.name = new.target.name;
    this.sessionId = sessionId;
  }
}

/** Someone else wrote the checkpoint since we read it: we no longer own the session. */
export class CheckpointConflictError extends Error {
  constructor(sessionId: string, cause: unknown) {
    super(`Session ${sessionId} was checkpointed by another owner; this process no longer hosts it.`, { cause });
    this.name = new.target.name;
  }
}

/** Parses a stored checkpoint: current versions load, older ones migrate, anything else is refused. */
export function readCheckpoint(sessionId: string, raw: unknown): Checkpoint {
  if (typeof raw !== 'object' || raw === null || typeof (raw as { schemaVersion?: unknown }).schemaVersion !== 'number') {
    throw new CheckpointUnreadableError(sessionId, 'it has no schemaVersion, so it was not written by Troupe.');
  }
  let value = raw as Record<string, unknown>;
  let version = value.schemaVersion as number;
  if (version > checkpointSchemaVersion) {
    throw new CheckpointUnreadableError(sessionId, `it was written in schema version ${version} by a newer Troupe; this one reads versions up to ${checkpointSchemaVersion}. Upgrade this orchestrator.`);
  }
  while (version < checkpointSchemaVersion) {
    const migrate = migrations[version];
    if (!migrate) throw new CheckpointUnreadableError(sessionId, `schema version ${version} is too old to migrate to ${checkpointSchemaVersion}.`);
    value = migrate(value);
    version = value.schemaVersion as number;
  }
  value = { ...value, snapshot: withVersion2Context((value.snapshot ?? {}) as Record<string, unknown>) };
  const parsed = Checkpoint.safeParse(value);
  if (!parsed.success) {
    throw new CheckpointUnreadableError(sessionId, parsed.error.issues.map((i) => `${formatIssuePath(i.path)}: ${i.message}`).join('; '));
  }
  // Resuming hosts the session the checkpoint names, under the lease of the key it was read from: a
  // checkpoint naming another session would take that session's events and controls, and, never
  // able to write its own key, be resumed and lost again at every lease expiry.
  const named = [parsed.data.sessionId, (parsed.data.snapshot.context as { sessionId?: unknown } | undefined)?.sessionId ?? sessionId];
  const other = named.find((id) => id !== sessionId);
  if (other !== undefined) throw new CheckpointUnreadableError(sessionId, `it names session ${JSON.stringify(other)}, not the one it is stored under.`);
  return parsed.data;
}

function checkpointOfEntry(sessionId: string, entry: KvEntry): Checkpoint {
  let raw: unknown;
  try {
    raw = entry.json();
  } catch {
    throw new CheckpointUnreadableError(sessionId, 'it is not JSON.');
  }
  return readCheckpoint(sessionId, raw);
}

// Enough of a checkpoint to tell whose write it was.
const OwnedRecord = z.object({ owner: z.string() });

/** Session checkpoints in JetStream KV, written with compare-and-set so two owners can never both write. */
export class CheckpointStore {
  readonly #kv: KV;

  private constructor(kv: KV) {
    this.#kv = kv;
  }

  /**
   * Opens the bucket to read it only, never creating it: the roles that read sessions (operator,
   * observer) may not create streams. Undefined while no orchestrator has created it: there are no
   * sessions yet. `bucket` reads a specialist pool's own instead.
   */
  static async openForReading(nc: NatsConnection, names: WireNames, options: { bucket?: string } = {}): Promise<CheckpointStore | undefined> {
    const bucket = options.bucket ?? names.buckets.checkpoints;
    // checkAPI off: the readers' roles may not ask for the account's JetStream info.
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    try {
      await jsm.streams.info(`KV_${bucket}`);
    } catch (error) {
      if (error instanceof Error && /stream not found/i.test(error.message)) return undefined;
      throw error;
    }
    return new CheckpointStore(await new Kvm(nc).open(bucket));
  }

  /**
   * Opens the deployment's checkpoint bucket (`<namespace>_sessions`), or `bucket` (a specialist
   * pool's own), creating it if missing.
   */
  static async open(nc: NatsConnection, names: WireNames, options: { bucket?: string } = {}): Promise<CheckpointStore> {
    const bucket = options.bucket ?? names.buckets.checkpoints;
    const kv = await new Kvm(nc).create(bucket, { history: 1, ttl: 7 * 24 * 60 * 60 * 1000, replicas: jetStreamReplicas(nc), ...decisiveReads });
    return new CheckpointStore(kv);
  }

  /**
   * The latest checkpoint and its revision, its conversation and ledger read back from its journal
   * (left empty with `journal: false`, for a caller that wants the state and the outcome only);
   * undefined when there is none. Throws CheckpointUnreadableError.
   */
  async read(sessionId: string, options: { journal?: boolean } = {}): Promise<{ checkpoint: Checkpoint; revision: number } | undefined> {
    const entry = await this.#kv.get(sessionId);
    if (!entry || entry.operation !== 'PUT') return undefined;
    const checkpoint = checkpointOfEntry(sessionId, entry);
    const whole = checkpoint.journal && options.journal !== false;
    return { checkpoint: whole && checkpoint.journal ? await this.#withJournal(checkpoint, checkpoint.journal) : checkpoint, revision: entry.revision };
  }

  async #withJournal(checkpoint: Checkpoint, reference: JournalReference): Promise<Checkpoint> {
    // The chain's own segments, from its head back to its base: not the earlier chains a restart
    // left behind, nor segments of a host that lost the session. One read each, in turn.
    const segments = new Map<string, unknown>();
    for (let key: string | null = reference.head; key !== null && segments.size < reference.segments;) {
      const entry = await this.#kv.get(`${checkpoint.sessionId}.${key}`);
      if (entry?.operation !== 'PUT') break;
      let value: unknown;
      try {
        value = entry.json();
      } catch {
        break;
      }
      segments.set(key, value);
      const previous = (value as { previous?: unknown } | null)?.previous;
      key = typeof previous === 'string' ? previous : null;
    }
    let lists;
    try {
      lists = replayJournal(reference, segments);
    } catch (error) {
      if (error instanceof JournalBrokenError) throw new CheckpointUnreadableError(checkpoint.sessionId, `${error.message}.`);
      throw error;
    }
    const context = (checkpoint.snapshot.context ?? {}) as Record<string, unknown>;
    return { ...checkpoint, snapshot: { ...checkpoint.snapshot, context: { ...context, conversation: lists.conversation, ledger: lists.ledger } } };
  }

  /**
   * Stores a journal segment under `<sessionId>.<key>`, before the checkpoint that names it: a
   * checkpoint is written only once its segment is stored, so whatever checkpoint is read, its chain is.
   */
  async appendSegment(sessionId: string, key: string, segment: JournalSegment): Promise<void> {
    await this.#kv.put(`${sessionId}.${key}`, JSON.stringify(segment));
  }

  /** Writes the first checkpoint of a new session; throws CheckpointConflictError if another owner has the id. */
  async create(checkpoint: Checkpoint): Promise<number> {
    try {
      return await this.#kv.create(checkpoint.sessionId, JSON.stringify(checkpoint));
    } catch (error) {
      if (isWrongLastSequence(error)) return await this.#overOwnWrite(checkpoint, error);
      throw error;
    }
  }

  /** Writes a checkpoint over `revision`; throws CheckpointConflictError when another owner wrote since. */
  async update(checkpoint: Checkpoint, revision: number): Promise<number> {
    try {
      return await this.#kv.update(checkpoint.sessionId, JSON.stringify(checkpoint), revision);
    } catch (error) {
      if (isWrongLastSequence(error)) return await this.#overOwnWrite(checkpoint, error);
      throw error;
    }
  }

  /**
   * A compare-and-set lost, perhaps to this owner's own earlier write: one whose answer never came
   * (a timeout while JetStream elected a leader) though it was stored, leaving the revision held
   * behind. Only this owner writes checkpoints naming it, so such an entry is its own: write over it.
   * Taken for another owner's, the session would stop here with nobody else to resume it.
   */
  async #overOwnWrite(checkpoint: Checkpoint, conflict: unknown): Promise<number> {
    const entry = await this.#kv.get(checkpoint.sessionId);
    const stored = entry?.operation === 'PUT' ? decodeWireMessage(OwnedRecord, entry.value, 'The checkpoint') : undefined;
    if (!entry || !stored?.ok || stored.value.owner !== checkpoint.owner) throw new CheckpointConflictError(checkpoint.sessionId, conflict);
    try {
      return await this.#kv.update(checkpoint.sessionId, JSON.stringify(checkpoint), entry.revision);
    } catch (error) {
      if (isWrongLastSequence(error)) throw new CheckpointConflictError(checkpoint.sessionId, error);
      throw error;
    }
  }

  /**
   * Every stored checkpoint, newest first, without its journal (a listed checkpoint's conversation and
   * ledger are empty when it has one: `read` a session for those); unreadable ones are reported with
   * their error instead.
   */
  async list(): Promise<Array<StoredCheckpointChange>> {
    const found: StoredCheckpointChange[] = [];
    // One token: the sessions' checkpoints, not their journal segments (`<sessionId>.<key>`).
    for (const entry of await latestEntries(this.#kv, '*')) {
      const sessionId = entry.key;
      try {
        found.push({ sessionId, revision: entry.revision, checkpoint: checkpointOfEntry(sessionId, entry) });
      } catch (error) {
        found.push({ sessionId, revision: entry.revision, error: error instanceof Error ? error.message : String(error) });
      }
    }
    return found.sort((a, b) => (b.checkpoint?.updatedAt ?? '').localeCompare(a.checkpoint?.updatedAt ?? ''));
  }

  /**
   * Calls `onChange` with each checkpoint stored or removed from now on (journal segments aside), or
   * only `sessionId`'s: its id and revision with its checkpoint (without its journal), its read
   * error, or neither when it was deleted. Until `stop()`; the watch follows NATS reconnects on its
   * own, and `onEnd` hears if it ends any other way (its reader should start again).
   */
  async watch(
    onChange: (change: StoredCheckpointChange) => void,
    options: { sessionId?: string; onEnd?: (error?: unknown) => void } = {},
  ): Promise<{ stop(): void }> {
    const watcher = await this.#kv.watch({ key: options.sessionId ?? '*', include: KvWatchInclude.UpdatesOnly });
    let stopped = false;
    void (async () => {
      try {
        for await (const entry of watcher) {
          if (entry.operation !== 'PUT') {
            onChange({ sessionId: entry.key, revision: entry.revision });
            continue;
          }
          try {
            onChange({ sessionId: entry.key, revision: entry.revision, checkpoint: checkpointOfEntry(entry.key, entry) });
          } catch (error) {
            onChange({ sessionId: entry.key, revision: entry.revision, error: error instanceof Error ? error.message : String(error) });
          }
        }
        if (!stopped) options.onEnd?.();
      } catch (error) {
        if (!stopped) options.onEnd?.(error);
      }
    })();
    return {
      stop: () => {
        stopped = true;
        watcher.stop();
      },
    };
  }

  /** Writes raw data under a session id: for tests and tools that need to plant a checkpoint. */
  async putRaw(sessionId: string, data: string): Promise<number> {
    return await this.#kv.put(sessionId, data);
  }
}
