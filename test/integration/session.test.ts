import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Orchestrator } from '../../actors/orchestrator/orchestrator.ts';
import { startWorker, type ToolWorker } from '../../actors/worker/toolWorker.ts';
import { attachSession, NoOrchestratorError, SessionRejectedError, startSession } from '../../client/sessionClient.ts';
import { calcTools } from '../../domains/calc/calcTools.ts';
import { filesTools } from '../../domains/files/filesTools.ts';
import type { SessionEvent } from '../../transport/messages.ts';
import { startInProcessStack, type InProcessStack } from '../fixtures/inProcessStack.ts';
import { latePing, parityCheckEven, slowWait } from '../fixtures/testTools.ts';
import { testNamespace } from '../fixtures/testNamespace.ts';

const namespace = testNamespace();

async function collect(events: AsyncIterable<SessionEvent>): Promise<SessionEvent[]> {
  const all: SessionEvent[] = [];
  for await (const event of events) all.push(event);
  return all;
}

describe('a session across a real nats-server, the scripted model over HTTP, and worker pools', () => {
  let stack: InProcessStack;
  let orchestrator: Orchestrator;
  const workers: ToolWorker[] = [];

  beforeAll(async () => {
    stack = await startInProcessStack();
    // Two members in the calc pool, one in files, one in parity: pools are per domain.
    for (const [domain, tools] of [
      ['calc', calcTools()],
      ['calc', calcTools()],
      ['files', filesTools({ workspace: stack.workspace })],
      ['parity', [parityCheckEven]],
    ] as const) {
      workers.push(await startWorker({ namespace, domain, tools: [...tools], nats: await stack.connection(`worker-${domain}`) }));
    }
    orchestrator = await stack.startOrchestrator();
  });

  afterAll(async () => {
    for (const worker of workers) await worker.stop();
    await stack?.stop();
  });

  it('discovers the tools of every running pool', () => {
    expect(orchestrator.catalog.list().map((t) => t.name)).toEqual(
      expect.arrayContaining(['calc_evaluate', 'files_list', 'files_read', 'files_write', 'parity_check_even']),
    );
    expect(orchestrator.catalog.get('calc_evaluate')?.instances.size).toBe(2);
  });

  it('completes a session that calls tools in two pools, with every event in order', async () => {
    const nc = await stack.connection('client');
    const run = await startSession(nc, { namespace, task: 'Please use two pools.' });
    const events = await collect(run.events);
    const finished = await run.finished;
    expect(finished).toMatchObject({ status: 'completed', stopReason: 'answered', steps: 3, toolCalls: 3 });
    expect(finished.output).toBe('calc says 42 and the file says forty-two');
    expect(finished.usage.inputTokens).toBeGreaterThan(0);
    expect(finished.usage.costUsd).toBeGreaterThan(0);
    expect(finished.traceId).toBe(run.traceId);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i));
    expect(events[0]?.type).toBe('session.started');
    expect(events.filter((e) => e.type === 'tool.call.finished').map((e) => (e as { tool: string }).tool).sort()).toEqual(
      ['calc_evaluate', 'files_read', 'files_write'],
    );
    expect(await readFile(join(stack.workspace, 'notes/answer.txt'), 'utf8')).toBe('forty-two');
  });

  it('runs concurrent sessions independently', async () => {
    const nc = await stack.connection('client-concurrent');
    const runs = await Promise.all(Array.from({ length: 6 }, () => startSession(nc, { namespace, task: 'Please use two pools.' })));
    const results = await Promise.all(runs.map((r) => r.finished));
    expect(results.map((r) => r.status)).toEqual(Array(6).fill('completed'));
    expect(new Set(results.map((r) => r.sessionId)).size).toBe(6);
    expect(new Set(results.map((r) => r.traceId)).size).toBe(6);
  });

  it('returns validation failures from both sides to the model as structured errors', async () => {
    const nc = await stack.connection('client-validation');
    const run = await startSession(nc, { namespace, task: 'Please send invalid arguments.' });
    const events = await collect(run.events);
    const finished = await run.finished;
    expect(finished.status).toBe('completed');
    const [orchestratorSide, workerSide, jsonSide] = (finished.output ?? '').split(' | ').map((part) => JSON.parse(part.replace(/^[a-z]+ said /, '')));
    // Caught before sending: the advertised schema requires `expression` and has no `expr`.
    expect(orchestratorSide).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', retryable: false } });
    expect(orchestratorSide.error.issues.map((i: { path: string }) => i.path)).toContain('expression');
    // Caught by the worker: the refinement only its zod schema knows.
    expect(workerSide).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', issues: [{ path: 'n', message: 'must be an even number' }] } });
    expect(jsonSide).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', issues: [{ code: 'invalid_json' }] } });
    expect(events.filter((e) => e.type === 'tool.call.rejected').map((e) => (e as { tool: string }).tool)).toEqual(['calc_evaluate', 'calc_evaluate']);
    expect(events.some((e) => e.type === 'tool.call.finished' && e.tool === 'parity_check_even' && e.status === 'error')).toBe(true);
  });

  it('picks up a pool started after the orchestrator', async () => {
    expect(orchestrator.catalog.get('late_ping')).toBeUndefined();
    const late = await startWorker({ namespace, domain: 'late', tools: [latePing], nats: await stack.connection('worker-late') });
    try {
      const run = await startSession(await stack.connection('client-late'), { namespace, task: 'Please call the late pool.' });
      const finished = await run.finished;
      expect(finished).toMatchObject({ status: 'completed', output: 'late pool said HELLO' });
    } finally {
      await late.stop();
    }
  });

  it('tells the model a pool with no running worker is UNAVAILABLE instead of waiting', async () => {
    const parity = workers.find((w) => w.domain === 'parity');
    await parity?.stop();
    const run = await startSession(await stack.connection('client-gone'), { namespace, task: 'Please call a pool that is gone.' });
    const finished = await run.finished;
    expect(finished.status).toBe('completed');
    const answer = JSON.parse((finished.output ?? '').replace('the tool said ', ''));
    expect(answer).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE', retryable: true } });
  });

  it('refuses an unknown agent and a malformed task with a reason', async () => {
    const nc = await stack.connection('client-refused');
    await expect(startSession(nc, { namespace, task: 'hi', agent: 'nobody' })).rejects.toThrow(SessionRejectedError);
    await expect(startSession(nc, { namespace, task: '   ' })).rejects.toThrow(/the task is empty/);
  });

  it('cancels a running session on request while a tool call is in flight', async () => {
    const slow = await startWorker({ namespace, domain: 'slow', tools: [slowWait], nats: await stack.connection('worker-slow') });
    try {
      const run = await startSession(await stack.connection('client-cancel'), { namespace, task: 'Please wait on a slow tool.' });
      for await (const event of run.events) if (event.type === 'tool.call.started') break;
      expect(await run.cancel('test cancels')).toBe(true);
      const finished = await run.finished;
      expect(finished).toMatchObject({ status: 'cancelled', stopReason: 'cancelled: test cancels', toolCalls: 0 });
    } finally {
      await slow.stop();
    }
  });
});

describe('sessions without an orchestrator running', () => {
  let stack: InProcessStack;
  beforeAll(async () => {
    stack = await startInProcessStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('says no orchestrator is running when asked not to queue', async () => {
    await expect(startSession(await stack.connection('lonely'), { namespace, task: 'anything', whenNoOrchestrator: 'fail' })).rejects.toThrow(NoOrchestratorError);
  });

  it('queues a start while no orchestrator runs; the first one to start takes it, and a late client replays everything', async () => {
    const nc = await stack.connection('early-client');
    const run = await startSession(nc, { namespace, task: 'Please use two pools.' });
    expect(run.queued).toBe(true);
    expect(run.traceId).toBeUndefined();
    const workers = [
      await startWorker({ namespace, domain: 'calc', tools: calcTools(), nats: await stack.connection('late-calc') }),
      await startWorker({ namespace, domain: 'files', tools: filesTools({ workspace: stack.workspace }), nats: await stack.connection('late-files') }),
    ];
    try {
      await stack.startOrchestrator();
      const events = await collect(run.events);
      const finished = await run.finished;
      expect(finished).toMatchObject({ status: 'completed', output: 'calc says 42 and the file says forty-two' });
      expect(run.traceId).toBe(finished.traceId);

      // A client that attaches after the end sees the whole history, in order.
      const late = await attachSession(await stack.connection('late-client'), run.sessionId, { namespace });
      expect(late.replayable).toBe(true);
      expect(await collect(late.events)).toEqual(events);
    } finally {
      for (const worker of workers) await worker.stop();
    }
  });
});
