import { parseArgs } from 'node:util';
import type { NatsConnection } from '@nats-io/transport-node';
import { CheckpointStore, type Checkpoint } from '../actors/durability/checkpointStore.ts';
import {
  answerSession, approveSession, callToolInSession, cancelSession, continueSession, denySession, handBackSession, interruptSession,
  redirectSession, rollbackSession, takeOverSession, type ControlResult,
} from '../client/sessionClient.ts';
import { rollbackPlan, type RollbackStep } from '../machines/rollback.ts';
import type { SessionContext } from '../machines/sessionContext.ts';
import { createLogger } from '../observability/logger.ts';
import { wireNames } from '../transport/subjects.ts';
import { readEnvironment } from './environment.ts';
import { connectProcess, nkeySignerOf } from './natsSettings.ts';
import { terminalJson, terminalLine, terminalText } from './terminalText.ts';
import { UsageError } from './usageError.ts';
import { specialistSessionsOf, writeRecordedSession } from './sessionRecordFiles.ts';
import { checkpointOncePaused, controlOutcomeMarks, manualCallAnswer, rollbackReportAfter } from '../client/controlOutcomes.ts';
import { SessionRecordingError } from '../evaluation/sessionRecording.ts';

const usage = `usage:
  troupe sessions list [--json]
  troupe sessions show <id> [--json]
  troupe sessions approve <id> [--call <callId>]… [--by <name>]
  troupe sessions deny <id> [--reason <text>] [--call <callId>]… [--by <name>]
  troupe sessions interrupt <id>
  troupe sessions redirect <id> "<instruction>"
  troupe sessions cancel <id> [--reason <text>]
  troupe sessions resume <id> ["<answer>"]     an escalated session needs the answer; an interrupted one continues
  troupe sessions takeover <id> [--by <name>]  take an escalated session over (manual mode)
  troupe sessions call <id> <tool> '<json arguments>'   call a tool through a taken-over session
  troupe sessions handback <id> ["<instruction>"]       give it back to the model
  troupe sessions record <id> --out <dataset.yaml>    a finished session as an eval case and its script
  troupe sessions rollback <id> --to <turn> [--dry-run] [--by <name>]
                                              undo the calls after <turn>, newest first (the session must be paused)
every command: [--id <commandId>]   the same id sent again is applied once
               [--wait <seconds>]   how long to wait for it to be applied (3) before it is reported recorded
               [--by <name>]        who sends it, recorded with the session (the signer's name when commands are signed)`;

const planLine = (step: RollbackStep): string =>
  `  turn ${step.turn}  ${step.tool.padEnd(16)} ${{ undo: 'will be undone', cannot_undo: 'CANNOT be undone', nothing_to_undo: 'nothing to undo' }[step.action]}` +
  (step.result ? ` → ${step.result}${step.message ? `: ${step.message}` : ''}` : '');

const stateOf = (checkpoint: Checkpoint): string => JSON.stringify(checkpoint.snapshot.value ?? '?').replaceAll('"', '');
const contextOf = (checkpoint: Checkpoint) => checkpoint.snapshot.context as SessionContext;

function describeCheckpoint(checkpoint: Checkpoint): string {
  const context = contextOf(checkpoint);
  const waiting = context.accepted.filter((c) => c.requiresApproval && !c.approval);
  const lines = [
    `session ${checkpoint.sessionId} · ${checkpoint.status} · state ${stateOf(checkpoint)} · agent ${checkpoint.agent} · owner ${checkpoint.owner} · updated ${checkpoint.updatedAt}`,
    `task: ${checkpoint.task}`,
    `steps ${context.turn} · tool calls ${context.toolCalls} · tokens ${context.usage.inputTokens} in / ${context.usage.outputTokens} out · cost $${context.usage.costUsd.toFixed(5)}`,
  ];
  if (waiting.length > 0) lines.push('waiting for approval:', ...waiting.map((c) => `  ${c.callId}  ${c.name} ${JSON.stringify(c.arguments)}`));
  if (checkpoint.inFlightToolCalls.length > 0) lines.push('in flight:', ...checkpoint.inFlightToolCalls.map((c) => `  ${c.callId}  ${c.tool}`));
  if (context.outcome) lines.push(`outcome: ${context.outcome.status} (${context.outcome.stopReason})${context.outcome.output ? `\n${context.outcome.output}` : ''}`);
  lines.push('ledger:', ...(context.ledger.length === 0 ? ['  (empty)'] : context.ledger.map((e) =>
    `  turn ${e.turn}  ${e.status.padEnd(8)} ${e.tool} ${JSON.stringify(e.arguments)}${e.errorCode ? `  ${e.errorCode}` : ''}`)));
  if (context.interventions.length > 0) {
    lines.push('interventions:', ...context.interventions.map((i) => `  turn ${i.turn}  ${i.kind}${i.by ? ` by ${i.by}` : ''}${i.detail ? `: ${i.detail}` : ''}`));
  }
  return lines.join('\n');
}

/**
 * `troupe sessions …`: see and steer sessions from any machine on the same NATS. Reads come from
 * the checkpoints; commands go to the orchestrator hosting the session, which says whether it
 * accepted them and, if not, why. The deployment is `io.namespace`, else `TROUPE_NAMESPACE`.
 */
export async function sessionsCommand(args: string[], io: { nc?: NatsConnection; namespace?: string; out?: NodeJS.WritableStream } = {}): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      json: { type: 'boolean', default: false },
      call: { type: 'string', multiple: true },
      by: { type: 'string' },
      reason: { type: 'string' },
      to: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      id: { type: 'string' },
      wait: { type: 'string' },
      out: { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  const out = io.out ?? process.stdout;
  // Tasks, answers, tool names, arguments and messages come from clients, models and tools: never
  // print their escape sequences or control characters; JSON stays the same JSON.
  const say = (text: string) => void out.write(`${terminalText(text)}\n`);
  const sayJson = (value: unknown) => void out.write(`${terminalJson(value)}\n`);
  const needId = (): string => {
    const id = positionals[0];
    if (!id) throw new UsageError(usage);
    return id;
  };
  // A caller that brings its own connection brings its namespace too (or means the default one).
  const env = io.nc ? undefined : readEnvironment();
  const names = wireNames(io.namespace ?? env?.TROUPE_NAMESPACE);
  // Commands are signed with the operator's own nkey when it connects with one: orchestrators that
  // know their operators take no other, and record who did it from the signature.
  const signer = env ? nkeySignerOf(env) : undefined;
  // How long a command waits to be applied before it is reported recorded (a session changing hands).
  const waitSeconds = values.wait === undefined ? undefined : Number(values.wait);
  if (waitSeconds !== undefined && !(Number.isFinite(waitSeconds) && waitSeconds >= 0 && waitSeconds <= 3_600)) throw new UsageError(`--wait takes seconds, from 0 to 3600, not ${JSON.stringify(values.wait)}`);
  if (values.id !== undefined && !/^[\w.-]{1,128}$/.test(values.id)) throw new UsageError(`--id takes letters, digits, ".", "-" and "_" (at most 128), not ${JSON.stringify(values.id)}`);
  const where = {
    namespace: names.namespace, ...(signer ? { signer } : {}), ...(values.by ? { by: values.by } : {}),
    ...(values.id ? { controlId: values.id } : {}), ...(waitSeconds !== undefined ? { applyWithinMs: waitSeconds * 1000 } : {}),
  };
  const nc = io.nc ?? (await connectProcess(env ?? readEnvironment(), { name: 'troupe-sessions', logger: createLogger({ name: 'sessions', level: 'warn' }), longRunning: false }));
  const report = (result: ControlResult, done: string): number => {
    if (result.status === 'recorded') say(`recorded (command ${result.controlId}): no orchestrator hosts the session right now; the one that resumes it applies this first`);
    else if (result.accepted) say(done);
    else say(`refused: ${result.reason ?? 'no reason given'}`);
    return result.accepted ? 0 : 1;
  };
  try {
    switch (sub) {
      case 'list': {
        const sessions = (await (await CheckpointStore.openForReading(nc, names))?.list()) ?? [];
        if (values.json) {
          for (const s of sessions) sayJson(s.checkpoint ? { sessionId: s.sessionId, status: s.checkpoint.status, state: stateOf(s.checkpoint), agent: s.checkpoint.agent, updatedAt: s.checkpoint.updatedAt, task: s.checkpoint.task } : s);
        } else if (sessions.length === 0) say('no sessions');
        else for (const s of sessions) {
          say(terminalLine(s.checkpoint
            ? `${s.sessionId}  ${s.checkpoint.status.padEnd(7)} ${stateOf(s.checkpoint).padEnd(18)} ${s.checkpoint.updatedAt}  ${terminalLine(s.checkpoint.task).slice(0, 60)}`
            : `${s.sessionId}  unreadable: ${s.error}`));
        }
        return 0;
      }
      case 'show': {
        const id = needId();
        const stored = await (await CheckpointStore.openForReading(nc, names))?.read(id);
        if (!stored) {
          say(`no session ${id}`);
          return 1;
        }
        if (values.json) sayJson(stored.checkpoint);
        else say(describeCheckpoint(stored.checkpoint));
        return 0;
      }
      case 'approve':
        return report(await approveSession(nc, needId(), { ...where, ...(values.by ? { by: values.by } : {}), ...(values.call ? { callIds: values.call } : {}) }), 'approved');
      case 'deny':
        return report(await denySession(nc, needId(), {
          ...where, ...(values.by ? { by: values.by } : {}), ...(values.reason ? { reason: values.reason } : {}), ...(values.call ? { callIds: values.call } : {}),
        }), 'denied');
      case 'interrupt':
        return report(await interruptSession(nc, needId(), where), 'interrupt requested: the session pauses before its next model call');
      case 'redirect': {
        const instruction = positionals[1];
        if (!instruction) throw new UsageError(`redirect needs the new instruction\n${usage}`);
        return report(await redirectSession(nc, needId(), instruction, where), 'redirected');
      }
      case 'cancel':
        return report(await cancelSession(nc, needId(), values.reason ?? 'cancelled from the command line', where), 'cancelled');
      case 'resume': {
        const id = needId();
        const answer = positionals[1];
        if (answer) {
          const answered = await answerSession(nc, id, answer, where);
          // An interrupted session takes the text as a new instruction instead.
          if (!answered.accepted && answered.reason === 'the session is not waiting for an answer') return report(await redirectSession(nc, id, answer, where), 'resumed with the new instruction');
          return report(answered, 'answered; the session resumes');
        }
        return report(await continueSession(nc, id, where), 'resumed');
      }
      case 'takeover':
        return report(await takeOverSession(nc, needId(), values.by ?? 'a person', where), 'taken over: call tools with troupe sessions call, then troupe sessions handback');
      case 'call': {
        const id = needId();
        const [, tool, json] = positionals;
        if (!tool || !json) throw new UsageError(`call needs a tool and its arguments as JSON\n${usage}`);
        let args: unknown;
        try {
          args = JSON.parse(json);
        } catch {
          throw new UsageError(`the arguments are not JSON: ${json}`);
        }
        if (typeof args !== 'object' || args === null || Array.isArray(args)) throw new UsageError('the arguments must be a JSON object');
        const store = await CheckpointStore.open(nc, names);
        const marks = await controlOutcomeMarks(store, id);
        const sent = await callToolInSession(nc, id, tool, args as Record<string, unknown>, where);
        if (!sent.accepted) return report(sent, '');
        // The call's answer is recorded with the session; it is what the model will read after the hand-back.
        const answer = await manualCallAnswer(store, id, marks.manualCalls);
        if (answer !== undefined) {
          say(answer);
          return JSON.parse(answer).ok ? 0 : 1;
        }
        say('the call was accepted but its answer did not arrive within 60 s; see troupe sessions show');
        return 1;
      }
      case 'handback':
        return report(await handBackSession(nc, needId(), positionals[1], where), 'handed back to the model');
      case 'record': {
        const id = needId();
        if (!values.out) throw new UsageError(`record writes an eval case: give --out <dataset.yaml>\n${usage}`);
        const checkpoints = await CheckpointStore.openForReading(nc, names);
        const stored = await checkpoints?.read(id);
        if (!checkpoints || !stored) {
          say(`no session ${id}`);
          return 1;
        }
        let written;
        try {
          const specialists = await specialistSessionsOf(stored.checkpoint, async (specialistId, agent) => {
            const pool = await CheckpointStore.openForReading(nc, names, { bucket: names.buckets.specialistCheckpoints(agent) });
            return (await pool?.read(specialistId))?.checkpoint;
          });
          written = writeRecordedSession(stored.checkpoint, values.out, { specialists });
        } catch (error) {
          if (!(error instanceof SessionRecordingError)) throw error;
          say(`cannot record: ${error.message}`);
          return 1;
        }
        const theirs = written.specialistScripts.length > 0 ? ` and its specialists' in ${written.specialistScripts.join(', ')}` : '';
        say(`recorded session ${id} as case ${written.caseId} in ${written.dataset}, its script in ${written.script}${theirs}: replay it with troupe eval ${written.dataset}`);
        return 0;
      }
      case 'rollback': {
        const id = needId();
        const toTurn = Number(values.to);
        if (values.to === undefined || !Number.isInteger(toTurn) || toTurn < 0) throw new UsageError(`rollback needs --to <turn>, a whole number\n${usage}`);
        const store = await CheckpointStore.open(nc, names);
        const stored = await checkpointOncePaused(nc, names, store, id);
        if (!stored) {
          say(`no session ${id}`);
          return 1;
        }
        // What will and will not be undone is said before anything happens.
        const plan = rollbackPlan(contextOf(stored.checkpoint).ledger, toTurn);
        say(plan.length === 0 ? `nothing was executed after turn ${toTurn}` : [`rolling back to the end of turn ${toTurn}:`, ...plan.map(planLine)].join('\n'));
        if (values['dry-run']) return 0;
        const marks = await controlOutcomeMarks(store, id);
        const sent = await rollbackSession(nc, id, { toTurn, ...where, ...(values.by ? { by: values.by } : {}) });
        if (!sent.accepted) return report(sent, '');
        // The report comes back in the session's checkpoint once the undo requests are answered.
        const done = await rollbackReportAfter(store, id, marks.rollbacks);
        if (done) {
          say(['done:', ...done.steps.map(planLine)].join('\n'));
          return done.steps.some((s) => s.result === 'failed' || s.action === 'cannot_undo') ? 1 : 0;
        }
        say('the rollback was accepted but its report did not arrive within 30 s; see troupe sessions show');
        return 1;
      }
      default:
        throw new UsageError(sub ? `unknown sessions command "${sub}"\n${usage}` : usage);
    }
  } finally {
    if (!io.nc) await nc.drain();
  }
}
