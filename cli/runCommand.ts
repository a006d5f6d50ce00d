import { parseArgs } from 'node:util';
import type { NatsConnection } from '@nats-io/transport-node';
import { startSession } from '../client/sessionClient.ts';
import { createLogger } from '../observability/logger.ts';
import type { SessionFinished } from '../transport/messages.ts';
import { connectToNats } from '../transport/natsConnection.ts';
import { readEnvironment } from './environment.ts';
import { describeEvent, describeOutcome, LiveStatusLine } from './progressDisplay.ts';
import { UsageError } from './usageError.ts';

export interface RunOptions {
  task: string;
  agent?: string;
  json: boolean;
  timeoutMs: number;
}

export function parseRunArgs(args: string[]): RunOptions {
  const { values, positionals } = parseArgs({
    args,
    options: { json: { type: 'boolean', default: false }, agent: { type: 'string' }, timeout: { type: 'string', default: '600' } },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length !== 1 || !positionals[0]?.trim()) throw new UsageError('usage: troupe run "<task>" [--json] [--agent <name>] [--timeout <seconds>]');
  const timeout = Number(values.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError(`--timeout must be a positive number of seconds, not "${values.timeout}"`);
  return { task: positionals[0], json: values.json, timeoutMs: timeout * 1000, ...(values.agent ? { agent: values.agent } : {}) };
}

/**
 * Starts a session on the running stack and follows it to the end. Returns the `session.finished`
 * event; the caller turns its status into the exit code.
 */
export async function followSession(nc: NatsConnection, options: RunOptions, out: NodeJS.WriteStream = process.stdout): Promise<SessionFinished> {
  const run = await startSession(nc, {
    task: options.task,
    ...(options.agent ? { agent: options.agent } : {}),
    onInvalidEvent: (error) => process.stderr.write(`troupe: skipped a malformed event: ${error}\n`),
  });
  const live = !options.json && out.isTTY ? new LiveStatusLine(out) : undefined;
  const timer = setTimeout(() => {
    process.stderr.write(`troupe: no result after ${options.timeoutMs / 1000} s; cancelling session ${run.sessionId}\n`);
    void run.cancel('the client timed out').catch(() => run.detach());
  }, options.timeoutMs);
  try {
    for await (const event of run.events) {
      if (options.json) out.write(`${JSON.stringify(event)}\n`);
      else if (live) live.show(event);
      else {
        const line = describeEvent(event);
        if (line) out.write(`${line}\n`);
      }
    }
  } finally {
    clearTimeout(timer);
    live?.stop();
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
  const nc = await connectToNats({ url: env.NATS_URL, name: 'troupe-run', logger });
  try {
    const finished = await followSession(nc, options);
    return finished.status === 'completed' ? 0 : 1;
  } finally {
    await nc.drain();
  }
}
