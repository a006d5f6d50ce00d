import { describe, expect, it } from 'vitest';
import { replayJournal, SessionJournal, type JournalLists, type PlannedJournal } from '../../../actors/durability/sessionJournal.ts';

const message = (n: number) => ({ role: 'user', content: `message ${n}` });
const entry = (n: number) => ({ turn: n, tool: 'calc_add', status: 'ok' });
const big = (n: number, kb: number) => ({ role: 'tool', toolCallId: `t${n}`, content: 'x'.repeat(kb * 1024) });

/** Plans and stores `lists` the way SessionCheckpoints does: the segments, then the checkpoint carrying the reference. */
function write(journal: SessionJournal, lists: JournalLists, segments: Map<string, unknown>, now = 0): PlannedJournal {
  const planned = journal.plan(lists, now);
  for (const { key, segment } of planned.segments) segments.set(key, structuredClone(segment));
  journal.stored(planned);
  return planned;
}

/** What a write sends: its segments and the tail its checkpoint carries. */
const bytesOf = (planned: PlannedJournal) => JSON.stringify(planned.segments).length + JSON.stringify(planned.reference.tail).length;

describe('SessionJournal', () => {
  it('writes about as much a step at 300 steps as at 10, and replays to the whole conversation', () => {
    const journal = new SessionJournal();
    const segments = new Map<string, unknown>();
    let conversation: unknown[] = [message(0)];
    let ledger: unknown[] = [];
    const written: number[] = [];
    let planned: PlannedJournal | undefined;
    for (let step = 1; step <= 300; step++) {
      // As XState's assign does: new arrays, the old entries kept as they were.
      conversation = [...conversation, message(2 * step), { ...message(2 * step + 1), content: 'y'.repeat(200) }];
      ledger = [...ledger, entry(step)];
      planned = write(journal, { conversation, ledger }, segments);
      written.push(bytesOf(planned));
      expect(replayJournal(planned.reference, segments)).toEqual({ conversation, ledger });
    }
    const average = (from: number, to: number) => written.slice(from, to).reduce((a, b) => a + b, 0) / (to - from);
    expect(average(250, 300)).toBeLessThan(average(0, 50) * 1.2);
    // The recent steps ride in the checkpoint; older ones were moved into segments every few steps.
    expect(planned?.reference.segments).toBeGreaterThan(10);
    expect(planned?.reference.segments).toBeLessThan(150);
  });

  it('keeps a small change in the checkpoint\'s tail, and moves a large one into a segment at once', () => {
    const journal = new SessionJournal();
    const segments = new Map<string, unknown>();
    const [m0, m1, b2, m3] = [message(0), message(1), big(2, 10), message(3)];
    const small = write(journal, { conversation: [m0, m1], ledger: [] }, segments);
    expect(small.segments).toEqual([]);
    expect(small.reference).toMatchObject({ head: null, segments: 0, tail: { conversation: { from: 0, entries: [m0, m1] } } });
    const large = write(journal, { conversation: [m0, m1, b2], ledger: [] }, segments);
    expect(large.segments).toHaveLength(1);
    expect(large.segments[0]?.segment).toEqual({ previous: null, conversation: { from: 0, entries: [m0, m1, b2] }, ledger: { from: 0, entries: [] } });
    expect(large.reference).toMatchObject({ head: large.segments[0]?.key, segments: 1, tail: { conversation: { from: 3, entries: [] } } });
    const after = write(journal, { conversation: [m0, m1, b2, m3], ledger: [] }, segments);
    expect(after.segments).toEqual([]);
    expect(after.reference.tail.conversation).toEqual({ from: 3, entries: [message(3)] });
  });

  it('rewrites from the first changed entry: a rollback marks calls undone and cuts the conversation back', () => {
    const journal = new SessionJournal();
    const segments = new Map<string, unknown>();
    const conversation = [message(0), big(1, 5), message(2), message(3)];
    const ledger = [entry(1), entry(2), entry(3)];
    write(journal, { conversation, ledger }, segments);
    const rolledBack = { conversation: [...conversation.slice(0, 2), message(9)], ledger: [ledger[0], { ...ledger[1], undone: true }, { ...ledger[2], undone: true }] };
    const planned = write(journal, rolledBack, segments);
    expect(planned.reference.tail.conversation).toEqual({ from: 2, entries: [message(9)] });
    expect(planned.reference.tail.ledger.from).toBe(1);
    expect(replayJournal(planned.reference, segments)).toEqual(rolledBack);
  });

  it('starts a new chain once the base is a day old, so that no segment a checkpoint needs nears the bucket TTL', () => {
    const journal = new SessionJournal();
    const segments = new Map<string, unknown>();
    const conversation = [big(0, 5)];
    write(journal, { conversation, ledger: [] }, segments, 0);
    const later = write(journal, { conversation: [...conversation, big(1, 5)], ledger: [] }, segments, 60_000);
    expect(later.segments[0]?.segment.previous).not.toBeNull();
    const nextDay = write(journal, { conversation: [...conversation, big(1, 5), message(2)], ledger: [] }, segments, 24 * 60 * 60 * 1000);
    expect(nextDay.segments[0]?.segment).toEqual({ previous: null, conversation: { from: 0, entries: [big(0, 5), big(1, 5), message(2)] }, ledger: { from: 0, entries: [] } });
    expect(nextDay.reference).toMatchObject({ segments: 1, baseWrittenAt: 24 * 60 * 60 * 1000 });
  });

  it('continues the chain of the checkpoint a resumed session came from, its tail included', () => {
    const first = new SessionJournal();
    const segments = new Map<string, unknown>();
    const conversation = [big(0, 5), message(1)];
    write(first, { conversation: [conversation[0]], ledger: [] }, segments);
    const stored = write(first, { conversation, ledger: [] }, segments);
    expect(stored.reference.tail.conversation.entries).toEqual([message(1)]);
    // The resumed host's lists are read back from the store: equal, not the same objects.
    const restored = structuredClone(conversation);
    const resumed = new SessionJournal({ reference: stored.reference, lists: { conversation: restored, ledger: [] } });
    const planned = write(resumed, { conversation: [...restored, message(2)], ledger: [] }, segments);
    expect(planned.reference.head).toBe(stored.reference.head);
    expect(planned.reference.tail.conversation).toEqual({ from: 1, entries: [message(1), message(2)] });
    expect(replayJournal(planned.reference, segments).conversation).toEqual([...conversation, message(2)]);
  });

  it('cuts a large write into segments that each fit well within a NATS message', () => {
    const journal = new SessionJournal();
    const segments = new Map<string, unknown>();
    // 600 messages of 1 KB and 300 ledger entries: about 0.9 MB, too much for one 1 MB message once encoded.
    const conversation = Array.from({ length: 600 }, (_, i) => big(i, 1));
    const ledger = Array.from({ length: 300 }, (_, i) => ({ ...entry(i + 1), arguments: { text: 'y'.repeat(1_000) } }));
    const planned = write(journal, { conversation, ledger }, segments);
    expect(planned.segments.length).toBeGreaterThanOrEqual(4);
    for (const { segment } of planned.segments) expect(JSON.stringify(segment).length).toBeLessThan(300 * 1024);
    expect(planned.reference.segments).toBe(planned.segments.length);
    expect(replayJournal(planned.reference, segments)).toEqual({ conversation, ledger });
  });
});

describe('replayJournal', () => {
  it('ignores segments of a chain the checkpoint does not name: a host that lost the session wrote them', () => {
    const journal = new SessionJournal();
    const segments = new Map<string, unknown>();
    const { reference } = write(journal, { conversation: [big(0, 5)], ledger: [] }, segments);
    segments.set('orphan', { previous: reference.head, conversation: { from: 1, entries: [message(666)] }, ledger: { from: 0, entries: [] } });
    expect(replayJournal(reference, segments).conversation).toEqual([big(0, 5)]);
  });

  it('refuses a chain with a missing segment, a foreign segment or the wrong length, naming what is wrong', () => {
    const journal = new SessionJournal();
    const segments = new Map<string, unknown>();
    write(journal, { conversation: [big(0, 5)], ledger: [] }, segments);
    const { reference } = write(journal, { conversation: [big(0, 5), big(1, 5)], ledger: [] }, segments);
    const head = reference.head as string;
    const previous = (segments.get(head) as { previous: string }).previous;
    expect(() => replayJournal(reference, new Map([[head, segments.get(head)]]))).toThrow(`its journal segment ${previous} is missing`);
    expect(() => replayJournal(reference, new Map([...segments, [previous, { hello: 'world' }]]))).toThrow(`its journal segment ${previous} is not one Troupe wrote`);
    expect(() => replayJournal({ ...reference, conversationLength: 5 }, segments)).toThrow(/holds 2 messages and 0 ledger entries, not the 5 and 0/);
    expect(() => replayJournal({ ...reference, segments: 1 }, segments)).toThrow(/longer than the 1 segments/);
  });
});
