import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { sessionResultOf, type SessionContext } from '../../machines/sessionContext.ts';
import type { SessionFinished } from '../../transport/messages.ts';
import { lastStoredSessionEvent } from '../../transport/streams.ts';
import type { WireNames } from '../../transport/subjects.ts';
import type { Checkpoint } from '../durability/checkpointStore.ts';
import { SessionEventPublisher } from './sessionEvents.ts';

/** The `session.finished` a session's last checkpoint stands for: how a delegation that already ended is answered again. */
export function finishedFromCheckpoint(checkpoint: Checkpoint): SessionFinished {
  const result = sessionResultOf((checkpoint.snapshot as { context: SessionContext }).context);
  const { outcome } = result;
  return {
    type: 'session.finished', sessionId: checkpoint.sessionId, seq: checkpoint.nextEventSeq, at: checkpoint.updatedAt,
    status: outcome.status, output: outcome.output, stopReason: outcome.stopReason,
    ...(outcome.status === 'budget_exhausted' ? { budget: outcome.budget } : {}),
    ...(outcome.status === 'failed' ? { error: outcome.error } : {}),
    steps: result.steps, toolCalls: result.toolCalls, usage: result.usage,
    traceId: /^[\da-f]{2}-([\da-f]{32})-/.exec(checkpoint.traceContext.traceparent ?? '')?.[1] ?? '',
    durationMs: 0,
  };
}

/**
 * Makes sure the events stream ends an ended session the way its last checkpoint does. A host killed
 * after storing that checkpoint and before the stream stored its `session.finished` left every
 * watcher waiting for an end that never comes; whoever finds the checkpoint (a resumer) publishes it.
 */
export async function publishStoredEnd(nc: NatsConnection, names: WireNames, checkpoint: Checkpoint, logger: Logger): Promise<void> {
  const stored = await lastStoredSessionEvent(nc, names, checkpoint.sessionId);
  // No stream, or nothing stored: the end is published all the same.
  const last = typeof stored === 'object' ? stored : undefined;
  // An escalated session's `session.finished` parks it; only a final one ends it.
  if (last?.type === 'session.finished' && last.status !== 'escalated') return;
  const { sessionId, seq: _seq, at: _at, ...body } = finishedFromCheckpoint(checkpoint);
  const seq = Math.max(checkpoint.nextEventSeq, (last?.seq ?? -1) + 1);
  logger.warn({ sessionId, seq }, 'the session ended without its end on the events stream; publishing it from its last checkpoint');
  await new SessionEventPublisher(nc, names, checkpoint.sessionId, logger, seq).publishDurably(body).stored;
}
