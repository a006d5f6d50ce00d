import { mkdtempSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startSession, type SessionRun } from '../../client/sessionClient.ts';
import type { SessionEvent } from '../../transport/messages.ts';
import { executions, startProcessStack, type LogLine, type ProcessStack } from '../fixtures/processStack.ts';
import { eventually, processStartTimeoutMs } from '../fixtures/troupeProcess.ts';
import { ofType } from '../fixtures/eventsOfType.ts';

// Attempts time out fast so a dead worker is noticed in about a second, not the default 30.
const fastDeadlines = { TROUPE_TOOL_TIMEOUT_MS: '1200' };

/** Follows a session, handing each event to `onEvent` as it arrives; resolves with all of them. */
async function follow(run: SessionRun, onEvent: (event: SessionEvent) => void | Promise<void> = () => {}): Promise<SessionEvent[]> {
  const events: SessionEvent[] = [];
  for await (const event of run.events) {
    events.push(event);
    await onEvent(event);
  }
  return events;
}

const replays = (logs: LogLine[]) => logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('replaying the recorded outcome')).length;

// Each test starts a stack of its own: its time includes processes starting, which on a loaded
// machine takes up to processStartTimeoutMs, besides the minute the test's own work may take.
const withStackStart = processStartTimeoutMs + 60_000;

describe('tool-call failures across processes', () => {
  let stack: ProcessStack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('survives a worker killed with SIGKILL mid-call: the call is retried on another member and runs once', async () => {
    stack = await startProcessStack({ env: fastDeadlines });
    // The first member holds every call it gets (it never runs one) until it is killed with it.
    const doomed = await stack.startWorker('files', { TROUPE_FAULTS: JSON.stringify({ files_write: [{ kind: 'delay', delayMs: 600_000 }] }) });
    const run = await startSession(stack.client, { namespace: stack.namespace, task: 'Please write the ledger file once.' });
    let survivor: Awaited<ReturnType<ProcessStack['startWorker']>> | undefined;
    const events = await follow(run, async (event) => {
      if (event.type !== 'tool.call.started' || !stack) return;
      const { orchestrator } = stack;
      await eventually('the doomed member holding the call', () => stack?.logsOf(doomed).some((l) => l.msg === 'injecting fault: delay') === true, 30_000, [doomed]);
      // The orchestrator waits, frozen, while the other member starts and this one dies: its retries
      // must not run out before the new member is up, however long a process takes to start.
      orchestrator.pause();
      try {
        survivor = await stack.startWorker('files');
        doomed.child.kill('SIGKILL');
        await doomed.exited;
      } finally {
        orchestrator.resume();
      }
    });
    const finished = await run.finished;
    expect(finished).toMatchObject({ status: 'completed', output: 'wrote 12 bytes' });
    expect(await doomed.exited).toBe('SIGKILL');
    expect(executions(stack.logsOf(doomed), 'files_write')).toBe(0);
    expect(executions(stack.logsOf(survivor as never), 'files_write')).toBe(1);
    expect(ofType(events, 'tool.call.retrying').length).toBeGreaterThanOrEqual(1);
    expect(ofType(events, 'tool.call.finished')[0]).toMatchObject({ status: 'ok', servedBy: 'files_write' });
    expect(await readFile(join(stack.workspace, 'ledger.txt'), 'utf8')).toBe('written once');
  }, withStackStart);

  it('crashes one member of a pool sharing fault counts, not each in turn: the retry runs on the other member', async () => {
    stack = await startProcessStack({ env: fastDeadlines });
    const counts = mkdtempSync(join(tmpdir(), 'troupe-fault-counts-'));
    // Without the shared directory each member would crash once, the retry killing the second.
    const crashOnce = { TROUPE_FAULTS: JSON.stringify({ files_write: [{ kind: 'crash', times: 1 }] }), TROUPE_FAULT_COUNTS_DIR: counts };
    const members = [await stack.startWorker('files', crashOnce), await stack.startWorker('files', crashOnce)];
    const run = await startSession(stack.client, { namespace: stack.namespace, task: 'Please write the ledger file once.' });
    const events = await follow(run);
    expect(await run.finished).toMatchObject({ status: 'completed', output: 'wrote 12 bytes' });
    const crashed = members.filter((m) => m.child.signalCode === 'SIGKILL');
    const survivors = members.filter((m) => m.child.exitCode === null && m.child.signalCode === null);
    expect(crashed).toHaveLength(1);
    expect(survivors).toHaveLength(1);
    expect(executions(stack.logsOf(survivors[0] as never), 'files_write')).toBe(1);
    expect(readdirSync(counts)).toEqual(['files_write[0].1']);
    expect(ofType(events, 'tool.call.retrying').length).toBeGreaterThanOrEqual(1);
    expect(await readFile(join(stack.workspace, 'ledger.txt'), 'utf8')).toBe('written once');
  }, withStackStart);

  it('never runs a side-effecting call twice when its reply is lost: the retry replays the recorded outcome', async () => {
    stack = await startProcessStack({ env: fastDeadlines });
    const worker = await stack.startWorker('files', { TROUPE_FAULTS: JSON.stringify({ files_write: [{ kind: 'drop_reply', times: 1 }] }) });
    const run = await startSession(stack.client, { namespace: stack.namespace, task: 'Please write the ledger file once.' });
    const events = await follow(run);
    expect(await run.finished).toMatchObject({ status: 'completed', output: 'wrote 12 bytes' });
    const logs = stack.logsOf(worker);
    expect(executions(logs, 'files_write')).toBe(1);
    expect(replays(logs)).toBe(1);
    expect(ofType(events, 'tool.call.retrying')).toHaveLength(1);
    expect(ofType(events, 'tool.call.retrying')[0]?.failure.code).toBe('TIMEOUT');
  }, withStackStart);

  it('retries a flaky pool with backoff until it answers, each retry an event', async () => {
    stack = await startProcessStack();
    await stack.startWorker('calc', { TROUPE_FAULTS: JSON.stringify({ calc_evaluate: [{ kind: 'error', code: 'UNAVAILABLE', times: 2 }] }) });
    const run = await startSession(stack.client, { namespace: stack.namespace, task: 'Please compute two plus two.' });
    const events = await follow(run);
    expect(await run.finished).toMatchObject({ status: 'completed', output: 'the sum is 4' });
    const retries = ofType(events, 'tool.call.retrying');
    expect(retries.map((r) => [r.attempt, r.failure.code])).toEqual([[2, 'UNAVAILABLE'], [3, 'UNAVAILABLE']]);
    expect(retries[1]?.delayMs).toBeGreaterThanOrEqual(retries[0]?.delayMs ?? 0);
    expect(ofType(events, 'tool.call.finished')[0]).toMatchObject({ status: 'ok', attempts: 3 });
  }, withStackStart);

  it('tells the model INVALID_INPUT at once, without retrying', async () => {
    stack = await startProcessStack();
    await stack.startWorker('calc', { TROUPE_FAULTS: JSON.stringify({ calc_evaluate: [{ kind: 'error', code: 'INVALID_INPUT', message: 'no', times: 1 }] }) });
    const run = await startSession(stack.client, { namespace: stack.namespace, task: 'Please compute two plus two.' });
    const events = await follow(run);
    expect(ofType(events, 'tool.call.retrying')).toHaveLength(0);
    expect(ofType(events, 'tool.call.finished')[0]).toMatchObject({ status: 'error', attempts: 1, failure: { code: 'INVALID_INPUT' } });
  }, withStackStart);

  it('drains a worker on SIGTERM: the call in flight finishes and the worker exits cleanly', async () => {
    stack = await startProcessStack();
    const worker = await stack.startWorker('calc', { TROUPE_FAULTS: JSON.stringify({ calc_evaluate: [{ kind: 'delay', delayMs: 1_500, times: 1 }] }) });
    const run = await startSession(stack.client, { namespace: stack.namespace, task: 'Please compute two plus two.' });
    const events = await follow(run, async (event) => {
      if (event.type === 'tool.call.started') {
        await new Promise((r) => setTimeout(r, 300));
        worker.child.kill('SIGTERM');
      }
    });
    expect(await run.finished).toMatchObject({ status: 'completed', output: 'the sum is 4' });
    expect(ofType(events, 'tool.call.finished')[0]).toMatchObject({ status: 'ok', attempts: 1 });
    expect(await worker.exited).toBe(0);
  }, withStackStart);

  it('survives a nats-server restart in the middle of a session', async () => {
    stack = await startProcessStack();
    await stack.startWorker('calc', { TROUPE_FAULTS: JSON.stringify({ calc_evaluate: [{ kind: 'delay', delayMs: 2_000, times: 1 }] }) });
    const run = await startSession(stack.client, { namespace: stack.namespace, task: 'Please compute two plus two.' });
    const current = stack;
    await follow(run, async (event) => {
      if (event.type === 'tool.call.started') current.nats = await current.nats.restart();
    });
    expect(await run.finished).toMatchObject({ status: 'completed', output: 'the sum is 4' });
  }, withStackStart);
});
