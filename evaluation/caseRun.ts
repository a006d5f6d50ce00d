import * as z from 'zod';
import { Usage } from '../machines/usage.ts';

/** One tool call a run made, as its ledger recorded it. */
export const RunToolCall = z.object({
  tool: z.string(),
  arguments: z.unknown(),
  /** `rejected`: the model asked and the runtime refused (validation, approval, policy): not a call made. */
  status: z.enum(['ok', 'error', 'rejected']),
  /**
   * How many times the call's handler ran, from the idempotency records (side-effecting calls
   * only; absent for the others, and for one whose record is gone).
   */
  handlerRuns: z.number().int().nonnegative().optional(),
  /** With a workflow: the phases active when the call was made, joined by " › ". */
  phase: z.string().optional(),
});
export type RunToolCall = z.infer<typeof RunToolCall>;

/**
 * What the runner hands the scoring for one run of a case: the session's own outcome and counts,
 * unjudged. The runner fills it whether or not the session got anywhere; `error` says when it did
 * not.
 */
export const CaseRun = z.object({
  caseId: z.string(),
  /** 1 for the first run of the case, up to its `repeat`. */
  attempt: z.number().int().positive(),
  sessionId: z.string(),
  traceId: z.string().nullable(),
  /** The session's final status (one of SessionStatus when it reached one). */
  status: z.string(),
  stopReason: z.string(),
  output: z.string().nullable(),
  /**
   * Why the runner got no result from the session (it did not start, it did not finish in time). A
   * run with an error always fails, even for a case that expects `failed`; a failed session's own
   * error belongs in `stopReason`, part of how it ended.
   */
  error: z.string().optional(),
  /** The files the case expects, as the run left them: their text, or null for a file that is not there. */
  files: z.record(z.string(), z.string().nullable()).optional(),
  /** In the order they were made, the rejected ones included. */
  toolCalls: z.array(RunToolCall),
  /** With a workflow: the phases the session went through, in order, from the one it started in (see `CaseExpectation.phases`). */
  phases: z.array(z.string()).optional(),
  /** Model calls, the specialists' included. */
  steps: z.number().int().nonnegative(),
  /** Tool calls as the session counted them, the specialists' included. */
  toolCallCount: z.number().int().nonnegative(),
  usage: Usage,
  durationMs: z.number().nonnegative(),
});
export type CaseRun = z.infer<typeof CaseRun>;
