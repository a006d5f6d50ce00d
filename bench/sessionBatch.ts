import type { NatsConnection } from '@nats-io/transport-node';
import { startSession } from '../client/sessionClient.ts';

/** How a batch of sessions started together ended. */
export interface BatchResult {
  readonly completed: number;
  /** Sessions that ended in any other status, or whose start or feed failed. */
  readonly failed: number;
  /** Per completed session: from the start request to its `session.finished` at the client. */
  readonly latenciesMs: number[];
  /** From the first start to the last session's end. */
  readonly wallMs: number;
  /** The first few failures, for the report. */
  readonly failures: string[];
}

/**
 * Starts `sessions` sessions of `task` at once from the client connection `nc` and waits for every
 * one to finish (closed loop: the batch lasts as long as its slowest session). Never throws for a
 * session: a failed one is counted, and the first few are described.
 */
export async function runSessionBatch(nc: NatsConnection, options: { task: string; sessions: number; namespace?: string }): Promise<BatchResult> {
  const latenciesMs: number[] = [];
  const failures: string[] = [];
  let completed = 0;
  const fail = (why: string) => {
    if (failures.length < 5) failures.push(why);
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: options.sessions }, async () => {
    const t = performance.now();
    try {
      const run = await startSession(nc, { task: options.task, agent: 'bench', ...(options.namespace ? { namespace: options.namespace } : {}) });
      const finished = await run.finished;
      if (finished.status === 'completed') {
        completed += 1;
        latenciesMs.push(performance.now() - t);
      } else fail(`${finished.status}: ${finished.stopReason}${'error' in finished && finished.error ? ` (${finished.error})` : ''}`);
    } catch (error) {
      fail(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
    }
  }));
  return { completed, failed: options.sessions - completed, latenciesMs, wallMs: performance.now() - started, failures };
}
