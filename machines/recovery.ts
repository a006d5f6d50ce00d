import * as z from 'zod';
import { LoopThresholds, type LoopEvidence } from './loopDetection.ts';

/** How a session recovers from a model that misbehaves or goes in circles; configured per agent. */
export const RecoverySettings = z.object({
  /** Consecutive turns with malformed output (bad tool calls, empty replies, refusals) before giving up on a model. */
  maxConsecutiveRepairs: z.number().int().min(1).default(3),
  loop: LoopThresholds.default(LoopThresholds.parse({})),
});
export type RecoverySettings = z.infer<typeof RecoverySettings>;
export type RecoverySettingsInput = z.input<typeof RecoverySettings>;

/**
 * Something the session did to recover, recorded in its context so hosts can publish it as an
 * event, a span event and a log line without the statechart doing any IO.
 */
export type RecoveryNotice =
  | { kind: 'repair'; turn: number; reason: string; consecutive: number }
  | { kind: 'model_switched'; turn: number; from: string; to: string; reason: string }
  | { kind: 'loop_detected'; turn: number; action: 'refocus' | 'escalate'; evidence: LoopEvidence; description: string }
  /** A side-effecting call whose worker died mid-call, and nobody can tell whether it took effect: the session goes to a person. */
  | { kind: 'in_doubt'; turn: number; callId: string; tool: string; arguments: Record<string, unknown>; evidence: Record<string, unknown> };
