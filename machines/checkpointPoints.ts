import type { SnapshotFrom } from 'xstate';
import type { SessionMachine } from './session.ts';

/**
 * The states of one step's model-call cycle, between two batches of tool calls. A session is not
 * checkpointed on entering them: a crash there resumes from the last batch, which re-sends its calls
 * (a side-effecting one replays its recorded outcome) and calls the model again, as a crash during a
 * model call always did. So a step costs one checkpoint write (its tool calls, with the model answer
 * that asked for them) instead of one per transition, each carrying the whole conversation.
 */
const modelCycleStates = ['preparing', 'calling_model', 'validating', 'observing', 'repairing', 'switching_model'] as const;

/**
 * Whether a session's state is worth a checkpoint of its own: every state but the model-call cycle's,
 * so tool calls about to run, a session waiting for a person, a rollback and an end are always stored.
 * A write-ahead wait stores whatever state the session is in, point or not.
 */
export function isCheckpointPoint(snapshot: SnapshotFrom<SessionMachine>): boolean {
  if (snapshot.status !== 'active') return true;
  return !modelCycleStates.some((state) => snapshot.matches(state));
}
