import type { Checkpoint } from '../actors/durability/checkpointStore.ts';
import type { ChatMessage } from '../machines/conversation.ts';
import type { LedgerEntry } from '../machines/ledger.ts';
import type { SessionContext } from '../machines/sessionContext.ts';
import { Script, type ScriptStep } from '../scriptedModel/script.ts';
import { EvalCase, type EvalCaseInput } from './evalCase.ts';

/** A finished session that cannot be turned into a case, and why. */
export class SessionRecordingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** What `troupe sessions record` writes: the model's side of the session as a script, and a case that expects what the session did. */
export interface RecordedSession {
  script: Script;
  evalCase: EvalCaseInput;
}

/**
 * Turns a finished session (its checkpoint, read back whole) into a scripted trajectory that plays
 * the model's answers again, turn by turn, and a case whose expectations are the session's own
 * outcome and the tool calls it made (strict, exact arguments). Replayed through `troupe eval`, a
 * session that still does the same passes; a change to tools, prompts or the runtime that makes it
 * call other tools shows as a trajectory diff. The script answers a conversation whose task
 * includes this one's (its `match.userIncludes`); `scriptFile` is where the case says it is.
 *
 * Refused, with the reason: a session that has not ended, one a person took part in (their answers
 * would be missing from the replay), and one that delegated to a specialist (whose own model turns
 * are another session's).
 */
export function recordSession(checkpoint: Checkpoint, options: { caseId: string; scriptFile: string; recordedAt: string }): RecordedSession {
  const context = checkpoint.snapshot.context as SessionContext | undefined;
  if (checkpoint.status !== 'ended' || !context?.outcome) {
    throw new SessionRecordingError(`session ${checkpoint.sessionId} has not ended (it is ${checkpoint.status}): record it once it has`);
  }
  if (context.interventions.length > 0) {
    throw new SessionRecordingError(`a person took part in session ${checkpoint.sessionId} (${context.interventions.map((i) => i.kind).join(', ')}): a replay would not have their part`);
  }
  if (context.delegated.steps > 0) {
    throw new SessionRecordingError(`session ${checkpoint.sessionId} delegated to specialists, whose model turns are sessions of their own: recording those is not supported yet`);
  }
  const turns = context.conversation.filter((m): m is Extract<ChatMessage, { role: 'assistant' }> => m.role === 'assistant');
  if (turns.length === 0) throw new SessionRecordingError(`session ${checkpoint.sessionId} has no model turn to record`);
  const steps: ScriptStep[] = turns.map((turn) => {
    const toolCalls = (turn.toolCalls ?? []).map((call) => ({ id: call.id, name: call.name, arguments: argumentsOf(call.arguments) }));
    return {
      // A turn with neither text nor calls (a refusal, an empty answer) is played as an empty answer.
      ...(turn.content !== null || toolCalls.length === 0 ? { content: turn.content ?? '' } : {}),
      ...(toolCalls.length > 0 ? { toolCalls } : {}),
    };
  });
  const script = Script.parse({
    name: options.caseId,
    description: `Recorded from session ${checkpoint.sessionId} (agent ${checkpoint.agent}) on ${options.recordedAt}.`,
    match: { userIncludes: checkpoint.task },
    steps,
  });
  const made = context.ledger.filter((entry: LedgerEntry) => entry.callId !== null && entry.status !== 'rejected');
  const evalCase: EvalCaseInput = {
    id: options.caseId,
    description: `recorded from session ${checkpoint.sessionId} on ${options.recordedAt}`,
    task: checkpoint.task,
    agent: checkpoint.agent,
    script: options.scriptFile,
    expect: {
      status: context.outcome.status,
      ...(context.outcome.output !== null ? { output: { equals: context.outcome.output } } : {}),
      trajectory: { mode: 'strict', arguments: 'exact', calls: made.map((entry) => ({ tool: entry.tool, arguments: entry.arguments as Record<string, unknown> })) },
    },
  };
  // The case must load as any dataset's would.
  EvalCase.parse(evalCase);
  return { script, evalCase };
}

/** The arguments as the model wrote them: an object when they were one, else the raw text, which the script sends verbatim. */
function argumentsOf(raw: string): Record<string, unknown> | string {
  try {
    const parsed: unknown = JSON.parse(raw);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : raw;
  } catch {
    return raw;
  }
}
