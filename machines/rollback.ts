import * as z from 'zod';
import type { LedgerEntry } from './ledger.ts';

/** What a rollback does with one executed call. */
export const RollbackAction = z.enum([
  /** Its tool has a compensation and the ledger kept what it needs. */
  'undo',
  /** It changed something and its tool has no way to undo it: said so before and after. */
  'cannot_undo',
  /** It changed nothing (a read). */
  'nothing_to_undo',
]);
export type RollbackAction = z.infer<typeof RollbackAction>;

export const RollbackStep = z.object({
  turn: z.number().int(),
  callId: z.string(),
  tool: z.string(),
  action: RollbackAction,
  /** After the rollback: what happened, for `undo` steps. */
  result: z.enum(['undone', 'failed']).optional(),
  message: z.string().optional(),
});
export type RollbackStep = z.infer<typeof RollbackStep>;

export const RollbackReport = z.object({ toTurn: z.number().int().nonnegative(), by: z.string(), steps: z.array(RollbackStep) });
export type RollbackReport = z.infer<typeof RollbackReport>;

/**
 * The plan to roll a session back to the end of `toTurn`: every executed call after it, newest
 * first (undo runs in reverse order), with what can and cannot be undone. Pure: the same plan is
 * shown before a rollback (`--dry-run`) and carried out by it.
 */
export function rollbackPlan(ledger: readonly LedgerEntry[], toTurn: number): RollbackStep[] {
  return ledger
    .filter((entry) => entry.turn > toTurn && entry.status === 'ok' && entry.callId !== null && !entry.undone)
    .reverse()
    .map((entry) => ({
      turn: entry.turn,
      callId: entry.callId as string,
      tool: entry.tool,
      action: !entry.sideEffects ? 'nothing_to_undo' : entry.compensation !== undefined ? 'undo' : 'cannot_undo',
    }));
}

/** The message the model reads after a rollback: what was undone, and what could not be. */
export function describeRollback(report: RollbackReport): string {
  const undone = report.steps.filter((s) => s.result === 'undone').map((s) => `${s.tool} (turn ${s.turn})`);
  const notUndone = report.steps.filter((s) => s.action === 'cannot_undo' || s.result === 'failed').map((s) => `${s.tool} (turn ${s.turn})${s.message ? `: ${s.message}` : ''}`);
  return [
    `${report.by} rolled the session back to the end of turn ${report.toTurn}.`,
    undone.length > 0 ? `Undone: ${undone.join(', ')}.` : 'Nothing needed undoing.',
    notUndone.length > 0 ? `Could not be undone: ${notUndone.join('; ')}.` : '',
    'Take this into account before going on.',
  ].filter(Boolean).join(' ');
}
