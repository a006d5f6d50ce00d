import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { WireNames } from '../../transport/subjects.ts';

/** A command as it was recorded for a session: checked and decoded by whoever applies it. */
export interface RecordedControl {
  /** The command's id (its JetStream message id): applied once, however often it was sent. */
  readonly id: string;
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: MsgHdrs | undefined;
  /** When the stream stored it (epoch ms): a signed command must have been signed around then, not when it is applied. */
  readonly recordedAt: number;
}

// How many applied command ids a session keeps in its checkpoint: enough to outlast any retry of one.
const appliedIdsKept = 200;

/**
 * The commands recorded for one session (approve, deny, answer, cancel, ...), handed to its host in
 * the order they were recorded, each id once. Live commands arrive on a subscription opened at once;
 * `catchUp` reads what was recorded before (while nobody hosted the session) and puts it first, so a
 * resumed session applies what a person decided meanwhile before anything else. Nothing is handed
 * over until `deliverTo` says where.
 */
export class RecordedControlInbox {
  readonly #nc: NatsConnection;
  readonly #names: WireNames;
  readonly #sessionId: string;
  readonly #logger: Logger;
  readonly #subscription: Subscription;
  readonly #applied: string[];
  readonly #seen: Set<string>;
  readonly #appliedBefore: ReadonlySet<string>;
  #waiting: RecordedControl[] = [];
  #handler: ((control: RecordedControl) => void) | undefined;
  #onRepeat: ((control: RecordedControl) => void) | undefined;

  /** `applied`: the ids the session's checkpoint says were applied already. */
  constructor(nc: NatsConnection, names: WireNames, sessionId: string, applied: readonly string[], logger: Logger) {
    this.#nc = nc;
    this.#names = names;
    this.#sessionId = sessionId;
    this.#logger = logger;
    this.#applied = [...applied];
    this.#seen = new Set(applied);
    this.#appliedBefore = new Set(applied);
    this.#subscription = nc.subscribe(names.subjects.sessionControls(sessionId), {
      callback: (error, msg) => {
        if (error) return;
        this.#take({ id: msg.headers?.get('Nats-Msg-Id') ?? '', subject: msg.subject, data: msg.data, headers: msg.headers, recordedAt: Date.now() });
      },
    });
  }

  /** The ids applied so far, the latest last, for the session's checkpoint. */
  get applied(): readonly string[] {
    return this.#applied;
  }

  /** Reads the commands recorded before the inbox opened and puts those not yet applied first, in their order. */
  async catchUp(): Promise<void> {
    const stream = this.#names.streams.sessionControls;
    const subject = this.#names.subjects.sessionControls(this.#sessionId);
    const jsm = await jetstreamManager(this.#nc, { checkAPI: false });
    // Most sessions never got a command: one lookup says so, without a consumer.
    const last = await jsm.streams.getMessage(stream, { last_by_subj: subject }).catch(() => null);
    if (!last) return;
    const earlier: RecordedControl[] = [];
    const consumer = await jetstream(this.#nc).consumers.get(stream, { filter_subjects: subject, deliver_policy: DeliverPolicy.All });
    const messages = await consumer.consume();
    try {
      for await (const m of messages) {
        earlier.push({ id: m.headers?.get('Nats-Msg-Id') ?? '', subject: m.subject, data: m.data, headers: m.headers, recordedAt: m.time.getTime() });
        if (m.info.pending === 0 || m.seq >= last.seq) break;
      }
    } finally {
      await messages.close();
    }
    // Recorded before the live ones were: first, each once, past what the checkpoint says was applied.
    const live = this.#waiting;
    this.#waiting = [];
    const earlierIds = new Set<string>();
    for (const control of earlier) {
      if (control.id === '' || this.#appliedBefore.has(control.id) || earlierIds.has(control.id)) continue;
      earlierIds.add(control.id);
      this.#seen.add(control.id);
      this.#hand(control);
    }
    for (const control of live) if (!earlierIds.has(control.id)) this.#hand(control);
  }

  /**
   * From now on, every command goes to `handler`, starting with those waiting; a command sent again
   * under an id already applied goes to `onRepeat` (its sender still waits to hear what came of it).
   */
  deliverTo(handler: (control: RecordedControl) => void, onRepeat?: (control: RecordedControl) => void): void {
    this.#handler = handler;
    this.#onRepeat = onRepeat;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const control of waiting) this.#hand(control);
  }

  close(): void {
    this.#subscription.unsubscribe();
  }

  #take(control: RecordedControl): void {
    if (control.id === '') {
      // Recorded by something other than a Troupe client: with no id it could be applied twice.
      this.#logger.warn({ subject: control.subject }, 'ignored a recorded command without a message id');
      return;
    }
    if (this.#seen.has(control.id)) {
      if (this.#handler) this.#onRepeat?.(control);
      return;
    }
    this.#seen.add(control.id);
    this.#hand(control);
  }

  #hand(control: RecordedControl): void {
    if (!this.#handler) {
      this.#waiting.push(control);
      return;
    }
    this.#applied.push(control.id);
    if (this.#applied.length > appliedIdsKept) this.#applied.splice(0, this.#applied.length - appliedIdsKept);
    this.#handler(control);
  }
}
