import * as z from 'zod';

/** How a tool call is retried after a retryable failure. */
export const RetryPolicy = z.object({
  /** Attempts in all, the first included; 1 means never retry. */
  maxAttempts: z.number().int().min(1).max(10).default(3),
  initialDelayMs: z.number().int().nonnegative().default(200),
  maxDelayMs: z.number().int().nonnegative().default(5_000),
  multiplier: z.number().min(1).default(2),
});
export type RetryPolicy = z.infer<typeof RetryPolicy>;
export type RetryPolicyInput = z.input<typeof RetryPolicy>;

/** The exponential delay before attempt `failedAttempts + 1`, without jitter. */
export function backoffDelayMs(policy: RetryPolicy, failedAttempts: number): number {
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.multiplier ** Math.max(0, failedAttempts - 1));
}

/**
 * "Equal jitter": half the delay fixed, half random, so retries from many sessions spread out
 * without any of them retrying at once. `random` is in [0, 1).
 */
export function withJitter(delayMs: number, random: number): number {
  return Math.round(delayMs / 2 + (delayMs / 2) * random);
}
