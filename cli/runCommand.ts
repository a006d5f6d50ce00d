import { parseArgs } from 'node:util';
import type { NatsConnection } from '@nats-io/transport-node';
import { attachSession, cancelSession, startSession } from '../client/sessionClient.ts';
import { subjectTokenPattern } from '../transport/subjects.ts';
import { BudgetName, BudgetOverrides } from '../machines/budgets.ts';
import { maxTimerDelayMs } from '../machines/timerDelay.ts';
import { createLogger } from '../observability/logger.ts';
import type { SessionEvent, SessionFinished } from '../transport/messages.ts';
import { readEnvironment } from './environment.ts';
import { connectProcess } from './natsSettings.ts';
import { describeEvent, describeOutcome, LiveStatusLine } from './progressDisplay.ts';
import { terminalJson, terminalLine } from './terminalText.ts';
import { UsageError } from './usageError.ts';

export interface RunOptions {
  /** The task of a new session; absent when attaching. */
  task?: string;
  /** Follow an existing session instead: replay its events, then follow the rest. */
  attach?: string;
  agent?: string;
  tenant?: string;
  user?: string;
  /** Budgets tighter than the agent's, from the `--max-*` flags. */
  budgets?: BudgetOverrides;
  json: boolean;
  timeoutMs: number;
  /** The deployment the session runs in (`TROUPE_NAMESPACE`; cli/main.ts takes `--namespace` before these flags are parsed); `troupe` when absent. */
  namespace?: string;
}

/**
 * The flags that tighten the session's budgets: the budget each sets, what it takes in words, and
 * how its value becomes the budget's (the wall clock is given in seconds and kept in milliseconds).
 */
const budgetFlags = {
  'max-steps': { budget: BudgetName.maxSteps, takes: 'a positive whole number of model calls', toBudget: Number },
  'max-tool-calls-per-turn': { budget: BudgetName.maxToolCallsPerTurn, takes: 'a positive whole number of tool calls', toBudget: Number },
  'max-tokens': { budget: BudgetName.maxTotalTokens, takes: 'a positive whole number of tokens', toBudget: Number },
  'max-cost': { budget: BudgetName.maxCostUsd, takes: 'a positive number of US dollars', toBudget: Number },
  'max-wall-clock': {
    budget: BudgetName.maxWallClockMs,
    takes: `a positive number of seconds, at most ${Math.floor(maxTimerDelayMs / 1000)} (about 24.8 days, the longest delay a timer can wait)`,
    // To the millisecond: nobody means a fraction of one, and the budget is a whole number of them.
    toBudget: (seconds: string) => Math.round(Number(seconds) * 1000),
  },
} as const;
type BudgetFlag = keyof typeof budgetFlags;

/** The budgets the `--max-*` flags ask for, each checked by the budget's own schema; undefined when none is given. */
function budgetsOf(values: Partial<Record<BudgetFlag, string>>): BudgetOverrides | undefined {
  const budgets: BudgetOverrides = {};
  for (const [flag, { budget, takes, toBudget }] of Object.entries(budgetFlags) as [BudgetFlag, (typeof budgetFlags)[BudgetFlag]][]) {
    const text = values[flag];
    if (text === undefined) continue;
    const parsed = BudgetOverrides.shape[budget].unwrap().safeParse(toBudget(text));
    if (!parsed.success) throw new UsageError(`--${flag} must be ${takes}, not "${text}"`);
    budgets[budget] = parsed.data;
  }
  return Object.keys(budgets).length > 0 ? budgets : undefined;
}

export function parseRunArgs(args: string[]): RunOptions {
  const { values, positionals } = parseArgs({
    args,
    options: {
      json: { type: 'boolean', default: false }, agent: { type: 'string' }, timeout: { type: 'string', default: '600' }, attach: { type: 'string' },
      tenant: { type: 'string' }, user: { type: 'string' },
      ...Object.fromEntries(Object.keys(budgetFlags).map((flag) => [flag, { type: 'string' }])) as Record<BudgetFlag, { type: 'string' }>,
    },
    strict: true,
    allowPositionals: true,
  });
  const usage = 'usage: troupe run "<task>" [--json] [--agent <name>] [--tenant <id>] [--user <id>] [--timeout <seconds>]\n'
    + '                  [--max-steps <n>] [--max-tool-calls-per-turn <n>] [--max-tokens <n>] [--max-cost <usd>] [--max-wall-clock <seconds>]\n'
    + '       troupe run --attach <sessionId> [--json]';
  for (const [flag, value] of [['--tenant', values.tenant], ['--user', values.user]] as const) {
    if (value !== undefined && !/^[\w.@:-]{1,128}$/.test(value)) throw new UsageError(`${flag} takes letters, digits and . _ @ : - only (at most 128), not "${value}"`);
  }
  const budgets = budgetsOf(values);
  if (values.attach !== undefined) {
    if (positionals.length > 0 || values.agent || values.tenant || values.user) throw new UsageError(`--attach follows an existing session: give no task, --agent, --tenant or --user\n${usage}`);
    if (budgets) throw new UsageError(`--attach follows an existing session, whose budgets were set when it started: give no --max-* flags\n${usage}`);
    if (!subjectTokenPattern.test(values.attach)) throw new UsageError(`"${values.attach}" is not a session id`);
  } else if (positionals.length !== 1 || !positionals[0]?.trim()) throw new UsageError(usage);
  const timeout = Number(values.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError(`--timeout must be a positive number of seconds, not "${values.timeout}"`);
  // The timeout is a timer, and a longer one than a timer can wait would fire at once.
  if (timeout * 1000 > maxTimerDelayMs) {
    throw new UsageError(`--timeout must be at most ${Math.floor(maxTimerDelayMs / 1000)} seconds (about 24.8 days, the longest delay a timer can wait), not "${values.timeout}"`);
  }
  return {
    json: values.json,
    timeoutMs: timeout * 1000,
    ...(positionals[0] ? { task: positionals[0] } : {}),
    ...(values.attach ? { attach: values.attach } : {}),
    ...(values.agent ? { agent: values.agent } : {}),
    ...(values.tenant ? { tenant: values.tenant } : {}),
    ...(values.user ? { user: values.user } : {}),
    ...(budgets ? { budgets } : {}),
  };
}

/**
 * Starts a session on the running stack and follows it to the end. Returns the `session.finished`
 * event; the caller turns its status into the exit code.
 */
export async function followSession(nc: NatsConnection, options: RunOptions, out: NodeJS.WriteStream = process.stdout): Promise<SessionFinished> {
  // The decoder's message may quote the malformed event's own text.
  const onInvalidEvent = (error: string) => process.stderr.write(`troupe: skipped a malformed event: ${terminalLine(error)}\n`);
  const where = options.namespace ? { namespace: options.namespace } : {};
  const run = options.attach
    ? {
        ...(await attachSession(nc, options.attach, { onInvalidEvent, ...where })), sessionId: options.attach, queued: false,
        cancel: (reason?: string) => cancelSession(nc, options.attach as string, reason, where).then((r) => r.accepted),
      }
    : await startSession(nc, {
        task: options.task ?? '', onInvalidEvent, ...where,
        ...(options.agent ? { agent: options.agent } : {}), ...(options.tenant ? { tenant: options.tenant } : {}), ...(options.user ? { user: options.user } : {}),
        ...(options.budgets ? { budgets: options.budgets } : {}),
      });
  if (run.queued) process.stderr.write(`troupe: no orchestrator is running; session ${run.sessionId} is queued and starts when one does\n`);
  const live = !options.json && out.isTTY ? new LiveStatusLine(out) : undefined;
  const stopFollowing = () => ('detach' in run ? run.detach() : run.stop());
  let last: SessionEvent | undefined;
  let lastWords: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    // A session this client started is cancelled; one it only attached to is left alone. Either way
    // the client stops waiting soon after, even if no orchestrator is left to answer.
    process.stderr.write(`troupe: no result after ${options.timeoutMs / 1000} s; ${options.attach ? 'no longer following' : 'cancelling'} session ${run.sessionId}\n`);
    if (!options.attach) void run.cancel('the client timed out').catch(() => undefined);
    lastWords = setTimeout(stopFollowing, options.attach ? 0 : 10_000);
  }, options.timeoutMs);
  try {
    for await (const event of run.events) {
      last = event;
      if (options.json) out.write(`${terminalJson(event)}\n`);
      else if (live) live.show(event);
      else {
        const line = describeEvent(event);
        if (line) out.write(`${line}\n`);
      }
    }
  } finally {
    clearTimeout(timer);
    clearTimeout(lastWords);
    live?.stop();
    stopFollowing();
  }
  if (last?.type !== 'session.finished') {
    throw new Error(`stopped following session ${run.sessionId} before it finished; it may still be running (troupe run --attach ${run.sessionId})`);
  }
  const finished = await run.finished;
  if (!options.json) out.write(`${describeOutcome(finished)}\n`);
  return finished;
}

/** `troupe run "<task>"`: exit code 0 only when the session completed. */
export async function runCommand(args: string[]): Promise<number> {
  const options = parseRunArgs(args);
  const env = readEnvironment();
  const logger = createLogger({ name: 'run', level: 'warn' });
  const nc = await connectProcess(env, { name: 'troupe-run', logger, longRunning: false });
  try {
    const finished = await followSession(nc, { ...options, namespace: env.TROUPE_NAMESPACE });
    return finished.status === 'completed' ? 0 : 1;
  } finally {
    await nc.drain();
  }
}
