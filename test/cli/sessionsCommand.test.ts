import { PassThrough } from 'node:stream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorker, type ToolWorker } from '../../actors/worker/toolWorker.ts';
import { sessionsCommand } from '../../cli/sessionsCommand.ts';
import { UsageError } from '../../cli/usageError.ts';
import { startSession } from '../../client/sessionClient.ts';
import { vaultTool } from '../fixtures/testTools.ts';
import { startInProcessStack, type InProcessStack } from '../fixtures/inProcessStack.ts';
import { testNamespace } from '../fixtures/testNamespace.ts';

const namespace = testNamespace();

async function run(nc: NatsConnection, args: string[]): Promise<{ code: number; text: string }> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const code = await sessionsCommand(args, { nc, namespace, out });
  return { code, text };
}

describe('troupe sessions', () => {
  let stack: InProcessStack;
  let nc: NatsConnection;
  let worker: ToolWorker;
  const vaultOpen = vaultTool();

  beforeAll(async () => {
    stack = await startInProcessStack();
    nc = await stack.connection('cli');
    worker = await startWorker({ namespace, domain: 'vault', tools: [vaultOpen], nats: await stack.connection('worker-vault') });
    await stack.startOrchestrator();
  });
  afterAll(async () => {
    await worker?.stop();
    await stack?.stop();
  });

  it('lists and shows a session waiting for approval, then approves it from the command line', async () => {
    const session = await startSession(nc, { namespace, task: 'Please open the vault.' });
    for await (const event of session.events) if (event.type === 'approval.requested') break;

    const listed = await run(nc, ['list']);
    expect(listed.code).toBe(0);
    expect(listed.text).toMatch(new RegExp(`${session.sessionId}\\s+parked\\s+awaiting_approval`));

    const shown = await run(nc, ['show', session.sessionId]);
    expect(shown.text).toContain('waiting for approval:');
    expect(shown.text).toMatch(/vault_open \{"door":"north"\}/);

    expect(await run(nc, ['approve', session.sessionId, '--by', 'eve'])).toEqual({ code: 0, text: 'approved\n' });
    expect(await session.finished).toMatchObject({ status: 'completed' });

    const after = JSON.parse((await run(nc, ['show', session.sessionId, '--json'])).text);
    expect(after).toMatchObject({ status: 'ended', snapshot: { value: 'completed' } });
  });

  // Regression: `sessions show` printed the model's answer and tool names with their escape sequences.
  it('shows a session without the escape sequences and control characters its model wrote; --json keeps them, escaped', async () => {
    const session = await startSession(nc, { namespace, task: 'Please print escape sequences.' });
    expect(await session.finished).toMatchObject({ status: 'completed' });
    const shown = await run(nc, ['show', session.sessionId]);
    expect(shown.text).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    expect(shown.text).toContain('Done.\nSecond line\twith a tab and no more.');
    expect(shown.text).toMatch(/rejected\s+no_such_tool .*UNKNOWN_TOOL/);
    const json = await run(nc, ['show', session.sessionId, '--json']);
    expect(json.text).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    expect(JSON.parse(json.text).snapshot.context.outcome.output).toContain('\x1b]0;pwned\x07');
  });

  it('says why a command was refused, with exit code 1', async () => {
    expect(await run(nc, ['interrupt', 'no-such-session', '--wait', '0.2'])).toEqual({ code: 1, text: 'refused: There is no session no-such-session.\n' });
    expect(await run(nc, ['show', 'no-such-session'])).toEqual({ code: 1, text: 'no session no-such-session\n' });
  });

  it('refuses a command line it cannot run with the usage', async () => {
    await expect(run(nc, [])).rejects.toThrow(UsageError);
    await expect(run(nc, ['explode', 'x'])).rejects.toThrow(/unknown sessions command "explode"/);
    await expect(run(nc, ['redirect', 'x'])).rejects.toThrow(/needs the new instruction/);
  });
});
