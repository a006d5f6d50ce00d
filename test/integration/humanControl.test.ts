import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { CheckpointStore } from '../../actors/durability/checkpointStore.ts';
import type { Orchestrator } from '../../actors/orchestrator/orchestrator.ts';
import type { SessionContext } from '../../machines/sessionContext.ts';
import { startWorker, type ToolWorker } from '../../actors/worker/toolWorker.ts';
import {
  approveSession, cancelSession, denySession, interruptSession, redirectSession, startSession, type SessionRun,
} from '../../client/sessionClient.ts';
import { filesTools } from '../../domains/files/filesTools.ts';
import { defineTool } from '../../tools/defineTool.ts';
import { vaultTool } from '../fixtures/testTools.ts';
import { ToolReply, type SessionEvent } from '../../transport/messages.ts';
import { isNoResponders } from '../../transport/natsConnection.ts';
import { wireNames } from '../../transport/subjects.ts';
import { startInProcessStack, type InProcessStack } from '../fixtures/inProcessStack.ts';
import { testNamespace } from '../fixtures/testNamespace.ts';
import { ofType } from '../fixtures/eventsOfType.ts';

const namespace = testNamespace();


/** Follows a run, acting on events as they come; resolves with every event. */
async function follow(run: SessionRun, onEvent: (event: SessionEvent) => Promise<void> | void = () => {}) {
  const events: SessionEvent[] = [];
  for await (const event of run.events) {
    events.push(event);
    await onEvent(event);
  }
  return events;
}

describe('a person in charge: approvals, interrupts, redirects, cancellation', () => {
  let stack: InProcessStack;
  let nc: NatsConnection;
  let orchestrator: Orchestrator;
  const workers: ToolWorker[] = [];
  let vaultOpenings = 0;
  let slowAborted = false;
  let slowStarted = false;

  const vaultOpen = vaultTool(() => (vaultOpenings += 1));
  const slowWait = defineTool({
    name: 'slow_wait',
    description: 'Waits.',
    input: z.object({ ms: z.number().int().positive() }),
    output: z.object({ waited: z.number() }),
    timeoutMs: 60_000,
    handler: async ({ ms }, { signal }) => {
      slowStarted = true;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        signal.addEventListener('abort', () => {
          slowAborted = true;
          clearTimeout(timer);
          resolve();
        });
      });
      return { waited: ms };
    },
  });
  const options = {
    approvalTimeoutMs: 1_500,
    // The deployment's own rule: writes outside scratch/ need a person.
    approvalPolicy: ({ tool, arguments: args }: { tool: string; arguments: Record<string, unknown> }) =>
      tool === 'files_write' && !String(args.path).startsWith('scratch/'),
  };

  beforeAll(async () => {
    stack = await startInProcessStack();
    nc = await stack.connection('person');
    for (const [domain, tools] of [['vault', [vaultOpen]], ['slow', [slowWait]], ['files', filesTools({ workspace: stack.workspace })]] as const) {
      workers.push(await startWorker({ namespace, domain, tools: [...tools], nats: await stack.connection(`worker-${domain}`) }));
    }
    orchestrator = await stack.startOrchestrator(options);
  });
  afterAll(async () => {
    for (const worker of workers) await worker.stop();
    await stack?.stop();
  });

  /** What people did, as the session's last checkpoint records it (written just after it ends). */
  async function finalInterventions(sessionId: string) {
    const store = await CheckpointStore.open(nc, wireNames(namespace));
    for (let i = 0; i < 50; i++) {
      const stored = await store.read(sessionId);
      if (stored?.checkpoint.status === 'ended') return (stored.checkpoint.snapshot.context as SessionContext).interventions;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`session ${sessionId} has no final checkpoint`);
  }

  it('waits for approval with the exact call, runs it once approved, and records who approved', async () => {
    vaultOpenings = 0;
    const run = await startSession(nc, { namespace, task: 'Please open the vault.' });
    const events = await follow(run, async (event) => {
      if (event.type === 'approval.requested') expect(await approveSession(nc, run.sessionId, { namespace, by: 'alice' })).toMatchObject({ accepted: true });
    });
    expect(await run.finished).toMatchObject({ status: 'completed', output: 'vault said {"ok":true,"result":{"opened":"north"}}' });
    expect(ofType(events, 'approval.requested')[0]?.calls).toEqual([expect.objectContaining({ tool: 'vault_open', arguments: { door: 'north' } })]);
    expect(ofType(events, 'approval.decided')).toEqual([expect.objectContaining({ decision: 'approved', by: 'alice' })]);
    expect(vaultOpenings).toBe(1);
    expect((await finalInterventions(run.sessionId)).map((i) => [i.kind, i.by])).toEqual([['approved', 'alice']]);
  });

  it('tells the model when a person denies the call, and never runs it', async () => {
    vaultOpenings = 0;
    const run = await startSession(nc, { namespace, task: 'Please open the vault.' });
    await follow(run, async (event) => {
      if (event.type === 'approval.requested') await denySession(nc, run.sessionId, { namespace, by: 'bob', reason: 'not today' });
    });
    const { output } = await run.finished;
    expect(JSON.parse((output ?? '').replace('vault said ', ''))).toMatchObject({
      ok: false, error: { code: 'FORBIDDEN', message: 'A person did not approve this call to vault_open: not today' },
    });
    expect(vaultOpenings).toBe(0);
  });

  it('denies a call whose approval expires, and says so', async () => {
    const run = await startSession(nc, { namespace, task: 'Please open the vault.' });
    const events = await follow(run);
    expect((await run.finished).output).toContain('the approval expired before anyone decided');
    expect(ofType(events, 'approval.decided')).toEqual([expect.objectContaining({ decision: 'expired' })]);
  });

  it('has the worker refuse a call that requires approval but carries none', async () => {
    const request = { type: 'tool.request', sessionId: 'rogue', callId: 'rogue-1', tool: 'vault_open', arguments: { door: 'south' }, deadline: Date.now() + 5_000 };
    const reply = ToolReply.parse((await nc.request(wireNames(namespace).subjects.tool('vault', 'vault_open'), JSON.stringify(request), { timeout: 5_000 })).json());
    expect(reply).toMatchObject({ status: 'error', failure: { code: 'FORBIDDEN' } });
  });

  it('applies the deployment policy: a write in scratch/ runs, one outside waits for a person', async () => {
    const run = await startSession(nc, { namespace, task: 'Please write under a policy.' });
    const events = await follow(run, async (event) => {
      if (event.type === 'approval.requested') await approveSession(nc, run.sessionId, { namespace, by: 'carol' });
    });
    expect((await run.finished).output).toBe('scratch true, report true');
    expect(ofType(events, 'approval.requested')[0]?.calls.map((c) => c.arguments.path)).toEqual(['report.txt']);
    expect(await readFile(join(stack.workspace, 'report.txt'), 'utf8')).toBe('final');
  });

  it('pauses at the next safe point when interrupted, and goes on with a person’s new instruction', async () => {
    const run = await startSession(nc, { namespace, task: 'Please take a slow step.' });
    const events = await follow(run, async (event) => {
      if (event.type === 'tool.call.started') expect(await interruptSession(nc, run.sessionId, { namespace, by: 'erin' })).toMatchObject({ accepted: true });
      if (event.type === 'session.interrupted') await redirectSession(nc, run.sessionId, 'Summarise what you have instead.', { namespace, by: 'fay' });
    });
    expect(await run.finished).toMatchObject({ status: 'completed', output: 'heard: Summarise what you have instead.' });
    // The turn in progress finished before the pause: its tool call was answered, then the session waited.
    const order = events.map((e) => e.type).filter((t) => ['tool.call.finished', 'session.interrupted', 'session.redirected', 'turn.started'].includes(t));
    expect(order).toEqual(['turn.started', 'tool.call.finished', 'session.interrupted', 'session.redirected', 'turn.started']);
    // Who did each, as each command said.
    expect((await finalInterventions(run.sessionId)).map((i) => [i.turn, i.kind, i.by])).toEqual([[1, 'interrupted', 'erin'], [1, 'redirected', 'fay']]);
    expect(ofType(events, 'session.redirected')[0]?.by).toBe('fay');
  });

  it('cancels the tool call in flight on the worker when the session is cancelled', async () => {
    slowAborted = false;
    slowStarted = false;
    const run = await startSession(nc, { namespace, task: 'Please take a very long step.' });
    await follow(run, async (event) => {
      if (event.type !== 'tool.call.started') return;
      // Cancel once the handler runs on the worker: that is the call this test needs in flight.
      const deadline = Date.now() + 10_000;
      while (!slowStarted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      await cancelSession(nc, run.sessionId, 'changed my mind', { namespace });
    });
    expect(await run.finished).toMatchObject({ status: 'cancelled', stopReason: 'cancelled: changed my mind' });
    const deadline = Date.now() + 5_000;
    while (!slowAborted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(slowAborted).toBe(true);
    expect((await finalInterventions(run.sessionId)).map((i) => [i.kind, i.detail])).toEqual([['cancelled', 'changed my mind']]);
  });

  // Regression (wire fuzzing): the session's control subject was unsubscribed the moment it ended, so
  // commands already on their way were dropped and their senders waited for a timeout.
  it('answers every command that arrives as the session ends, never leaving its sender to time out', async () => {
    const run = await startSession(nc, { namespace, task: 'Please open the vault.' });
    const subject = wireNames(namespace).subjects.sessionControl(run.sessionId);
    const send = (command: object) => nc.request(subject, JSON.stringify(command), { timeout: 2_000 }).then(
      (msg) => JSON.parse(new TextDecoder().decode(msg.data)) as unknown,
      (error: unknown) => (isNoResponders(error) ? 'no responders' : String(error)),
    );
    let replies: unknown[] = [];
    await follow(run, async (event) => {
      if (event.type !== 'approval.requested') return;
      // One burst: the cancel ends the session while the others are already on their way.
      replies = await Promise.all([send({ type: 'session.cancel' }), ...Array.from({ length: 20 }, () => send({ type: 'session.interrupt' }))]);
    });
    expect(replies[0]).toEqual({ type: 'session.control.ack', accepted: true });
    // Each answered as ended, or sent after the subject was gone: either way, at once.
    const ended = { type: 'session.control.ack', accepted: false, reason: 'the session has ended' };
    for (const reply of replies.slice(1)) expect([ended, 'no responders']).toContainEqual(reply);
    expect((await run.finished).status).toBe('cancelled');
  });

  it('keeps a session waiting for approval across an orchestrator restart', async () => {
    vaultOpenings = 0;
    const run = await startSession(nc, { namespace, task: 'Please open the vault.' });
    let requests = 0;
    const events = await follow(run, async (event) => {
      if (event.type !== 'approval.requested') return;
      requests += 1;
      if (requests === 1) {
        // The orchestrator stops and hands the session over; another takes it and asks again.
        await orchestrator.stop({ graceMs: 0 });
        orchestrator = await stack.startOrchestrator(options);
      } else {
        await approveSession(nc, run.sessionId, { namespace, by: 'dana' });
      }
    });
    expect(await run.finished).toMatchObject({ status: 'completed', output: 'vault said {"ok":true,"result":{"opened":"north"}}' });
    expect(ofType(events, 'session.resumed')).toHaveLength(1);
    expect(requests).toBe(2);
    expect(vaultOpenings).toBe(1);
  });
});
