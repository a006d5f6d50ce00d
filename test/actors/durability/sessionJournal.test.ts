import { describe, expect, it } from 'vitest';
import { replayJournal, SessionJournal, type JournalLists, type JournalSegment, type PlannedSegments } from '../../../actors/durability/sessionJournal.ts';

const message = (n: number) => ({ role: 'user', content: `message ${n}` });
const entry = (n: number) => ({ turn: n, tool: 'calc_add', status: 'ok' });

/** Plans and stores `lists` the way SessionCheckpoints does: the segment, then the checkpoint naming it. */
function write(journal: SessionJournal, lists: JournalLists, segments: Map<string, unknown>, now = 0): PlannedSegments | undefined {
  const planned = journal.plan(lists, now);
  if (planned) {
    for (const { key, segment } of planned.segments) segments.set(key, structuredClone(segment));
    journal.stored(planned);
  }
  return planned;
}

/** The one segment a small write plans. */
const only = (planned: PlannedSegments | undefined): JournalSegment | undefined => {
  expect(planned?.segments).toHaveLength(1);
  return planned?.segments[0]?.segment;
};

describe('SessionJournal', () => {
  it('writes only what a step appended, however long the session is', () => {
    const journal = new SessionJournal();
    const segments = new Map<string, unknown>();
    let conversation: unknown[] = [message(0)];
    let ledger: unknown[] = [];
    expect(only(write(journal, { conversation, ledger }, segments))?.previous).toBeNull();
    const sizes: number[] = [];
    for (let step = 1; step <= 100; step++) {
      // As XState's assign does: new arrays, the old entries kept as they were.
      conversation = [...conversation, message(2 * step), message(2 * step + 1)];
      ledger = [...ledger, entry(step)];
      const planned = only(write(journal, { conversation, ledger }, segments));
      expect(planned?.conversation).toEqual({ from: conversation.length - 2, entries: conversation.slice(-2) });
      expect(planned?.ledger).toEqual({ from: ledger.length - 1, entries: ledger.slice(-1) });
      sizes.push(JSON.stringify(planned).length);
    }
    expect(Math.max(...sizes)).toBeLessThanOrEqual(Math.min(...sizes) + 20);
    const reference = journal.reference;
    if (!reference) throw new Error('no reference after writes');
    expect(reference.segments).toBe(101);
    expect(replayJournal(reference, segments)).toEqual({ conversation, ledger });
  });

  it('plans nothing when neither list changed, and the checkpoint keeps naming the same head', () => {
    const journal = new SessionJournal();
    const segments = new Map<string, unknown>();
    const lists = { conversation: [message(0)], ledger: [] };
    write(journal, lists, segments);
    const head = journal.reference?.head;
    expect(journal.plan({ conversation: lists.conversation, ledger: lists.ledger }, 0)).toBeUndefined();
    expect(journal.reference?.head).toBe(head);
  });

  it('rewrites from the first changed entry: a rollback marks calls undone and cuts the conversation back', () => {
    const journal = new SessionJournal();
    const segments = new Map<string, unknown>();
    const conversation = [message(0), message(1), message(2), message(3)];
    const ledger = [entry(1), entry(2), entry(3)];
    write(journal, { conversation, ledger }, segments);
    const rolledBack = { conversation: [...conversation.slice(0, 2), message(9)], ledger: [ledger[0], { ...ledger[1], undone: true }, { ...ledger[2], undone: true }] };
    const planned = only(write(journal, rolledBack, segments));
    expect(planned?.conversation).toEqual({ from: 2, entries: [message(9)] });
    expect(planned?.ledger.from).toBe(1);
    expect(replayJournal(journal.reference!, segments)).toEqual(rolledBack);
  });

  it('starts a new chain once the base is a day old, so that no segment a checkpoint needs nears the bucket TTL', () => {
    const journal = new SessionJournal();
    const segments = new Map<string, unknown>();
    const conversation = [message(0)];
    write(journal, { conversation, ledger: [] }, segments, 0);
    const later = write(journal, { conversation: [...conversation, message(1)], ledger: [] }, segments, 60_000);
    expect(only(later)?.previous).not.toBeNull();
    const nextDay = write(journal, { conversation: [...conversation, message(1), message(2)], ledger: [] }, segments, 24 * 60 * 60 * 1000);
    expect(only(nextDay)).toEqual({ previous: null, conversation: { from: 0, entries: [message(0), message(1), message(2)] }, ledger: { from: 0, entries: [] } });
    expect(nextDay?.reference).toMatchObject({ segments: 1, baseWrittenAt: 24 * 60 * 60 * 1000 });
  });

  it('continues the chain of the checkpoint a resumed session came from', () => {
    const first = new SessionJournal();
    const segments = new Map<string, unknown>();
    const conversation = [message(0), message(1)];
    write(first, { conversation, ledger: [] }, segments);
    const resumed = new SessionJournal({ reference: first.reference!, lists: { conversation, ledger: [] } });
    const planned = only(write(resumed, { conversation: [...conversation, message(2)], ledger: [] }, segments));
    expect(planned).toMatchObject({ previous: first.reference?.head, conversation: { from: 2, entries: [message(2)] } });
    expect(replayJournal(resumed.reference!, segments).conversation).toEqual([...conversation, message(2)]);
  });
  it('cuts a large write into segments that each fit well within a NATS message', () => {
    const journal = new SessionJournal();
    const segments = new Map<string, unknown>();
    // 600 messages of 1 KB and 300 ledger entries: about 0.9 MB, one segment too many for a 1 MB message once encoded.
    const conversation = Array.from({ length: 600 }, (_, i) => ({ role: 'tool', toolCallId: `t${i}`, content: 'x'.repeat(1_000) }));
    const ledger = Array.from({ length: 300 }, (_, i) => ({ ...entry(i + 1), arguments: { text: 'y'.repeat(1_000) } }));
    const planned = write(journal, { conversation, ledger }, segments);
    expect(planned?.segments.length).toBeGreaterThanOrEqual(4);
    for (const { segment } of planned?.segments ?? []) expect(JSON.stringify(segment).length).toBeLessThan(300 * 1024);
    expect(planned?.reference.segments).toBe(planned?.segments.length);
    expect(replayJournal(planned!.reference, segments)).toEqual({ conversation, ledger });
  });
});

describe('replayJournal', () => {
  it('ignores segments of a chain the checkpoint does not name: a host that lost the session wrote them', () => {
    const journal = new SessionJournal();
    const segments = new Map<string, unknown>();
    write(journal, { conversation: [message(0)], ledger: [] }, segments);
    const reference = journal.reference!;
    segments.set('orphan', { previous: reference.head, conversation: { from: 1, entries: [message(666)] }, ledger: { from: 0, entries: [] } });
    expect(replayJournal(reference, segments).conversation).toEqual([message(0)]);
  });

  it('refuses a chain with a missing segment, a foreign segment or the wrong length, naming what is wrong', () => {
    const journal = new SessionJournal();
    const segments = new Map<string, unknown>();
    write(journal, { conversation: [message(0)], ledger: [] }, segments);
    write(journal, { conversation: [message(0), message(1)], ledger: [] }, segments);
    const reference = journal.reference!;
    const previous = (segments.get(reference.head) as { previous: string }).previous;
    expect(() => replayJournal(reference, new Map([[reference.head, segments.get(reference.head)]]))).toThrow(`its journal segment ${previous} is missing`);
    expect(() => replayJournal(reference, new Map([...segments, [previous, { hello: 'world' }]]))).toThrow(`its journal segment ${previous} is not one Troupe wrote`);
    expect(() => replayJournal({ ...reference, conversationLength: 5 }, segments)).toThrow(/holds 2 messages and 0 ledger entries, not the 5 and 0/);
    expect(() => replayJournal({ ...reference, segments: 1 }, segments)).toThrow(/longer than the 1 segments/);
  });
});
