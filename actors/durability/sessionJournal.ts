import { nuid } from '@nats-io/transport-node';
import * as z from 'zod';

/**
 * Where a checkpoint's conversation and ledger are kept: a chain of journal segments beside it,
 * `head` the latest. The checkpoint itself carries them empty, so a step writes only what it added.
 */
export const JournalReference = z.object({
  /** The key (after `<sessionId>.`) of the latest segment of the chain. */
  head: z.string().regex(/^[A-Za-z0-9]{1,64}$/),
  conversationLength: z.number().int().nonnegative(),
  ledgerLength: z.number().int().nonnegative(),
  /** Segments in the chain, base included. */
  segments: z.number().int().positive(),
  /** Epoch milliseconds when the chain's base was written: the chain is started again before the bucket's TTL can take it. */
  baseWrittenAt: z.number(),
});
export type JournalReference = z.infer<typeof JournalReference>;

/**
 * What one write added to the session's conversation and ledger, on top of the segment `previous`
 * names: each list is cut back to `from` entries, then `entries` are appended. A base (no
 * `previous`) starts both from nothing. Entries are the session context's own, as XState persisted them.
 */
export const JournalSegment = z.object({
  previous: z.string().nullable(),
  conversation: z.object({ from: z.number().int().nonnegative(), entries: z.array(z.unknown()) }),
  ledger: z.object({ from: z.number().int().nonnegative(), entries: z.array(z.unknown()) }),
});
export type JournalSegment = z.infer<typeof JournalSegment>;

/** A session's conversation and ledger as they were at some checkpoint. */
export interface JournalLists {
  conversation: readonly unknown[];
  ledger: readonly unknown[];
}

// A chain is started again this often, so that its oldest segment is never older than a day and
// never near the bucket's seven-day TTL, and so that a resume reads at most this many segments.
const maxChainAgeMs = 24 * 60 * 60 * 1000;
const maxChainSegments = 512;

/** The segments to write before the checkpoint that names the last of them, and the reference that checkpoint carries. */
export interface PlannedSegments {
  segments: Array<{ key: string; segment: JournalSegment }>;
  reference: JournalReference;
  lists: JournalLists;
}

// A segment carries at most about this many bytes of entries (more only for a single larger entry),
// so that a chain started again for a long session is several NATS messages, never one too large.
const segmentBytes = 256 * 1024;

/**
 * The writer's side of one session's journal: which segments a checkpoint needs, given what the last
 * stored checkpoint holds. Entries are compared by identity: XState's `assign` keeps the entries a
 * step did not touch, so a step's segment is what it appended (or changed, as a rollback marking
 * calls undone does), whatever the session's length.
 */
export class SessionJournal {
  #stored: { reference: JournalReference; lists: JournalLists } | undefined;

  /** `stored`: the reference and lists of the checkpoint this host resumed from, when it had a journal. */
  constructor(stored?: { reference: JournalReference; lists: JournalLists }) {
    this.#stored = stored;
  }

  /**
   * The segments that take the stored journal to `lists`, or undefined when nothing changed (the
   * checkpoint then names the same head). `now` is epoch milliseconds.
   */
  plan(lists: JournalLists, now: number): PlannedSegments | undefined {
    const stored = this.#stored;
    const chainTooOld = stored !== undefined && (now - stored.reference.baseWrittenAt >= maxChainAgeMs || stored.reference.segments >= maxChainSegments);
    const extending = stored !== undefined && !chainTooOld;
    const conversationFrom = extending ? firstChange(stored.lists.conversation, lists.conversation) : 0;
    const ledgerFrom = extending ? firstChange(stored.lists.ledger, lists.ledger) : 0;
    if (extending && conversationFrom === lists.conversation.length && conversationFrom === stored.lists.conversation.length
      && ledgerFrom === lists.ledger.length && ledgerFrom === stored.lists.ledger.length) return undefined;
    const segments: Array<{ key: string; segment: JournalSegment }> = [];
    let previous = extending ? stored.reference.head : null;
    for (const chunk of chunks(lists, conversationFrom, ledgerFrom)) {
      const key = nuid.next();
      segments.push({ key, segment: { previous, ...chunk } });
      previous = key;
    }
    const reference: JournalReference = {
      head: previous as string,
      conversationLength: lists.conversation.length,
      ledgerLength: lists.ledger.length,
      segments: (extending ? stored.reference.segments : 0) + segments.length,
      baseWrittenAt: extending ? stored.reference.baseWrittenAt : now,
    };
    return { segments, reference, lists };
  }

  /** The checkpoint naming `planned` was stored. */
  stored(planned: PlannedSegments): void {
    this.#stored = { reference: planned.reference, lists: planned.lists };
  }

  /** The reference the next checkpoint carries when nothing changed; undefined before the first write. */
  get reference(): JournalReference | undefined {
    return this.#stored?.reference;
  }
}

/** The entries from `conversationFrom` and `ledgerFrom` on, cut into segments of about `segmentBytes`; always at least one. */
function chunks(lists: JournalLists, conversationFrom: number, ledgerFrom: number): Array<Omit<JournalSegment, 'previous'>> {
  const out: Array<Omit<JournalSegment, 'previous'>> = [];
  let current = { conversation: { from: conversationFrom, entries: [] as unknown[] }, ledger: { from: ledgerFrom, entries: [] as unknown[] } };
  let bytes = 0;
  const add = (list: 'conversation' | 'ledger', entry: unknown) => {
    const size = JSON.stringify(entry)?.length ?? 0;
    if (bytes > 0 && bytes + size > segmentBytes) {
      out.push(current);
      const next = (l: 'conversation' | 'ledger') => ({ from: current[l].from + current[l].entries.length, entries: [] as unknown[] });
      current = { conversation: next('conversation'), ledger: next('ledger') };
      bytes = 0;
    }
    current[list].entries.push(entry);
    bytes += size;
  };
  for (let i = conversationFrom; i < lists.conversation.length; i++) add('conversation', lists.conversation[i]);
  for (let i = ledgerFrom; i < lists.ledger.length; i++) add('ledger', lists.ledger[i]);
  out.push(current);
  return out;
}

function firstChange(before: readonly unknown[], after: readonly unknown[]): number {
  const shorter = Math.min(before.length, after.length);
  for (let i = 0; i < shorter; i++) if (before[i] !== after[i]) return i;
  return shorter;
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
 * their key; segments of other chains, left by a host that lost the session, are ignored). Throws
 * JournalBrokenError when a segment is missing or unreadable, or the lengths do not match.
 */
export function replayJournal(reference: JournalReference, segments: ReadonlyMap<string, unknown>): JournalLists {
  const chain: JournalSegment[] = [];
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
  for (const segment of chain.reverse()) {
    if (segment.conversation.from > conversation.length || segment.ledger.from > ledger.length) throw new JournalBrokenError('its journal has a gap');
    conversation.length = segment.conversation.from;
    conversation.push(...segment.conversation.entries);
    ledger.length = segment.ledger.from;
    ledger.push(...segment.ledger.entries);
  }
  if (conversation.length !== reference.conversationLength || ledger.length !== reference.ledgerLength) {
    throw new JournalBrokenError(`its journal holds ${conversation.length} messages and ${ledger.length} ledger entries, not the ${reference.conversationLength} and ${reference.ledgerLength} the checkpoint names`);
  }
  return { conversation, ledger };
}
