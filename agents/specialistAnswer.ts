import * as z from 'zod';
import type { DelegatedSpending } from '../machines/delegation.ts';
import { Usage } from '../machines/usage.ts';
import { ToolError, ToolFailureCode, type ToolFailure } from '../tools/toolFailure.ts';
import type { SessionFinished } from '../transport/messages.ts';

/** What the delegating model writes: the task, self-contained, and the facts it needs. */
export const DelegatedTask = z.object({
  task: z.string().trim().min(1, 'the task is empty').describe('What the specialist should do. It sees nothing of your conversation: say everything it needs.'),
  context: z.string().optional().describe('Facts from your conversation the specialist needs (figures, names, constraints).'),
});
export type DelegatedTask = z.infer<typeof DelegatedTask>;

/** What the delegating model gets back when the specialist answers. */
export const SpecialistAnswer = z.object({
  agent: z.string(),
  status: z.literal('completed'),
  answer: z.string(),
  /** The specialist's own session: `troupe sessions show` and its trace tell the details. */
  sessionId: z.string(),
  steps: z.number().int().nonnegative(),
  toolCalls: z.number().int().nonnegative(),
  usage: Usage,
});
export type SpecialistAnswer = z.infer<typeof SpecialistAnswer>;

/** What a specialist's session spent, rolled up into the delegating session once. */
export const spendingOf = (finished: SessionFinished): DelegatedSpending => ({ usage: finished.usage, steps: finished.steps, toolCalls: finished.toolCalls });

/**
 * What a delegation comes to once the specialist's session ended, whichever side learns of it (the
 * pool member answering the call, or the delegating session reading the specialist's last event):
 * its answer, or the structured failure the delegating model reads. `capped` names the budgets the
 * delegating session's share lowered, when known.
 */
export function delegationResult(agent: string, finished: SessionFinished, capped: string[] = []): { ok: true; answer: SpecialistAnswer } | { ok: false; failure: ToolFailure } {
  if (finished.status === 'completed') {
    return {
      ok: true,
      answer: {
        agent, status: 'completed', answer: finished.output ?? '', sessionId: finished.sessionId,
        steps: finished.steps, toolCalls: finished.toolCalls, usage: finished.usage,
      },
    };
  }
  const error = specialistFailure(agent, finished, capped);
  return { ok: false, failure: { code: error.code, message: error.message, retryable: error.retryable, ...(error.details ? { details: error.details } : {}) } };
}

/** The structured failure the delegating model reads when the specialist ends without an answer. */
export function specialistFailure(agent: string, finished: SessionFinished, capped: string[]): ToolError {
  if (finished.status === 'failed' && finished.stopReason === 'not_started') {
    // Nothing of it ran that counts (its first checkpoint was never stored): the same delegation, sent again, starts it.
    return new ToolError(ToolFailureCode.UNAVAILABLE, `The ${agent} pool member that took this delegation stopped before its session started. It can be sent again as it is.`, { retryable: true });
  }
  const why =
    finished.status === 'budget_exhausted'
      ? `it ran out of its ${finished.budget} budget${finished.budget && capped.includes(finished.budget) ? ', capped at what your session had left' : ''}`
      : finished.status === 'escalated'
        ? `it got stuck and would have needed a person (${finished.stopReason})`
        : finished.status === 'cancelled'
          ? `it was cancelled (${finished.stopReason})`
          : `it failed (${finished.error ?? finished.stopReason})`;
  return new ToolError(
    ToolFailureCode.SPECIALIST_FAILED,
    `Specialist ${agent} stopped without an answer: ${why}.${finished.output ? ' Its partial answer is in details.partialAnswer.' : ''} Decide whether to retry with a narrower task, do the work yourself, or report what is missing.`,
    {
      retryable: false,
      details: {
        agent,
        status: finished.status,
        stopReason: finished.stopReason,
        ...(finished.budget ? { budget: finished.budget, cappedByParent: capped.includes(finished.budget) } : {}),
        ...(finished.error ? { error: finished.error } : {}),
        partialAnswer: finished.output,
        sessionId: finished.sessionId,
        steps: finished.steps,
        toolCalls: finished.toolCalls,
      },
    },
  );
}
