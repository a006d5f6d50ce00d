import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointStore } from '../../actors/durability/checkpointStore.ts';
import type { Orchestrator } from '../../actors/orchestrator/orchestrator.ts';
import { startWorker, type ToolWorker } from '../../actors/worker/toolWorker.ts';
import { assistantAgent } from '../../agents/assistant.ts';
import { approveSession, SessionRejectedError, startSession } from '../../client/sessionClient.ts';
import { calcTools } from '../../domains/calc/calcTools.ts';
import type { SessionContext } from '../../machines/sessionContext.ts';
import { SessionStartReply, type SessionEvent } from '../../transport/messages.ts';
import { wireNames } from '../../transport/subjects.ts';
import { decodeWireMessage, encodeWireMessage } from '../../transport/wireMessage.ts';
import { startInProcessStack, type InProcessStack } from '../fixtures/inProcessStack.ts';
import { vaultTool } from '../fixtures/testTools.ts';

/**
 * Budgets a client asks for when it starts a session: tighter than its agent's, never looser,
 * carried by queued starts and kept across a resume. The scripts need two model calls (calcOnce:
 * compute, then answer; vaultApproval: open the vault, then answer), so `maxSteps: 1` stops them
 * before their answer, where the agent's own budgets would let them complete.
 */
describe('a session started with budgets of its own', () => {
  let stack: InProcessStack;
  let nc: NatsConnection;
  let orchestrator: Orchestrator | undefined;
  const workers: ToolWorker[] = [];
  const oneStep = { maxSteps: 1 };

  beforeAll(async () => {
    stack = await startInProcessStack();
    nc = await stack.connection('client');
    for (const [domain, tools] of [['calc', calcTools()], ['vault', [vaultTool()]]] as const) {
      workers.push(await startWorker({ namespace: stack.namespace, domain, tools: [...tools], nats: await stack.connection(`worker-${domain}`) }));
    }
  });
  afterAll(async () => {
    for (const worker of workers) await worker.stop();
    await stack?.stop();
  });

  // First: no orchestrator runs yet, so the start waits in the queue.
  it('keeps the budgets of a start queued while no orchestrator ran', async () => {
    const run = await startSession(nc, { namespace: stack.namespace, task: 'Please compute two plus two.', budgets: oneStep });
    expect(run.queued).toBe(true);
    orchestrator = await stack.startOrchestrator();
    expect(await run.finished).toMatchObject({ status: 'budget_exhausted', budget: 'maxSteps', stopReason: 'budget exhausted: maxSteps', steps: 1, toolCalls: 1 });
  });

  it('ends budget_exhausted when the trajectory needs more steps than the start allows', async () => {
    const run = await startSession(nc, { namespace: stack.namespace, task: 'Please compute two plus two.', budgets: oneStep });
    expect(run.queued).toBe(false);
    expect(await run.finished).toMatchObject({ status: 'budget_exhausted', budget: 'maxSteps', steps: 1, toolCalls: 1 });
    // The agent's own budgets let the same task complete.
    expect(await (await startSession(nc, { namespace: stack.namespace, task: 'Please compute two plus two.' })).finished).toMatchObject({ status: 'completed', steps: 2 });
  });

  it('refuses a start asking more than its agent allows as invalid, naming each budget, the value asked and the limit', async () => {
    const { maxSteps, maxCostUsd } = assistantAgent.budgets;
    const error = await startSession(nc, {
      namespace: stack.namespace, task: 'Please compute two plus two.', budgets: { maxSteps: maxSteps + 1, maxCostUsd: maxCostUsd * 10, maxTotalTokens: 1_000 },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SessionRejectedError);
    expect(error).toMatchObject({
      code: 'invalid',
      reason: `The start asks for more than agent "assistant" allows: maxSteps ${maxSteps + 1} (its limit is ${maxSteps}), maxCostUsd ${maxCostUsd * 10} (its limit is ${maxCostUsd}). A start may only lower its agent's budgets.`,
    });
  });

  it('refuses malformed budgets on the wire as invalid, with the issue, and goes on taking starts', async () => {
    const subject = wireNames(stack.namespace).subjects.sessionStart;
    const bad: [unknown, RegExp][] = [
      [{ maxSteps: 0 }, /budgets\.maxSteps/],
      [{ maxSteps: 2.5 }, /budgets\.maxSteps/],
      [{ maxCostUsd: -1 }, /budgets\.maxCostUsd/],
      [{ maxWallClockMs: 2 ** 31 }, /budgets\.maxWallClockMs: must be at most 2147483647 ms/],
      [{ maxSteps: '3' }, /budgets\.maxSteps/],
      [{ maxSpend: 1 }, /budgets.*maxSpend/],
      ['tight', /budgets/],
      [[1], /budgets/],
      [null, /budgets/],
    ];
    for (const [i, [budgets, issue]] of bad.entries()) {
      const start = { type: 'session.start', sessionId: `bad-budgets-${i}`, task: 'Please compute two plus two.', budgets };
      const decoded = decodeWireMessage(SessionStartReply, (await nc.request(subject, encodeWireMessage(start), { timeout: 5_000 })).data, 'the reply');
      expect(decoded).toMatchObject({ ok: true, value: { type: 'session.rejected', sessionId: null, code: 'invalid', reason: expect.stringMatching(issue) } });
    }
    expect(await (await startSession(nc, { namespace: stack.namespace, task: 'Please compute two plus two.', budgets: oneStep })).finished).toMatchObject({ status: 'budget_exhausted' });
  });

  // The budgets live in the session's checkpoint, not in its agent: another orchestrator that resumes
  // it, with the agent's own budgets at hand, must run it with the start's.
  it('keeps its budgets when another orchestrator resumes it', async () => {
    const run = await startSession(nc, { namespace: stack.namespace, task: 'Please open the vault.', budgets: oneStep });
    const events: SessionEvent[] = [];
    let requests = 0;
    for await (const event of run.events) {
      events.push(event);
      if (event.type !== 'approval.requested') continue;
      requests += 1;
      if (requests === 1) {
        // Handed over while it waits for a person; the next orchestrator takes it and asks again.
        await orchestrator?.stop({ graceMs: 0 });
        orchestrator = await stack.startOrchestrator();
      } else {
        const stored = await (await CheckpointStore.open(nc, wireNames(stack.namespace))).read(run.sessionId);
        expect((stored?.checkpoint.snapshot.context as SessionContext).budgets).toEqual({ ...assistantAgent.budgets, maxSteps: 1 });
        await approveSession(nc, run.sessionId, { namespace: stack.namespace, by: 'dana' });
      }
    }
    expect(events.filter((e) => e.type === 'session.resumed')).toHaveLength(1);
    expect(await run.finished).toMatchObject({ status: 'budget_exhausted', budget: 'maxSteps', steps: 1, toolCalls: 1 });
  });
});
