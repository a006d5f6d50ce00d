import type { Checkpoint } from '../actors/durability/checkpointStore.ts';
import type { ChatMessage } from '../machines/conversation.ts';
import type { LedgerEntry } from '../machines/ledger.ts';
import type { SessionContext } from '../machines/sessionContext.ts';
import { delegateToolName } from '../agents/defineAgent.ts';
import { childSessionId } from '../machines/delegation.ts';
import { Script, type ScriptStep } from '../scriptedModel/script.ts';
import { EvalCase, type EvalCaseInput } from './evalCase.ts';

/** A finished session that cannot be turned into a case, and why. */
export class SessionRecordingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** What `troupe sessions record` writes: the model's side of the session as a script, its specialists' as theirs, and a case that expects what the session did. */
export interface RecordedSession {
  script: Script;
  /** One per specialist session, in the order given, with the file the case names for it. */
  specialistScripts: Array<{ script: Script; file: string }>;
  evalCase: EvalCaseInput;
}

/** A specialist session the recorded one (or one of its specialists) delegated to, and where its script goes. */
export interface RecordedSpecialist {
  checkpoint: Checkpoint;
  scriptFile: string;
}

/**
 * Turns a finished session (its checkpoint, read back whole) into a scripted trajectory that plays
 * the model's answers again, turn by turn, and a case whose expectations are the session's own
 * outcome and the tool calls it made (strict, exact arguments). Replayed through `troupe eval`, a
 * session that still does the same passes; a change to tools, prompts or the runtime that makes it
 * call other tools shows as a trajectory diff. The script answers a conversation whose task
 * includes this one's (its `match.userIncludes`); `scriptFile` is where the case says it is.
 * A session that delegated needs every specialist session below it (`specialists`, see
 * {@link specialistSessionIdsOf}): each becomes a script of its own, chosen by its task.
 *
 * Refused, with the reason: a session (or specialist session) that has not ended, one a person
 * took part in (their answers would be missing from the replay), and one that delegated without
 * its specialists' sessions given.
 */
export function recordSession(
  checkpoint: Checkpoint,
  options: { caseId: string; scriptFile: string; recordedAt: string; specialists?: readonly RecordedSpecialist[] },
): RecordedSession {
  const context = endedContextOf(checkpoint);
  const specialists = options.specialists ?? [];
  const missing = [checkpoint, ...specialists.map((s) => s.checkpoint)]
    .flatMap((session) => specialistSessionIdsOf(session).map((delegated) => delegated.sessionId))
    .filter((id) => !specialists.some((s) => s.checkpoint.sessionId === id));
  if (missing.length > 0 || (context.delegated.steps > 0 && specialists.length === 0)) {
    throw new SessionRecordingError(`session ${checkpoint.sessionId} delegated to specialists whose sessions were not given${missing.length > 0 ? ` (${missing.join(', ')})` : ''}: a replay would have no script for their turns`);
  }
  const script = scriptOf(checkpoint, options.caseId, options.recordedAt);
  const specialistScripts = specialists.map((specialist, index) => ({
    script: scriptOf(specialist.checkpoint, `${options.caseId}-specialist-${index + 1}`, options.recordedAt),
    file: specialist.scriptFile,
  }));
  const made = context.ledger.filter((entry: LedgerEntry) => entry.callId !== null && entry.status !== 'rejected');
  const evalCase: EvalCaseInput = {
    id: options.caseId,
    description: `recorded from session ${checkpoint.sessionId} on ${options.recordedAt}`,
    task: checkpoint.task,
    agent: checkpoint.agent,
    script: options.scriptFile,
    ...(specialistScripts.length > 0 ? { specialistScripts: specialistScripts.map((s) => s.file) } : {}),
    expect: {
      status: context.outcome.status,
      ...(context.outcome.output !== null ? { output: { equals: context.outcome.output } } : {}),
      trajectory: { mode: 'strict', arguments: 'exact', calls: made.map((entry) => ({ tool: entry.tool, arguments: entry.arguments as Record<string, unknown> })) },
    },
  };
  // The case must load as every other dataset's does.
  EvalCase.parse(evalCase);
  return { script, specialistScripts, evalCase };
}

/**
 * The specialist sessions a finished session delegated to, from its ledger: a delegation's session
 * id is made from the delegating session's id and the call's, and it is stored by the pool of the
 * agent its tool names (`delegate_<agent>`).
 */
export function specialistSessionIdsOf(checkpoint: Checkpoint): Array<{ sessionId: string; agent: string }> {
  const context = checkpoint.snapshot.context as SessionContext | undefined;
  const prefix = delegateToolName('');
  return (context?.ledger ?? [])
    .filter((entry) => entry.callId !== null && entry.status !== 'rejected' && entry.tool.startsWith(prefix))
    .map((entry) => ({ sessionId: childSessionId(checkpoint.sessionId, entry.callId as string), agent: entry.tool.slice(prefix.length) }));
}

type EndedContext = SessionContext & { outcome: NonNullable<SessionContext['outcome']> };

function endedContextOf(checkpoint: Checkpoint): EndedContext {
  const context = checkpoint.snapshot.context as SessionContext | undefined;
  if (checkpoint.status !== 'ended' || !context?.outcome) {
    throw new SessionRecordingError(`session ${checkpoint.sessionId} has not ended (it is ${checkpoint.status}): record it once it has`);
  }
  if (context.interventions.length > 0) {
    throw new SessionRecordingError(`a person took part in session ${checkpoint.sessionId} (${context.interventions.map((i) => i.kind).join(', ')}): a replay would not have their part`);
  }
  return context as EndedContext;
}

/** The model's turns of a finished session as a script its task chooses. */
function scriptOf(checkpoint: Checkpoint, name: string, recordedAt: string): Script {
  const context = endedContextOf(checkpoint);
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
  return Script.parse({
    name,
    description: `Recorded from session ${checkpoint.sessionId} (agent ${checkpoint.agent}) on ${recordedAt}.`,
    match: { userIncludes: checkpoint.task },
    steps,
  });
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
