import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startSession } from '../../client/sessionClient.ts';
import { SessionEvent } from '../../transport/messages.ts';
import { startProcessStack, type ProcessStack } from '../fixtures/processStack.ts';
import { eventually, startTroupe } from '../fixtures/troupeProcess.ts';

const jsonLines = (output: string) => output.split('\n').filter((l) => l.startsWith('{')).map((l) => SessionEvent.parse(JSON.parse(l)));

describe('durable starts and human control across processes', () => {
  let stack: ProcessStack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('queues a start made while no orchestrator runs, and a late attach replays the whole history', async () => {
    stack = await startProcessStack({ orchestrator: false });
    await stack.startWorker('files');
    const client = startTroupe(['run', '--json', 'Please write the ledger file once.'], stack.env);
    // The orchestrator starts only once the client has queued its start (however long the client took to start).
    await eventually('the client queuing its start', () => client.output().includes('is queued and starts when one does'), 30_000, [client]);
    expect(client.exitCode()).toBeNull();
    await stack.startOrchestrator();
    expect(await client.exited).toBe(0);
    const events = jsonLines(client.output());
    expect(events.at(-1)).toMatchObject({ type: 'session.finished', status: 'completed', output: 'wrote 12 bytes' });

    const late = await stack.troupe(['run', '--attach', events[0]?.sessionId ?? '', '--json']);
    expect(late.code).toBe(0);
    expect(jsonLines(late.output)).toEqual(events);
  }, 60_000);

  it('resolves escalated sessions from the command line: one answered, one taken over in manual mode', async () => {
    stack = await startProcessStack();
    await stack.startWorker('files');
    const answered = await startSession(stack.client, { namespace: stack.namespace, task: 'Please get stuck on the report.' });
    const takenOver = await startSession(stack.client, { namespace: stack.namespace, task: 'Please get stuck on the report.' });
    expect(await answered.finished).toMatchObject({ status: 'escalated' });
    expect(await takenOver.finished).toMatchObject({ status: 'escalated' });

    expect((await stack.troupe(['sessions', 'resume', answered.sessionId, 'It is in notes/report.txt.'])).code).toBe(0);

    expect((await stack.troupe(['sessions', 'takeover', takenOver.sessionId, '--by', 'ops'])).code).toBe(0);
    const call = await stack.troupe(['sessions', 'call', takenOver.sessionId, 'files_write', '{"path":"notes/report.txt","content":"by ops"}']);
    expect(call.code).toBe(0);
    expect((await stack.troupe(['sessions', 'handback', takenOver.sessionId, 'Read it now.'])).code).toBe(0);

    const outcome = async (id: string) => {
      for (let i = 0; i < 100; i++) {
        const shown = await stack!.troupe(['sessions', 'show', id, '--json']);
        const checkpoint = JSON.parse(shown.output.trim().split('\n').at(-1) ?? '{}');
        if (checkpoint.status === 'ended') return checkpoint.snapshot.context.outcome;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`session ${id} did not end`);
    };
    expect(await outcome(answered.sessionId)).toMatchObject({ status: 'completed', output: 'back in control; I was told: It is in notes/report.txt.' });
    expect(await outcome(takenOver.sessionId)).toMatchObject({ status: 'completed', output: expect.stringContaining('Their instruction: Read it now.') });
    expect(await readFile(join(stack.workspace, 'notes/report.txt'), 'utf8')).toBe('by ops');
  }, 90_000);

  it('is steered from the command line: interrupt, rollback and redirect, each in the final record', async () => {
    stack = await startProcessStack();
    await stack.startWorker('files');
    await writeFile(join(stack.workspace, 'ledger.txt'), 'original');
    const current = stack;
    // The model holds its first answer until the person's interrupt is in: the session cannot run past
    // its next safe point before the command line acts, however slowly the command's process starts.
    current.model.pause();
    const run = await startSession(current.client, { namespace: current.namespace, task: 'Please edit the ledger from the command line.' });
    for await (const event of run.events) {
      if (event.type === 'turn.started' && event.turn === 1) {
        try {
          expect((await current.troupe(['sessions', 'interrupt', run.sessionId])).code).toBe(0);
        } finally {
          current.model.resume();
        }
      }
      if (event.type === 'session.interrupted' && !(await readFile(join(current.workspace, 'ledger.txt'), 'utf8')).startsWith('original')) {
        const rolledBack = await current.troupe(['sessions', 'rollback', run.sessionId, '--to', '0', '--by', 'ops']);
        expect(rolledBack.output).toContain('turn 1  files_write      will be undone → undone');
        expect((await current.troupe(['sessions', 'redirect', run.sessionId, 'Report and stop.'])).code).toBe(0);
      }
    }
    expect(await run.finished).toMatchObject({ status: 'completed', output: 'told: Report and stop.' });
    expect(await readFile(join(stack.workspace, 'ledger.txt'), 'utf8')).toBe('original');
    const shown = await stack.troupe(['sessions', 'show', run.sessionId]);
    expect(shown.output).toMatch(/interventions:\n {2}turn 1 {2}interrupted\n {2}turn 1 {2}rolled_back by ops: to turn 0\n {2}turn 1 {2}redirected: Report and stop\./);
  }, 60_000);
});
