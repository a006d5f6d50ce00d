import type { NatsConnection } from '@nats-io/transport-node';
import { ToolError, ToolFailureCode } from '../../tools/toolFailure.ts';
import { decodeSessionEvents, type SessionFinished } from '../../transport/messages.ts';
import type { WireNames } from '../../transport/subjects.ts';
import type { CheckpointStore } from '../durability/checkpointStore.ts';
import { finishedFromCheckpoint } from '../session/storedEnd.ts';

// The end event travels on core NATS and can be lost with a server; the checkpoint is looked at this often too.
const checkpointPollMs = 1_000;

/**
 * Waits for a session another member hosts to end: its `session.finished` event, or its checkpoint
 * once it says ended (whichever is seen first). Rejects with TIMEOUT when `signal` aborts.
 */
export function finishedElsewhere(nc: NatsConnection, names: WireNames, checkpoints: CheckpointStore, sessionId: string, signal: AbortSignal): Promise<SessionFinished> {
  return new Promise<SessionFinished>((resolve, reject) => {
    let poll: NodeJS.Timeout | undefined;
    let settled = false;
    const done = (settle: () => void) => {
      if (settled) return;
      settled = true;
      subscription.unsubscribe();
      clearTimeout(poll);
      signal.removeEventListener('abort', onAbort);
      settle();
    };
    const onAbort = () => done(() => reject(new ToolError(ToolFailureCode.TIMEOUT, 'The delegation\'s session did not end before the delegating call stopped waiting.')));
    // Subscribed before the checkpoint is read: an end between the two is seen by one or the other.
    const subscription = nc.subscribe(names.subjects.sessionEvents(sessionId), {
      callback: (error, msg) => {
        if (error) return;
        const finished = decodeSessionEvents(msg.data, 'A specialist session event').events.find((event) => event.type === 'session.finished');
        if (finished) done(() => resolve(finished));
      },
    });
    signal.addEventListener('abort', onAbort, { once: true });
    const look = async () => {
      try {
        // Its end, not its conversation: the journal is left unread.
        const stored = await checkpoints.read(sessionId, { journal: false });
        if (stored?.checkpoint.status === 'ended') {
          const finished = finishedFromCheckpoint(stored.checkpoint);
          done(() => resolve(finished));
          return;
        }
      } catch {
        // Unreadable for now: the event, or a later look, decides.
      }
      if (!settled) poll = setTimeout(() => void look(), checkpointPollMs);
    };
    void look();
  });
}
