import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorker, type ToolWorker } from '../../actors/worker/toolWorker.ts';
import { sessionsCommand } from '../../cli/sessionsCommand.ts';
import { cancelSession, interruptSession, redirectSession, startSession } from '../../client/sessionClient.ts';
import { filesTools } from '../../domains/files/filesTools.ts';
import { gatedLedgerAppend, slowWait } from '../fixtures/testTools.ts';
import type { SessionEvent } from '../../transport/messages.ts';
import { startInProcessStack, type InProcessStack } from '../fixtures/inProcessStack.ts';
import { testNamespace } from '../fixtures/testNamespace.ts';

const namespace = testNamespace();

async function cli(nc: NatsConnection, args: string[]) {
  const out = new PassThrough();
  let text = '';
  out.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const code = await sessionsCommand(args, { nc, namespace, out });
  return { code, text };
}

describe('rollback', () => {
  let stack: InProcessStack;
  let nc: NatsConnection;
  const workers: ToolWorker[] = [];
  // Holds turn 3 until the person's interrupt is in, so the session cannot finish before it lands.
  const { tool: ledgerAppend, open: openLedger } = gatedLedgerAppend();
  const original = Buffer.from([0x00, 0xff, 0x10, 0x0a, 0x68, 0x69]);

  beforeAll(async () => {
    stack = await startInProcessStack();
    nc = await stack.connection('person');
    await writeFile(join(stack.workspace, 'existing.bin'), original);
    workers.push(await startWorker({ namespace, domain: 'files', tools: filesTools({ workspace: stack.workspace }), nats: await stack.connection('files') }));
    workers.push(await startWorker({ namespace, domain: 'ledger', tools: [ledgerAppend], nats: await stack.connection('ledger') }));
    workers.push(await startWorker({ namespace, domain: 'slow', tools: [slowWait], nats: await stack.connection('slow') }));
    await stack.startOrchestrator();
  });
  afterAll(async () => {
    for (const worker of workers) await worker.stop();
    await stack?.stop();
  });

  it('restores the sandbox byte for byte, and says what could not be undone before and after', async () => {
    const run = await startSession(nc, { namespace, task: 'Please edit some files.' });
    let dryRun = '';
    let done = { code: -1, text: '' };
    const events: SessionEvent[] = [];
    for await (const event of run.events) {
      events.push(event);
      if (event.type === 'turn.started' && event.turn === 3) {
        expect(await interruptSession(nc, run.sessionId, { namespace })).toMatchObject({ accepted: true });
        openLedger();
      }
      // After the rollback the session is paused again (interrupted) until the person redirects it.
      if (event.type === 'session.interrupted' && !dryRun) {
        expect(await readFile(join(stack.workspace, 'existing.bin'), 'utf8')).toBe('overwritten');
        dryRun = (await cli(nc, ['rollback', run.sessionId, '--to', '0', '--dry-run'])).text;
        done = await cli(nc, ['rollback', run.sessionId, '--to', '0', '--by', 'fran']);
        await redirectSession(nc, run.sessionId, 'Stop here.', { namespace });
      }
    }
    expect(await run.finished).toMatchObject({ status: 'completed', output: 'after the rollback: Stop here.' });

    // Before: the plan, newest first, naming what cannot be undone.
    expect(dryRun.split('\n').filter(Boolean)).toEqual([
      'rolling back to the end of turn 0:',
      '  turn 3  ledger_append    CANNOT be undone',
      '  turn 3  files_read       nothing to undo',
      '  turn 2  files_write      will be undone',
      '  turn 1  files_write      will be undone',
    ]);
    // After: what happened; exit 1 because something could not be undone.
    expect(done.code).toBe(1);
    expect(done.text).toContain('turn 2  files_write      will be undone → undone');
    expect(done.text).toContain('turn 3  ledger_append    CANNOT be undone');

    expect(await readFile(join(stack.workspace, 'existing.bin'))).toEqual(original);
    expect(existsSync(join(stack.workspace, 'notes/new.txt'))).toBe(false);
    const [rolledBack] = events.filter((e): e is Extract<SessionEvent, { type: 'session.rolled_back' }> => e.type === 'session.rolled_back');
    expect(rolledBack?.steps.map((s) => [s.tool, s.action, s.result ?? null])).toEqual([
      ['ledger_append', 'cannot_undo', null],
      ['files_read', 'nothing_to_undo', null],
      ['files_write', 'undo', 'undone'],
      ['files_write', 'undo', 'undone'],
    ]);
  });

  it('refuses to roll back a session that is not paused', async () => {
    const run = await startSession(nc, { namespace, task: 'Please take a very long step.' });
    for await (const event of run.events) {
      if (event.type === 'tool.call.started') {
        const refused = await cli(nc, ['rollback', run.sessionId, '--to', '0']);
        expect(refused).toEqual({ code: 1, text: 'nothing was executed after turn 0\nrefused: roll back a session that is paused: interrupt it first\n' });
        await cancelSession(nc, run.sessionId, undefined, { namespace });
      }
    }
    expect((await run.finished).status).toBe('cancelled');
  });
});
