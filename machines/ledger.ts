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
});
export type LedgerEntry = z.infer<typeof LedgerEntry>;
