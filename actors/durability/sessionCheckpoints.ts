import type { Logger } from 'pino';
import type { Actor } from 'xstate';
import { isCheckpointPoint } from '../../machines/checkpointPoints.ts';
import type { SessionMachine } from '../../machines/session.ts';
import { wallClockDeadline } from '../../machines/sessionContext.ts';
import { checkpointSchemaVersion, CheckpointConflictError, type Checkpoint, type CheckpointStore } from './checkpointStore.ts';
import type { Lease, SessionLeases } from './sessionLeases.ts';
import { SessionJournal, type JournalReference, type PlannedJournal } from './sessionJournal.ts';

export interface SessionCheckpointsOptions {
  store: CheckpointStore;
  leases: SessionLeases;
  lease: Lease;
  owner: string;
  identity: { sessionId: string; agent: string; task: string; traceContext: Record<string, string> };
  /** The revision of the checkpoint this host resumed from; absent for a new session. */
  revision?: number;
  /** The journal of the checkpoint this host resumed from, when it had one: the next write extends it. */
  journal?: JournalReference;
  nextEventSeq: () => number;
  /** The recorded commands applied so far (see `RecordedControlInbox`). */
  appliedControls: () => readonly string[];
  logger: Logger;
  /** Called once when another owner took the session over: stop hosting it, publish nothing. */
  onLost: () => void;
  /**
   * Whether this process's heartbeat lets it act now (see `Durability.alive`): the lease is then never
   * renewed here, and no state is written (so no side-effecting call sent) while it says no.
   */
  alive?: () => boolean;
  /** Epoch milliseconds now, and how often the journal is looked at (tests move both). */
  clock?: { now: () => number; journalCheckMs: number };
}

// How long the last state of a session that ends or moves keeps being retried.
const lastWordRetryMs = 60_000;
// How often a hosted session's journal is looked at: a parked session writes nothing on its own.
const journalCheckMs = 60 * 60 * 1000;

/**
 * Keeps one session durable while this process hosts it: a checkpoint at each checkpoint point, about
 * once a step (writes coalesce, so a burst of transitions costs one write of the latest state),
 * compare-and-set against its own last revision, and a lease that holds while this process's
 * heartbeat does (or, without one, renewed here). Losing either means another host owns the session
 * now: `onLost` is called and nothing more is written.
 */
export class SessionCheckpoints {
  readonly #o: SessionCheckpointsOptions;
  #actor: Actor<SessionMachine> | undefined;
  #revision: number | undefined;
  #journal = new SessionJournal();
  #dirty = false;
  #writing: Promise<void> | undefined;
  #lost = false;
  // Set when hosting ends here: what the session does after that moment is not its state to keep.
  #frozen = false;
  #heartbeat: NodeJS.Timeout | undefined;
  // Looks, now and then, whether the journal's chain must be started again (see SessionJournal.due).
  #journalCheck: NodeJS.Timeout | undefined;
  // Write-ahead bookkeeping: every scheduled state gets a number; `#stored` is the latest one known durable.
  #scheduled = 0;
  // A transition not worth a write of its own happened since the last scheduled one.
  #unscheduled = false;
  #stored = 0;
  #waiters: { upTo: number; resolve: () => void; reject: (error: Error) => void }[] = [];
  #retryDelayMs = 0;
  #lastWordUntil: number | undefined;
  // Set once the last state was written (or given up on): nothing more is written here.
  #closed = false;

  readonly #now: () => number;

  constructor(options: SessionCheckpointsOptions) {
    this.#now = options.clock?.now ?? Date.now;
    this.#o = options;
    this.#revision = options.revision;
    // With a process heartbeat the lease holds while it beats: nothing is written per session to keep it.
    if (!options.alive) {
      this.#heartbeat = setInterval(() => void this.#renew(), Math.max(250, Math.floor(options.leases.ttlMs / 3)));
      this.#heartbeat.unref();
    }
  }

  /**
   * Starts checkpointing `actor`: one write now (the first, for a new session), then after each
   * transition into a checkpoint point (see `isCheckpointPoint`); other transitions are stored with
   * the next point, or when something waits for them (`durable`, a hand-over, the end).
   */
  watch(actor: Actor<SessionMachine>): void {
    this.#actor = actor;
    this.#journalCheck = setInterval(() => {
      if (this.#journal.due(this.#now())) this.schedule();
    }, this.#o.clock?.journalCheckMs ?? journalCheckMs);
    this.#journalCheck.unref();
    if (this.#o.journal) {
      const { context } = actor.getSnapshot();
      this.#journal = new SessionJournal({ reference: this.#o.journal, lists: { conversation: context.conversation, ledger: context.ledger } });
    }
    actor.subscribe({
      next: (snapshot) => {
        if (isCheckpointPoint(snapshot)) this.schedule();
        else if (!this.#frozen) this.#unscheduled = true;
      },
      error: () => undefined,
    });
    this.schedule();
  }

  schedule(): void {
    if (this.#lost || this.#frozen) return;
    this.#unscheduled = false;
    this.#scheduled++;
    this.#dirty = true;
    this.#startWriting();
  }

  /**
   * Resolves once the state as of now is durably stored (write-ahead: a side-effecting call is sent
   * only after the checkpoint naming it landed). A failed write is retried while anyone waits;
   * rejects when the session was lost to another owner or handed over, since nothing more is written.
   */
  async durable(): Promise<void> {
    // Called from an actor the transition just started: the transition's own observers (which
    // schedule its checkpoint) run right after, in the same tick. One microtask lets them.
    await Promise.resolve();
    if (this.#lost) throw new Error('the session is no longer hosted here');
    if (this.#unscheduled) this.schedule();
    const upTo = this.#scheduled;
    if (this.#stored >= upTo) return;
    if (this.#closed) throw new Error('the session is no longer hosted here, and its last state was not stored');
    await new Promise<void>((resolve, reject) => this.#waiters.push({ upTo, resolve, reject }));
  }

  /** Resolves once the latest state is written (or writing failed and was logged). */
  async flush(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  /** The session reached a final state: a last checkpoint, then the lease is gone for good. */
  async end(): Promise<void> {
    this.#abandonWaiters('the session has ended');
    await this.#writeLastState();
    clearInterval(this.#heartbeat);
    if (!this.#lost) await this.#o.leases.end(this.#o.identity.sessionId);
  }

  /** This process stops hosting the session without ending it: flush, then let any orchestrator take it. */
  async handOver(): Promise<void> {
    // Frozen first: a call refused below must not become part of the state the next host resumes.
    this.#frozen = true;
    this.#abandonWaiters('the session was handed over to another orchestrator');
    await this.#writeLastState();
    clearInterval(this.#heartbeat);
    if (!this.#lost) await this.#o.lease.release();
  }

  /**
   * Writes the latest state, retrying a failed write for up to a minute (a JetStream leader election
   * takes seconds), its host still holding the lease: a final state that never lands would have the
   * session resumed from an earlier one and finished twice.
   */
  async #writeLastState(): Promise<void> {
    this.#lastWordUntil = Date.now() + lastWordRetryMs;
    if (this.#unscheduled && !this.#lost) {
      this.#unscheduled = false;
      this.#scheduled++;
    }
    if (this.#stored < this.#scheduled && !this.#lost) {
      this.#dirty = true;
      this.#startWriting();
    }
    await this.flush();
    clearInterval(this.#journalCheck);
    this.#closed = true;
    this.#abandonWaiters('the session is no longer hosted here, and its last state was not stored');
  }

  async #writeLoop(): Promise<void> {
    while (this.#dirty && !this.#lost && this.#actor) {
      this.#dirty = false;
      const upTo = this.#scheduled;
      const { checkpoint, journal } = this.#checkpointOf(this.#actor);
      try {
        // Fencing: a process that others may take for dead (its heartbeat lapsed) writes nothing until it beats again.
        if (this.#o.alive && !this.#o.alive()) throw new Error('this process\'s heartbeat has lapsed: holding still until it beats again');
        // The segments first: a checkpoint is only ever stored once what it names is.
        await Promise.all(journal.segments.map(({ key, segment }) => this.#o.store.appendSegment(checkpoint.sessionId, key, segment)));
        this.#revision = this.#revision === undefined ? await this.#o.store.create(checkpoint) : await this.#o.store.update(checkpoint, this.#revision);
        this.#journal.stored(journal);
        this.#stored = upTo;
        this.#retryDelayMs = 0;
        this.#settleWaiters();
      } catch (error) {
        if (error instanceof CheckpointConflictError) {
          this.#lose(error.message);
          return;
        }
        this.#o.logger.error({ err: error }, 'could not write the session checkpoint');
        if (error instanceof Error && error.message.includes('max_payload')) {
          // Never fits, however often it is tried: a call waiting for it is refused, never sent unrecorded.
          this.#abandonWaiters(`the session's checkpoint is larger than a NATS message (the server's max_payload), so a side-effecting call cannot be recorded before it is sent`);
          continue;
        }
        // Tried again soon, whatever waits on it: a call to be sent, the last state, or a session that just
        // parked, which makes no transition until a person acts (its checkpoint would stay the older state,
        // and `troupe sessions rollback` found it still running in a loaded CI run).
        if (this.#lastWordUntil === undefined || Date.now() < this.#lastWordUntil) {
          this.#retryDelayMs = Math.min(2_000, Math.max(100, this.#retryDelayMs * 2));
          await new Promise((resolve) => setTimeout(resolve, this.#retryDelayMs));
          this.#dirty = true;
        }
      }
    }
  }

  /**
   * Runs the write loop unless it runs already. A state scheduled after the loop's last look at it
   * but before it was done (another microtask in between) is written by a loop started then: a
   * session that has just parked makes no more transitions, so nothing else would ever write it.
   */
  #startWriting(): void {
    if (this.#writing) return;
    this.#writing = this.#writeLoop().finally(() => {
      this.#writing = undefined;
      if (this.#dirty && !this.#lost && this.#actor) this.#startWriting();
    });
  }

  #settleWaiters(): void {
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiting) {
      if (waiter.upTo <= this.#stored) waiter.resolve();
      else this.#waiters.push(waiter);
    }
  }

  #abandonWaiters(reason: string): void {
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiting) waiter.reject(new Error(reason));
  }

  async #renew(): Promise<void> {
    if (this.#lost) return;
    try {
      if (!(await this.#o.lease.renew())) this.#lose('its lease was taken by another orchestrator');
    } catch (error) {
      this.#o.logger.warn({ err: error }, 'could not renew the session lease; will retry');
    }
  }

  /** Another process owns the session now (this one was taken for dead): nothing more is written. */
  relinquish(reason: string): void {
    this.#lose(reason);
  }

  #lose(reason: string): void {
    if (this.#lost) return;
    this.#lost = true;
    clearInterval(this.#heartbeat);
    clearInterval(this.#journalCheck);
    this.#abandonWaiters(`the session is no longer hosted here: ${reason}`);
    this.#o.logger.error({ reason }, 'lost ownership of the session; stopping it here');
    this.#o.onLost();
  }

  /**
   * The checkpoint of the actor's state as of now, its conversation and ledger left to the journal,
   * the recent ones in its tail and any journal segments it needs stored first.
   */
  #checkpointOf(actor: Actor<SessionMachine>): { checkpoint: Checkpoint; journal: PlannedJournal } {
    const snapshot = actor.getSnapshot();
    const { context } = snapshot;
    const journal = this.#journal.plan({ conversation: context.conversation, ledger: context.ledger }, this.#now());
    const persisted = actor.getPersistedSnapshot() as unknown as Record<string, unknown> & { context: Record<string, unknown> };
    const inFlight = snapshot.matches('running_tools')
      ? context.accepted.filter((c) => context.outcomes[c.callId] === undefined).map((c) => ({ callId: c.callId, tool: c.name }))
      : [];
    const checkpoint: Checkpoint = {
      schemaVersion: checkpointSchemaVersion,
      ...this.#o.identity,
      // Parked: waiting for a person (an answer, an approval, a redirect), not for a model or a tool.
      status: snapshot.status !== 'active' ? 'ended'
        : snapshot.matches('escalated') || snapshot.matches('awaiting_approval') || snapshot.matches('awaiting_phase_approval') || snapshot.matches('interrupted') || snapshot.matches('manual') ? 'parked' : 'running',
      snapshot: { ...persisted, context: { ...persisted.context, conversation: [], ledger: [] } },
      nextEventSeq: this.#o.nextEventSeq(),
      wallClockDeadline: wallClockDeadline(context),
      inFlightToolCalls: inFlight,
      owner: this.#o.owner,
      updatedAt: new Date().toISOString(),
      appliedControls: [...this.#o.appliedControls()],
      journal: journal.reference,
    };
    return { checkpoint, journal };
  }
}
