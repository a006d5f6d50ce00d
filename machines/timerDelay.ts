import * as z from 'zod';

/**
 * The longest delay a timer can wait: Node (like browsers) keeps timer delays in a signed 32-bit
 * integer, and a longer one (`setTimeout`, `setInterval`, an XState `after`, a NATS request's
 * timeout) fires after 1 ms instead, with only a warning. Every setting that becomes a timer is
 * bounded by this in its schema, so a too-long timeout is a clear error rather than one that
 * fires at once.
 */
export const maxTimerDelayMs = 2_147_483_647;

/** The bound in words, for error messages. */
export const maxTimerDelayText = `${maxTimerDelayMs} ms (about 24.8 days), the longest delay a timer can wait`;

/** A positive whole number of milliseconds that a timer can wait. */
export const TimerDelayMs = z
  .number()
  .int()
  .positive()
  .max(maxTimerDelayMs, `must be at most ${maxTimerDelayText}`);

/**
 * Whether an epoch-milliseconds deadline is near enough, seen from `now`, for a timer to wait for
 * it; a deadline already past is near enough (it is simply over).
 */
export const deadlineWithinTimerRange = (deadline: number, now: number): boolean => deadline - now <= maxTimerDelayMs;
