import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointStore } from '../../actors/durability/checkpointStore.ts';
import { startWorker, type ToolWorker } from '../../actors/worker/toolWorker.ts';
import { sessionsCommand } from '../../cli/sessionsCommand.ts';
import { answerSession, startSession } from '../../client/sessionClient.ts';
import { filesTools } from '../../domains/files/filesTools.ts';
import type { SessionContext } from '../../machines/sessionContext.ts';
import { startInProcessStack, type InProcessStack } from '../fixtures/inProcessStack.ts';
import { wireNames } from '../../transport/subjects.ts';
import { testNamespace } from '../fixtures/testNamespace.ts';

const namespace = testNamespace();

async function cli(nc: NatsConnection, args: string[]) {
  const out = new PassThrough();
  let text = '';
  out.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { code: await sessionsCommand(args, { nc, namespace, out }), text };
}

describe('an escalated session resolved by a person', () => {
  let stack: InProcessStack;
  let nc: NatsConnection;
  let worker: ToolWorker;

  beforeAll(async () => {
    stack = await startInProcessStack();
    nc = await stack.connection('person');
    worker = await startWorker({ namespace, domain: 'files', tools: filesTools({ workspace: stack.workspace }), nats: await stack.connection('files') });
    await stack.startOrchestrator();
  });
  afterAll(async () => {
    await worker?.stop();
    await stack?.stop();
  });

  async function escalate(): Promise<string> {
    const run = await startSession(nc, { namespace, task: 'Please get stuck on the report.' });
    expect(await run.finished).toMatchObject({ status: 'escalated' });
    return run.sessionId;
  }

  it('resumes with a person’s answer', async () => {
    const sessionId = await escalate();
    expect(await answerSession(nc, sessionId, 'The report is in notes/report.txt.', { namespace })).toMatchObject({ accepted: true });
    const done = await waitForEnd(sessionId);
    expect(done.snapshot.value).toBe('completed');
    expect((done.snapshot.context as SessionContext).outcome).toMatchObject({ output: 'back in control; I was told: The report is in notes/report.txt.' });
  });

  it('is taken over in manual mode: the person’s calls are validated, run and recorded, then handed back', async () => {
    const sessionId = await escalate();
    expect((await cli(nc, ['takeover', sessionId, '--by', 'gus'])).code).toBe(0);

    // A call that breaks the tool's schema is refused like the model's would be, and recorded.
    const refused = await cli(nc, ['call', sessionId, 'files_write', '{"path":"notes/report.txt"}']);
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.text)).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } });

    const written = await cli(nc, ['call', sessionId, 'files_write', '{"path":"notes/report.txt","content":"written by gus"}']);
    expect(written.code).toBe(0);
    expect(JSON.parse(written.text)).toMatchObject({ ok: true, result: { path: 'notes/report.txt', created: true } });
    expect(await readFile(join(stack.workspace, 'notes/report.txt'), 'utf8')).toBe('written by gus');

    expect((await cli(nc, ['handback', sessionId, 'Summarise the report now.'])).code).toBe(0);
    const done = await waitForEnd(sessionId);
    const context = done.snapshot.context as SessionContext;
    expect(context.outcome).toMatchObject({ status: 'completed', output: expect.stringContaining('back in control; I was told:') });
    // The model read what the person did before the instruction.
    const handback = context.conversation.filter((m) => m.role === 'user').at(-1)?.content ?? '';
    expect(handback).toContain('gus took over the session and made these calls:');
    expect(handback).toContain('files_write {"path":"notes/report.txt","content":"written by gus"}');
    expect(handback).toContain('Their instruction: Summarise the report now.');
    // Recorded in the ledger like the model's calls, marked with who made them.
    expect(context.ledger.filter((e) => e.by === 'gus').map((e) => [e.tool, e.status])).toEqual([['files_write', 'rejected'], ['files_write', 'ok']]);
    expect(context.interventions.map((i) => i.kind)).toEqual(['took_over', 'handed_back']);
  });

  async function waitForEnd(sessionId: string) {
    const store = await CheckpointStore.open(nc, wireNames(namespace));
    for (let i = 0; i < 200; i++) {
      const stored = await store.read(sessionId);
      if (stored?.checkpoint.status === 'ended') return stored.checkpoint;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`session ${sessionId} did not end`);
  }
});
