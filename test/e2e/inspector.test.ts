import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveSession, startSession } from '../../client/sessionClient.ts';
import { orchestratorAnswers } from '../../client/orchestratorProbe.ts';
import { startProcessStack, type ProcessStack } from '../fixtures/processStack.ts';
import { eventually, startTroupe, type TroupeProcess, processStartTimeoutMs } from '../fixtures/troupeProcess.ts';
import { freePort } from '../../testing/natsServer.ts';

interface InspectionMessage {
  type: string;
  name?: string;
  sessionId?: string;
  parentId?: string;
  snapshot?: { value?: unknown; context?: Record<string, unknown> };
}

describe('the statechart inspector (--inspect)', () => {
  let stack: ProcessStack;
  let orchestrator: TroupeProcess;
  let port: number;
  const received: InspectionMessage[] = [];
  let socket: WebSocket;

  beforeAll(async () => {
    stack = await startProcessStack({ orchestrator: false });
    await Promise.all([stack.startWorker('calc'), stack.startWorker('db'), stack.startWorker('files'), stack.startWorker('refunds')]);
    port = await freePort();
    orchestrator = startTroupe(['orchestrator', '--inspect', '--inspect-port', String(port)], stack.env);
    await eventually('the orchestrator answering', () => orchestratorAnswers(stack.client, { namespace: stack.namespace }), processStartTimeoutMs, [orchestrator]);
    // What the Stately inspector page does: connect to the relay and read what the process reports.
    socket = new WebSocket(`ws://127.0.0.1:${port}`);
    socket.addEventListener('message', (message) => received.push(JSON.parse(String(message.data)) as InspectionMessage));
    await new Promise((resolve, reject) => {
      socket.addEventListener('open', resolve, { once: true });
      socket.addEventListener('error', reject, { once: true });
    });
  }, 120_000);

  afterAll(async () => {
    socket?.close();
    await orchestrator?.stop();
    await stack?.stop();
  });

  it('serves the page that embeds the Stately inspector', async () => {
    const page = await (await fetch(`http://127.0.0.1:${port}/`)).text();
    expect(page).toContain('https://stately.ai/inspect');
    expect(page).toContain(`ws://localhost:${port}`);
  });

  it('reports every session\'s statechart, its tool calls and their snapshots as they change', async () => {
    const run = await startSession(stack.client, { namespace: stack.namespace, task: 'Please compute two plus two.' });
    const finished = await run.finished;
    expect(finished.status).toBe('completed');
    await eventually('the session reported', () => received.some((m) => m.type === '@xstate.snapshot' && m.snapshot?.value === 'completed'), 10_000, [orchestrator]);
    // Actors are named by their ids: a session by its session id, a tool call by its call id, a breaker by its tool.
    const session = received.find((m) => m.type === '@xstate.actor' && m.name === run.sessionId);
    expect(session, JSON.stringify(received.filter((m) => m.type === '@xstate.actor').map((m) => [m.name, m.sessionId, m.parentId]))).toBeDefined();
    const states = received.filter((m) => m.type === '@xstate.snapshot' && m.sessionId === session?.sessionId).map((m) => JSON.stringify(m.snapshot?.value));
    // The states the session rested in (eventless ones like `observing` pass within a step).
    for (const state of ['"calling_model"', '{"validating":"triaging_tool_calls"}', '"running_tools"', '"completed"']) expect(states).toContain(state);
    // The tool call is a child of the session, run as its own statechart whose attempts are its children; the tool's breaker is one too.
    const toolCall = received.find((m) => m.type === '@xstate.actor' && m.name?.startsWith('tool:') && m.parentId === undefined);
    expect(received.some((m) => m.type === '@xstate.actor' && m.name === toolCall?.name && m.parentId === session?.sessionId)).toBe(true);
    expect(received.some((m) => m.type === '@xstate.actor' && m.name === 'sendToolRequest' && m.parentId === toolCall?.sessionId)).toBe(true);
    expect(received.some((m) => m.type === '@xstate.snapshot' && m.sessionId === toolCall?.sessionId && m.snapshot?.value === 'succeeded')).toBe(true);
    expect(received.some((m) => m.type === '@xstate.actor' && m.name === 'breaker:calc_evaluate')).toBe(true);
    // The conversation stays out unless TROUPE_CAPTURE_CONTENT is set.
    const withContext = received.find((m) => m.type === '@xstate.snapshot' && m.sessionId === session?.sessionId && m.snapshot?.context);
    expect(withContext?.snapshot?.context?.conversation).toMatch(/^\(\d+ items \(hidden: set TROUPE_CAPTURE_CONTENT=1 to see it\)\)$/);
    expect(withContext?.snapshot?.context?.usage).toBeDefined();
    expect(JSON.stringify(received)).not.toContain('Please compute two plus two.');
  });

  it('shows a session\'s workflow as its child actor, moving through the phases', async () => {
    const run = await startSession(stack.client, {
      namespace: stack.namespace, agent: 'refund_desk',
      task: 'Refund request from Diego Lopez for order 1002: one of the two portable speakers arrived broken.',
    });
    for await (const event of run.events) {
      if (event.type === 'approval.requested') await approveSession(stack.client, run.sessionId, { namespace: stack.namespace, by: 'ana' });
    }
    expect((await run.finished).status).toBe('completed');
    const session = received.find((m) => m.type === '@xstate.actor' && m.name === run.sessionId);
    await eventually('the workflow reported', () => received.some((m) => m.type === '@xstate.snapshot' && m.snapshot?.value === 'report'), 10_000, [orchestrator]);
    const workflow = received.find((m) => m.type === '@xstate.actor' && m.name === 'workflow' && m.parentId === session?.sessionId);
    expect(workflow).toBeDefined();
    const phases = received.filter((m) => m.type === '@xstate.snapshot' && m.sessionId === workflow?.sessionId).map((m) => m.snapshot?.value);
    expect([...new Set(phases)]).toEqual(['triage', 'investigate', 'propose', 'execute', 'report']);
  }, 60_000);

  it('refuses --inspect on a tool pool, which runs no statecharts', async () => {
    const { code, output } = await stack.troupe(['worker', 'calc', '--inspect']);
    expect(code).toBe(2);
    expect(output).toContain('A tool pool runs no statecharts');
  });
});
