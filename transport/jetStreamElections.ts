import type { Logger } from 'pino';
import { isRequestTimeout } from './natsConnection.ts';

// A JetStream meta leader election on a cluster that lost a server takes seconds; this outlasts several.
const electionWithinMs = 30_000;

/**
 * Runs `open` (creating or binding the buckets a process keeps its state in) again while JetStream
 * does not answer in time, as it does while a cluster elects a leader, for up to 30 s. A process
 * started at that moment would otherwise run for good without what JetStream gives it (checkpoints,
 * claims), while the cluster is back a few seconds later. Any other failure (JetStream not enabled)
 * is thrown at once.
 */
export async function retryWhileElecting<T>(open: () => Promise<T>, logger: Logger, what: string): Promise<T> {
  const until = Date.now() + electionWithinMs;
  for (let delay = 250; ; delay = Math.min(4_000, delay * 2)) {
    try {
      return await open();
    } catch (error) {
      if (!isRequestTimeout(error) || Date.now() + delay >= until) throw error;
      logger.warn({ err: error, retryInMs: delay }, `JetStream did not answer while opening ${what}; trying again`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
