import { PassThrough } from 'node:stream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { followSession, parseRunArgs } from '../../cli/runCommand.ts';
import { UsageError } from '../../cli/usageError.ts';
import { startInProcessStack, type InProcessStack } from '../fixtures/inProcessStack.ts';
import { testNamespace } from '../fixtures/testNamespace.ts';

const namespace = testNamespace();

function errorOf(args: string[]): unknown {
  try {
    parseRunArgs(args);
  } catch (error) {
    return error;
  }
  throw new Error(`parseRunArgs accepted ${JSON.stringify(args)}`);
}

describe('parseRunArgs', () => {
  it('takes the task with a ten-minute timeout and plain output by default', () => {
    expect(parseRunArgs(['How many orders were refunded?'])).toStrictEqual({ task: 'How many orders were refunded?', json: false, timeoutMs: 600_000 });
  });

  it('reads --json, --agent and --timeout in seconds, before or after the task', () => {
    expect(parseRunArgs(['--json', 'the task', '--agent', 'analyst', '--timeout', '2.5'])).toStrictEqual({
      task: 'the task',
      json: true,
      agent: 'analyst',
      timeoutMs: 2_500,
    });
    expect(parseRunArgs(['the task', '--timeout=90'])).toMatchObject({ timeoutMs: 90_000 });
  });

  it('takes a tenant and a user to attribute spend to, and refuses ids that would not make clean metric attributes', () => {
    expect(parseRunArgs(['--tenant', 'acme', '--user', 'ada@acme.io', 'a task'])).toMatchObject({ tenant: 'acme', user: 'ada@acme.io', task: 'a task' });
    expect((errorOf(['--tenant', 'acme corp', 'a task']) as Error).message).toMatch(/^--tenant takes letters, digits and \. _ @ : - only/);
    expect((errorOf(['--attach', 's-1', '--tenant', 'acme']) as Error).message).toMatch(/^--attach follows an existing session: give no task, --agent, --tenant or --user/);
  });

  it('refuses a missing or blank task with the usage line', () => {
    for (const args of [[], ['   '], ['--json']]) {
      const error = errorOf(args);
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toBe('usage: troupe run "<task>" [--json] [--agent <name>] [--tenant <id>] [--user <id>] [--timeout <seconds>]\n'
        + '                  [--max-steps <n>] [--max-tool-calls-per-turn <n>] [--max-tokens <n>] [--max-cost <usd>] [--max-wall-clock <seconds>]\n'
        + '       troupe run --attach <sessionId> [--json]');
    }
  });

  it('reads budgets tighter than the agent\'s from the --max-* flags, the wall clock in seconds', () => {
    expect(parseRunArgs([
      'the task', '--max-steps', '5', '--max-tool-calls-per-turn=2', '--max-tokens', '20000', '--max-cost', '0.25', '--max-wall-clock', '90.5',
    ])).toStrictEqual({
      task: 'the task', json: false, timeoutMs: 600_000,
      budgets: { maxSteps: 5, maxToolCallsPerTurn: 2, maxTotalTokens: 20_000, maxCostUsd: 0.25, maxWallClockMs: 90_500 },
    });
    expect(parseRunArgs(['the task', '--max-cost', '0.1'])).toMatchObject({ budgets: { maxCostUsd: 0.1 } });
  });

  it('refuses a budget flag whose value is not one the budget takes, saying what it takes', () => {
    const cases: [string, string, string][] = [
      ['--max-steps', '0', 'a positive whole number of model calls'],
      ['--max-steps', '1.5', 'a positive whole number of model calls'],
      ['--max-steps', 'many', 'a positive whole number of model calls'],
      ['--max-tool-calls-per-turn', '', 'a positive whole number of tool calls'],
      ['--max-tokens', 'Infinity', 'a positive whole number of tokens'],
      ['--max-cost', '0', 'a positive number of US dollars'],
      ['--max-cost', '$1', 'a positive number of US dollars'],
      ['--max-wall-clock', '0.0001', 'a positive number of seconds, at most 2147483 (about 24.8 days, the longest delay a timer can wait)'],
      ['--max-wall-clock', '2147484', 'a positive number of seconds, at most 2147483 (about 24.8 days, the longest delay a timer can wait)'],
    ];
    for (const [flag, value, takes] of cases) {
      const error = errorOf(['the task', `${flag}=${value}`]);
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toBe(`${flag} must be ${takes}, not "${value}"`);
    }
  });

  it('refuses budget flags with --attach: a running session keeps the budgets it started with', () => {
    expect((errorOf(['--attach', 's-1', '--max-steps', '3']) as Error).message).toMatch(/^--attach follows an existing session, whose budgets were set when it started: give no --max-\* flags/);
  });

  it('attaches to an existing session by id, with no task', () => {
    expect(parseRunArgs(['--attach', 'abc-123', '--json'])).toEqual({ attach: 'abc-123', json: true, timeoutMs: 600_000 });
  });

  it('refuses --attach with a task, with --agent, or with an id that is not one', () => {
    for (const args of [['--attach', 'abc', 'a task'], ['--attach', 'abc', '--agent', 'x'], ['--attach', 'not an id']]) {
      expect(errorOf(args)).toBeInstanceOf(UsageError);
    }
  });

  it('refuses two tasks', () => {
    expect(errorOf(['first task', 'second task'])).toBeInstanceOf(UsageError);
  });

  it('refuses an unknown flag with a parse-args error the CLI treats as a usage error', () => {
    expect(errorOf(['--verbose', 'the task'])).toMatchObject({ code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' });
  });

  it('refuses a timeout that is not a positive number', () => {
    for (const value of ['-5', '0', 'soon']) {
      const error = errorOf(['the task', `--timeout=${value}`]);
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toBe(`--timeout must be a positive number of seconds, not "${value}"`);
    }
    // Written as two arguments, a negative number looks like a flag to parseArgs.
    expect(errorOf(['the task', '--timeout', '-5'])).toMatchObject({ code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' });
  });

  // Regression: Node fires a timer longer than 2^31−1 ms after 1 ms, so `--timeout 3000000` gave up at once.
  it('refuses a timeout longer than a timer can wait instead of giving up at once', () => {
    const error = errorOf(['the task', '--timeout', '2147484']);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toBe('--timeout must be at most 2147483 seconds (about 24.8 days, the longest delay a timer can wait), not "2147484"');
    expect(parseRunArgs(['the task', '--timeout', '2147483'])).toMatchObject({ timeoutMs: 2_147_483_000 });
  });
});

describe('followSession', () => {
  // Regression: when nobody could answer, the client waited forever for a session.finished.
  it('gives up after its timeout with an error naming the session, instead of hanging', async () => {
    const nc = await connect({ servers: inject('natsUrl') });
    try {
      const sink = Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.WriteStream;
      await expect(followSession(nc, { attach: 'nobody-runs-this', json: true, timeoutMs: 200, namespace }, sink)).rejects.toThrow(
        'stopped following session nobody-runs-this before it finished',
      );
    } finally {
      await nc.close();
    }
  });
});

describe('followSession printing a session whose model writes escape sequences', () => {
  let stack: InProcessStack;
  beforeAll(async () => {
    stack = await startInProcessStack();
    await stack.startOrchestrator();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function follow(json: boolean): Promise<string> {
    let text = '';
    const sink = Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.WriteStream;
    sink.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const finished = await followSession(await stack.connection('run'), { task: 'Please print escape sequences.', json, timeoutMs: 30_000, namespace: stack.namespace }, sink);
    expect(finished.status).toBe('completed');
    return text;
  }

  // Regression: a model could clear the screen, retitle the window or write the clipboard through `troupe run`.
  it('prints the model’s and the tools’ text without escape sequences or control characters, the answer’s lines kept', async () => {
    const text = await follow(false);
    expect(text).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    expect(text).toContain('→ no_such_tool');
    expect(text).toContain('\nDone.\nSecond line\twith a tab and no more.\n');
  });

  it('keeps --json lines the same JSON, with every control character escaped', async () => {
    const text = await follow(true);
    expect(text).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    const finished = text.trim().split('\n').map((line) => JSON.parse(line) as { type: string; output?: string }).find((e) => e.type === 'session.finished');
    expect(finished?.output).toBe('Done.\x1b]0;pwned\x07\r\nSecond\x1b[2J line\twith a tab\x9b31m\x1b]52;c;cHduZWQ=\x07 and no more.\b');
  });
});
