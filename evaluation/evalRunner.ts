import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import type { StateValue } from 'xstate';
import { approveSession, denySession, startSession } from '../client/sessionClient.ts';
import { CheckpointStore } from '../actors/durability/checkpointStore.ts';
import { IdempotencyStore } from '../actors/durability/idempotencyStore.ts';
import type { SessionContext } from '../machines/sessionContext.ts';
import { nextPhaseToolName } from '../machines/phaseScreening.ts';
import { activePhasesOf } from '../machines/workflowMachine.ts';
import type { SessionPhase } from '../machines/workflowSteps.ts';
import type { SessionEvent } from '../transport/messages.ts';
import { wireNames } from '../transport/subjects.ts';
import type { CaseRun, RunToolCall } from './caseRun.ts';
import type { LoadedCase } from './datasetLoader.ts';

/** Where a run of the eval stands, for a progress display. */
export type EvalProgress =
  | { kind: 'started'; caseId: string; attempt: number; sessionId: string }
  | { kind: 'finished'; caseId: string; attempt: number; run: CaseRun };

export interface EvalRunOptions {
  /** A client connection to the deployment the cases run on. */
  nats: NatsConnection;
  namespace: string;
  cases: readonly LoadedCase[];
  /** Sessions in flight at once. */
  concurrency: number;
  /** Runs of every case, over the cases' own `repeat`. */
  repeat?: number;
  /** How long one session may take before it is cancelled and counted as failed. */
  sessionTimeoutMs: number;
  /** The files pool's workspace: the cases' `setup.files` are written there, and the files they expect read from it. */
  workspace?: string;
  /** Something done to every session once its `step`-th model response arrived (a NATS restart): a run where it fails has an `error`. */
  atStep?: { step: number; inject: () => Promise<void> };
  onProgress?: (progress: EvalProgress) => void;
}

/**
 * Runs every case (each `repeat` times) as a real session on the deployment `nats` reaches,
 * `concurrency` at a time, and reads what each did: how it ended from its events, the tool calls it
 * made from its ledger (in its checkpoint) once it ended. Never throws for a case: a session that
 * could not start, or did not finish in time, is a run with an `error`.
 */
export async function runEvalCases(options: EvalRunOptions): Promise<Map<string, CaseRun[]>> {
  const queue = options.cases.flatMap((evalCase) =>
    Array.from({ length: options.repeat ?? evalCase.repeat ?? 1 }, (_, i) => ({ evalCase, attempt: i + 1 })));
  const runs = new Map<string, CaseRun[]>(options.cases.map((c) => [c.id, []]));
  const stores: RunStores = {
    outcomes: await IdempotencyStore.open(options.nats, wireNames(options.namespace)),
    checkpoints: await CheckpointStore.openForReading(options.nats, wireNames(options.namespace)).catch(() => undefined),
  };
  let next = 0;
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, queue.length)) }, async () => {
    for (let item = queue[next++]; item; item = queue[next++]) {
      const run = await runOnce(options, stores, item.evalCase, item.attempt);
      runs.get(item.evalCase.id)?.push(run);
      options.onProgress?.({ kind: 'finished', caseId: item.evalCase.id, attempt: item.attempt, run });
    }
  }));
  for (const list of runs.values()) list.sort((a, b) => a.attempt - b.attempt);
  return runs;
}

// How long the runner waits for an ended session's last checkpoint before it takes the events' word.
const endedCheckpointWaitMs = 10_000;

/** A call as the runner gathers it: with its call id, to look its idempotency record up. */
type MadeCall = RunToolCall & { callId: string | null };

/** Where a run's records are read once its session ended: its checkpoint, and its calls' idempotency records. */
interface RunStores {
  outcomes: IdempotencyStore;
  /** Undefined without JetStream (or before any orchestrator made the bucket): the events are all there is. */
  checkpoints: CheckpointStore | undefined;
}

/**
 * The calls a session made, from its ledger: the record the session keeps itself, in the order the
 * model asked, which no lost message can change (an event published as NATS restarts may never
 * arrive); with a workflow, each in the phase it was made in, and the phases the session went
 * through. Undefined when the checkpoint cannot be read.
 */
async function ledgerCallsOf(checkpoints: CheckpointStore | undefined, sessionId: string): Promise<{ calls: MadeCall[]; phases?: string[] } | undefined> {
  if (!checkpoints) return undefined;
  // The session's end is published before its last checkpoint is stored: an earlier one lacks the
  // last turns' calls, so only the checkpoint of the ended session is read.
  const deadline = Date.now() + endedCheckpointWaitMs;
  let stored = await checkpoints.read(sessionId).catch(() => undefined);
  while (stored?.checkpoint.status !== 'ended' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    stored = await checkpoints.read(sessionId).catch(() => undefined);
  }
  const context = stored?.checkpoint.status === 'ended' ? (stored.checkpoint.snapshot.context as SessionContext | undefined) : undefined;
  if (!context?.ledger) return undefined;
  const phase = context.phase ?? null;
  const calls = context.ledger
    // The model's choices of a phase's exit are the session's own answers, not calls of a tool: the phases say where it went.
    .filter((entry) => !(phase && entry.tool === nextPhaseToolName && entry.callId === null))
    .map((entry): MadeCall => ({
      callId: entry.callId,
      tool: entry.tool,
      // Refused before dispatch: what the model wrote was no call's arguments.
      arguments: entry.status === 'rejected' ? null : entry.arguments,
      status: entry.status,
      ...(phase ? { phase: phaseAtTurn(phase, entry.turn) } : {}),
    }));
  return { calls, ...(phase ? { phases: phasesTaken(phase) } : {}) };
}

const phaseText = (phases: readonly string[]) => phases.join(' › ');

/** The phases a session went through, from the one it started in. */
function phasesTaken(phase: SessionPhase): string[] {
  const start = phase.path[0]?.from ?? activePhasesOf(phase.value as StateValue);
  return [phaseText(start), ...phase.path.map((move) => phaseText(move.to))];
}

/** The phases active while turn `turn` made its calls: a move of a turn comes after that turn's calls. */
function phaseAtTurn(phase: SessionPhase, turn: number): string {
  let active = phase.path[0]?.from ?? activePhasesOf(phase.value as StateValue);
  for (const move of phase.path) if (move.turn < turn) active = move.to;
  return phaseText(active);
}

/** Decides the run's approval requests in order, as the case says; one beyond its list is denied. */
function approvalDecider(options: EvalRunOptions, evalCase: LoadedCase, sessionId: string): () => Promise<unknown> {
  let next = 0;
  return async () => {
    const decision = evalCase.approvals?.[next++];
    const control = { namespace: options.namespace, by: decision?.by ?? 'eval' };
    return await (decision?.decision === 'approve'
      ? approveSession(options.nats, sessionId, control)
      : denySession(options.nats, sessionId, { ...control, reason: decision?.reason ?? `the eval case ${evalCase.id} gives no decision for approval ${next}` })
    ).catch(() => undefined);
  };
}

async function runOnce(options: EvalRunOptions, stores: RunStores, evalCase: LoadedCase, attempt: number): Promise<CaseRun> {
  const started = performance.now();
  const setUp = Object.entries(evalCase.setup?.files ?? {});
  if (setUp.length > 0) {
    if (options.workspace === undefined) throw new Error(`case ${evalCase.id} sets files up, but the runner was given no workspace`);
    const workspace = options.workspace;
    await Promise.all(setUp.map(async ([file, text]) => {
      await mkdir(dirname(join(workspace, file)), { recursive: true });
      await writeFile(join(workspace, file), text);
    }));
  }
  const failed = (sessionId: string, error: string): CaseRun => ({
    caseId: evalCase.id, attempt, sessionId, traceId: null, status: 'failed', stopReason: 'eval', output: null, error,
    toolCalls: [], steps: 0, toolCallCount: 0, usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 }, durationMs: performance.now() - started,
  });
  let run;
  try {
    run = await startSession(options.nats, { task: evalCase.task, namespace: options.namespace, whenNoOrchestrator: 'fail', ...(evalCase.agent ? { agent: evalCase.agent } : {}), ...(evalCase.budgets ? { budgets: evalCase.budgets } : {}) });
  } catch (error) {
    return failed('', `the session did not start: ${error instanceof Error ? error.message : String(error)}`);
  }
  options.onProgress?.({ kind: 'started', caseId: evalCase.id, attempt, sessionId: run.sessionId });
  // By call id: a call retried or taken over after a crash is one entry, as it is one call.
  const calls = new Map<string, MadeCall>();
  const toolCalls: MadeCall[] = [];
  let finished: Extract<SessionEvent, { type: 'session.finished' }> | undefined;
  let responses = 0;
  // With a workflow, as the events tell it (the checkpoint's record wins when it can be read).
  const phases: string[] = [];
  const decideApproval = approvalDecider(options, evalCase, run.sessionId);
  let injected: Promise<string | undefined> | undefined;
  const timer = setTimeout(() => {
    void run.cancel(`the eval's time for one session (${options.sessionTimeoutMs / 1000} s) ran out`).catch(() => false);
    setTimeout(() => run.detach(), 10_000).unref();
  }, options.sessionTimeoutMs);
  try {
    for await (const event of run.events) {
      if (event.type === 'tool.call.started') {
        if (calls.has(event.callId)) continue;
        const call: MadeCall = { callId: event.callId, tool: event.tool, arguments: event.arguments, status: 'ok', ...(phases.length > 0 ? { phase: phases.at(-1) as string } : {}) };
        calls.set(event.callId, call);
        toolCalls.push(call);
      } else if (event.type === 'tool.call.finished') {
        const call = calls.get(event.callId);
        if (call) call.status = event.status;
      } else if (event.type === 'tool.call.rejected') {
        // Refused before dispatch: the event names the tool, not the arguments the model wrote.
        toolCalls.push({ callId: null, tool: event.tool, arguments: null, status: 'rejected' });
      } else if (event.type === 'model.responded') {
        responses++;
        if (options.atStep && responses === options.atStep.step && !injected) {
          // Not awaited here: the session goes on meanwhile, and its events are read as they come.
          injected = options.atStep.inject().then(() => undefined, (error: unknown) => `the fault at step ${responses} could not be injected: ${error instanceof Error ? error.message : String(error)}`);
        }
      } else if (event.type === 'session.started' && event.phases) {
        phases.push(phaseText(event.phases));
      } else if (event.type === 'workflow.transitioned') {
        phases.push(phaseText(event.to));
      } else if (event.type === 'approval.requested') {
        await decideApproval();
      } else if (event.type === 'session.finished') {
        finished = event;
      }
    }
  } finally {
    clearTimeout(timer);
  }
  const injectionError = await injected;
  const seen = toolCalls.map(({ callId: _callId, ...call }) => call);
  if (injectionError !== undefined) return { ...failed(run.sessionId, injectionError), toolCalls: seen };
  if (!finished) return { ...failed(run.sessionId, `the session did not finish within ${options.sessionTimeoutMs / 1000} s`), toolCalls: seen };
  const fromLedger = await ledgerCallsOf(stores.checkpoints, run.sessionId);
  const made = fromLedger?.calls ?? toolCalls;
  const phasesGone = fromLedger ? fromLedger.phases : phases.length > 0 ? phases : undefined;
  await Promise.all(made.map(async (call) => {
    const runs = call.callId ? await stores.outcomes.handlerRuns(call.callId).catch(() => undefined) : undefined;
    if (runs !== undefined) call.handlerRuns = runs;
  }));
  const madeCalls: RunToolCall[] = made.map(({ callId: _callId, ...call }) => call);
  const expected = evalCase.expect.files ?? [];
  const files = options.workspace && expected.length > 0
    ? Object.fromEntries(await Promise.all(expected.map(async (file) => [file.path, await readFile(join(options.workspace as string, file.path), 'utf8').catch(() => null)] as const)))
    : undefined;
  return {
    ...(files ? { files } : {}),
    caseId: evalCase.id, attempt, sessionId: run.sessionId, traceId: finished.traceId || null,
    // The session's own error is part of how it ended, not a failure of the eval: a case may expect `failed`.
    status: finished.status, stopReason: finished.error ? `${finished.stopReason}: ${finished.error}` : finished.stopReason, output: finished.output,
    toolCalls: madeCalls, ...(phasesGone ? { phases: phasesGone } : {}), steps: finished.steps, toolCallCount: finished.toolCalls, usage: finished.usage, durationMs: performance.now() - started,
  };
}
