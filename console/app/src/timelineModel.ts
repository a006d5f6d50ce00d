import { addUsage, isRecord, noUsage, numberOf, textOf, usageOf, type EventRecord, type UsageFigures } from './eventFields.ts';
import type { StreamedEvent } from './sessionFeed.ts';

/** One event on the timeline, with the specialist events it delegated nested under it. */
export interface TimelineEntry {
  key: string;
  /** The event itself; for a specialist's, the relayed (inner) event. */
  event: EventRecord;
  /** Set for a specialist's event: which agent, how deep. */
  specialist: { agent: string; depth: number; callId: string } | null;
  /** The events of the specialist this call delegated to, in order. */
  delegated: TimelineEntry[];
}

/** The events of one turn (or of the start, before the first turn), with what its model calls used. */
export interface TurnGroup {
  key: string;
  turn: number | null;
  entries: TimelineEntry[];
  /** The session's own model calls in the turn. */
  usage: UsageFigures;
  /** Its specialists' model calls in the turn. */
  delegatedUsage: UsageFigures;
  /** Every model call's cost up to the end of this turn, specialists included. */
  cumulativeCostUsd: number;
  /** Its `turn.started` has been seen. */
  started: boolean;
}

/**
 * Groups a session's events by turn, in order: a group starts at each `turn.started` (so a turn
 * repeated after a rollback gets a group of its own), or at the first event of a later turn (some
 * come before the turn's start). A specialist's event (`specialist.event`) is nested under the call that delegated
 * to it, at any depth; one whose call is not on the timeline stays at the top level, never dropped.
 */
export function buildTimeline(events: readonly StreamedEvent[]): TurnGroup[] {
  const groups: TurnGroup[] = [];
  let current: TurnGroup | null = null;
  // "<depth>:<callId>" → the entry of the call that started it, at that depth (0: the session's own).
  const calls = new Map<string, TimelineEntry>();
  const startGroup = (turn: number | null, at: string) => {
    current = { key: `${groups.length}:${turn ?? 'start'}:${at}`, turn, entries: [], usage: noUsage, delegatedUsage: noUsage, cumulativeCostUsd: 0, started: false };
    groups.push(current);
    return current;
  };

  events.forEach(({ event }, index) => {
    const key = `${numberOf(event, 'seq') ?? `i${index}`}`;
    const type = textOf(event, 'type');
    if (type === 'specialist.event' && isRecord(event.event)) {
      const inner = event.event;
      const depth = numberOf(event, 'depth') ?? 1;
      const callId = textOf(event, 'callId') ?? '';
      const entry: TimelineEntry = { key, event: inner, specialist: { agent: textOf(event, 'agent') ?? 'specialist', depth, callId }, delegated: [] };
      const innerCallId = textOf(inner, 'callId');
      if (textOf(inner, 'type') === 'tool.call.started' && innerCallId !== undefined) calls.set(`${depth}:${innerCallId}`, entry);
      const group: TurnGroup = current ?? startGroup(null, key);
      if (textOf(inner, 'type') === 'model.responded') group.delegatedUsage = addUsage(group.delegatedUsage, usageOf(inner) ?? noUsage);
      const parent = calls.get(`${depth - 1}:${callId}`);
      if (parent) parent.delegated.push(entry);
      else group.entries.push(entry);
      return;
    }
    const turn = numberOf(event, 'turn');
    const group: TurnGroup =
      type === 'turn.started'
        ? // The turn's first events may come before its start (`context.assembled` does): they opened its group already.
          current !== null && current.turn === (turn ?? null) && !current.started
          ? current
          : startGroup(turn ?? null, key)
        : current === null || (turn !== undefined && turn > 0 && type !== 'session.interrupted' && (current.turn === null || turn > current.turn))
          ? startGroup(turn !== undefined && turn > 0 ? turn : null, key)
          : current;
    if (type === 'turn.started') group.started = true;
    const entry: TimelineEntry = { key, event, specialist: null, delegated: [] };
    const callId = textOf(event, 'callId');
    if (type === 'tool.call.started' && callId !== undefined) calls.set(`0:${callId}`, entry);
    if (type === 'model.responded') group.usage = addUsage(group.usage, usageOf(event) ?? noUsage);
    group.entries.push(entry);
  });

  let cumulative = 0;
  for (const group of groups) {
    cumulative += group.usage.costUsd + group.delegatedUsage.costUsd;
    group.cumulativeCostUsd = cumulative;
  }
  return groups;
}

/** How many events a group shows, the delegated ones included. */
export function entryCount(entries: readonly TimelineEntry[]): number {
  return entries.reduce((sum, entry) => sum + 1 + entryCount(entry.delegated), 0);
}
