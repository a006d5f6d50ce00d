import { nuid } from '@nats-io/transport-node';
import * as z from 'zod';

/** Entries appended to a list after it was cut back to `from` entries. */
const ListChange = z.object({ from: z.number().int().nonnegative(), entries: z.array(z.unknown()) });

/**
 * What changed in the session's conversation and ledger: each list is cut back to `from` entries,
 * then `entries` are appended. Entries are the session context's own, as XState persisted them.
 */
const JournalChange = z.object({ conversation: ListChange, ledger: ListChange });
type JournalChange = z.infer<typeof JournalChange>;

/**
 * Where a checkpoint's conversation and ledger are: a chain of journal segments beside it (`head`
 * the latest, none while the session is young), then the checkpoint's own `tail`, what changed
 * since the chain. The tail is moved into a segment once it grows past a few kilobytes, so a step
 * writes its checkpoint and, every few steps, one segment: never the whole conversation.
 */
export const JournalReference = z.object({
  /** The key (after `<sessionId>.`) of the latest segment of the chain; null before the first. */
  head: z.string().regex(/^[A-Za-z0-9]{1,64}$/).nullable(),
  conversationLength: z.number().int().nonnegative(),
  ledgerLength: z.number().int().nonnegative(),
  /** Segments in the chain, base included. */
  segments: z.number().int().nonnegative(),
  /** Epoch milliseconds when the chain was started: it is started again before the bucket's TTL can take a segment. */
  baseWrittenAt: z.number(),
  /** What changed after the chain's head, carried in the checkpoint itself. */
  tail: JournalChange,
});
export type JournalReference = z.infer<typeof JournalReference>;

/** A change on top of the segment `previous` names; a base (no `previous`) starts both lists from nothing. */
export const JournalSegment = JournalChange.extend({ previous: z.string().nullable() });
export type JournalSegment = z.infer<typeof JournalSegment>;

/** A session's conversation and ledger as they were at some checkpoint. */
export interface JournalLists {
  conversation: readonly unknown[];
  ledger: readonly unknown[];
}

/** The segments to store before the checkpoint that carries `reference`, and what the chain holds once they are. */
export interface PlannedJournal {
  segments: Array<{ key: string; segment: JournalSegment }>;
  reference: JournalReference;
  chainLists: JournalLists;
}

// A chain is started again this often, so that its oldest segment is never older than a day and
// never near the bucket's seven-day TTL, and so that a resume reads at most this many segments.
const maxChainAgeMs = 24 * 60 * 60 * 1000;
const maxChainSegments = 512;
// A tail past this many bytes of entries goes into a segment: a checkpoint stays small, and a step
// writes one segment every few steps (a large tool result at once) rather than one every step.
const tailBytes = 4 * 1024;
// A segment carries at most about this many bytes of entries (more only for a single larger entry),
// so that a chain started again for a long session is several NATS messages, never one too large.
const segmentBytes = 256 * 1024;

// The JSON size of an entry, measured once: entries are immutable once in the context.
const entrySizes = new WeakMap<object, number>();
function entryBytes(entry: unknown): number {
  if (typeof entry !== 'object' || entry === null) return Buffer.byteLength(JSON.stringify(entry) ?? '');
  let size = entrySizes.get(entry);
  if (size === undefined) {
    // Bytes, not characters: a segment of text in other scripts must still fit a NATS message.
    size = Buffer.byteLength(JSON.stringify(entry) ?? '');
    entrySizes.set(entry, size);
  }
  return size;
}

/**
 * The writer's side of one session's journal: what the next checkpoint carries and which segments
 * must be stored before it, given what the chain already holds. Entries are compared by identity:
 * XState's `assign` keeps the entries a step did not touch, so a step's change is what it appended
 * (or changed, as a rollback marking calls undone does), whatever the session's length.
 */
export class SessionJournal {
  // The reference of the last stored checkpoint, and the lists its chain holds (without its tail).
  #chain: { reference: JournalReference; lists: JournalLists } | undefined;

  /** `stored`: the reference and lists of the checkpoint this host resumed from, when it had a journal. */
  constructor(stored?: { reference: JournalReference; lists: JournalLists }) {
    if (!stored) return;
    // The chain holds at least the lists cut back to where the tail starts: a change computed against
    // that prefix replays correctly over the whole chain, since replaying cuts back before appending.
    const { tail } = stored.reference;
    this.#chain = {
      reference: stored.reference,
      lists: { conversation: stored.lists.conversation.slice(0, tail.conversation.from), ledger: stored.lists.ledger.slice(0, tail.ledger.from) },
    };
  }

  /** What the next checkpoint carries for `lists`, and the segments to store before it. `now` is epoch milliseconds. */
  plan(lists: JournalLists, now: number): PlannedJournal {
    const chain = this.#chain;
    const extending = chain !== undefined && now - chain.reference.baseWrittenAt < maxChainAgeMs && chain.reference.segments < maxChainSegments;
    const chainLists: JournalLists = extending ? chain.lists : { conversation: [], ledger: [] };
    const change: JournalChange = { conversation: changeOf(chainLists.conversation, lists.conversation), ledger: changeOf(chainLists.ledger, lists.ledger) };
    const lengths = { conversationLength: lists.conversation.length, ledgerLength: lists.ledger.length };
    const started = { head: null, segments: 0, baseWrittenAt: now };
    const bytes = [...change.conversation.entries, ...change.ledger.entries].reduce<number>((sum, entry) => sum + entryBytes(entry), 0);
    if (bytes <= tailBytes) {
      return { segments: [], chainLists, reference: { ...(extending ? chain.reference : started), ...lengths, tail: change } };
    }
    const segments: Array<{ key: string; segment: JournalSegment }> = [];
    let previous = extending ? chain.reference.head : null;
    for (const chunk of chunks(change)) {
      const key = nuid.next();
      segments.push({ key, segment: { previous, ...chunk } });
      previous = key;
    }
    const base = extending ? chain.reference : started;
    return {
      segments,
      chainLists: lists,
      reference: {
        head: previous, segments: base.segments + segments.length, baseWrittenAt: base.baseWrittenAt, ...lengths,
        tail: { conversation: { from: lists.conversation.length, entries: [] }, ledger: { from: lists.ledger.length, entries: [] } },
      },
    };
  }

  /** The checkpoint carrying `planned` was stored (its segments before it). */
  stored(planned: PlannedJournal): void {
    this.#chain = { reference: planned.reference, lists: planned.chainLists };
  }

  /**
   * Whether the chain has grown old enough that the next write starts it again (epoch milliseconds
   * `now`): a session that writes nothing for days (parked, waiting for a person) must still be
   * written, or its oldest segments would expire with the bucket's TTL before its checkpoint does.
   */
  due(now: number): boolean {
    return this.#chain !== undefined && this.#chain.reference.segments > 0 && now - this.#chain.reference.baseWrittenAt >= maxChainAgeMs;
  }
}

/** The change from `before` to `after`: cut back to their common prefix (by identity), then the rest of `after`. */
function changeOf(before: readonly unknown[], after: readonly unknown[]): z.infer<typeof ListChange> {
  const shorter = Math.min(before.length, after.length);
  let from = 0;
  while (from < shorter && before[from] === after[from]) from++;
  return { from, entries: after.slice(from) };
}

/** A change cut into segments of about `segmentBytes`; always at least one. */
function chunks(change: JournalChange): JournalChange[] {
  const out: JournalChange[] = [];
  let current: JournalChange = { conversation: { from: change.conversation.from, entries: [] }, ledger: { from: change.ledger.from, entries: [] } };
  let bytes = 0;
  const add = (list: 'conversation' | 'ledger', entry: unknown) => {
    const size = entryBytes(entry);
    if (bytes > 0 && bytes + size > segmentBytes) {
      out.push(current);
      const next = (l: 'conversation' | 'ledger') => ({ from: current[l].from + current[l].entries.length, entries: [] as unknown[] });
      current = { conversation: next('conversation'), ledger: next('ledger') };
      bytes = 0;
    }
    current[list].entries.push(entry);
    bytes += size;
  };
  for (const entry of change.conversation.entries) add('conversation', entry);
  for (const entry of change.ledger.entries) add('ledger', entry);
  out.push(current);
  return out;
}

/** A journal that cannot be followed back to its base; the checkpoint naming it cannot be resumed. */
export class JournalBrokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * Rebuilds the lists a checkpoint's journal reference names, from the session's segments (keyed by
 * their key; segments of other chains, left by a host that lost the session, are ignored) and the
 * reference's tail. Throws JournalBrokenError when a segment is missing or unreadable, or the
 * lengths do not match.
 */
export function replayJournal(reference: JournalReference, segments: ReadonlyMap<string, unknown>): JournalLists {
  const chain: JournalChange[] = [];
  for (let key: string | null = reference.head; key !== null;) {
    if (chain.length >= reference.segments) throw new JournalBrokenError(`its journal is longer than the ${reference.segments} segments the checkpoint names`);
    const raw = segments.get(key);
    if (raw === undefined) throw new JournalBrokenError(`its journal segment ${key} is missing (segments expire with the bucket's TTL, 7 days)`);
    const parsed = JournalSegment.safeParse(raw);
    if (!parsed.success) throw new JournalBrokenError(`its journal segment ${key} is not one Troupe wrote`);
    chain.push(parsed.data);
    key = parsed.data.previous;
  }
  const conversation: unknown[] = [];
  const ledger: unknown[] = [];
  for (const change of [...chain.reverse(), reference.tail]) {
    if (change.conversation.from > conversation.length || change.ledger.from > ledger.length) throw new JournalBrokenError('its journal has a gap');
    conversation.length = change.conversation.from;
    conversation.push(...change.conversation.entries);
    ledger.length = change.ledger.from;
    ledger.push(...change.ledger.entries);
  }
  if (conversation.length !== reference.conversationLength || ledger.length !== reference.ledgerLength) {
    throw new JournalBrokenError(`its journal holds ${conversation.length} messages and ${ledger.length} ledger entries, not the ${reference.conversationLength} and ${reference.ledgerLength} the checkpoint names`);
  }
  return { conversation, ledger };
}
