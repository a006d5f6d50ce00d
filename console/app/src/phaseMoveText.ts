import { listOf, textOf, type EventRecord } from './eventFields.ts';

/** How one move between a workflow's phases reads. */
export interface PhaseMoveText {
  /** `propose → execute`; nested phases outermost first (`work › draft → review`). */
  route: string;
  /** What moved it: `refunds_issue succeeded`, `the model's choice`, `approved by ana`, `a ledger guard held`. */
  why: string;
  /** The model's reason for choosing the move, when it gave one. */
  reason: string | null;
}

const phases = (move: EventRecord, key: string) => listOf(move, key).filter((p): p is string => typeof p === 'string').join(' › ') || '?';

/**
 * A move as people read it, from a `workflow.transitioned` event or a move of a session's
 * workflow path (the same fields), read defensively like every event on the page.
 */
export function phaseMoveText(move: EventRecord): PhaseMoveText {
  const detail = textOf(move, 'detail') ?? null;
  const route = `${phases(move, 'from')} → ${phases(move, 'to')}`;
  switch (textOf(move, 'trigger')) {
    case 'tool': return { route, why: `${detail ?? 'a tool call'} succeeded`, reason: null };
    case 'choice': return { route, why: 'the model\'s choice', reason: detail };
    case 'approval': return { route, why: `the model's choice, approved by ${textOf(move, 'by') ?? 'a person'}`, reason: detail };
    case 'guard': return { route, why: detail ? `a ledger guard held: ${detail}` : 'a ledger guard held', reason: null };
    default: return { route, why: textOf(move, 'trigger') ?? 'unknown', reason: detail };
  }
}
