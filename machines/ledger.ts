import * as z from 'zod';
import { ToolFailureCode } from '../tools/toolFailure.ts';

/** One completed action of the session and how it ended: what checkpoints, UIs and loop detection read. */
export const LedgerEntry = z.object({
  turn: z.number().int().positive(),
  callId: z.string().nullable(),
  toolCallId: z.string(),
  tool: z.string(),
  arguments: z.unknown(),
  status: z.enum(['ok', 'error', 'rejected']),
  errorCode: z.enum(Object.values(ToolFailureCode) as [ToolFailureCode, ...ToolFailureCode[]]).optional(),
  durationMs: z.number().nonnegative().optional(),
  /** A digest of what the call answered: loop detection compares these to spot turns that learn nothing new. */
  resultDigest: z.string().optional(),
  sideEffects: z.boolean().optional(),
  /** What undoing the call needs (its tool's compensation captured it); present only for undoable calls. */
  compensation: z.unknown().optional(),
  /** Set once a rollback undid the call. */
  undone: z.boolean().optional(),
  /** Who made the call when a person took over (absent for the model's calls). */
  by: z.string().optional(),
});
export type LedgerEntry = z.infer<typeof LedgerEntry>;

/** Something a person (or the approval clock) did to the session: kept beside the ledger of tool calls. */
export const Intervention = z.object({
  turn: z.number().int().nonnegative(),
  kind: z.enum([
    'approved', 'denied', 'approval_expired', 'interrupted', 'redirected', 'continued', 'answered', 'escalated', 'cancelled', 'rolled_back',
    'took_over', 'handed_back',
  ]),
  by: z.string().optional(),
  detail: z.string().optional(),
});
export type Intervention = z.infer<typeof Intervention>;

/** FNV-1a, 32 bits, as hex: a cheap, deterministic fingerprint of a result (not a security hash). */
export function digestOf(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(16).padStart(8, '0');
}
