import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToolCatalog } from '../../actors/toolCalls/toolCatalog.ts';
import { attachSession, startSession } from '../../client/sessionClient.ts';
import { demoTask } from '../../cli/demoCommand.ts';
import { StatsResponse } from '../../transport/serviceProtocol.ts';
import { ToolReply, type SessionEvent, type SessionFinished, type ToolRequest } from '../../transport/messages.ts';
import { serviceDiscoverySubject, wireNames } from '../../transport/subjects.ts';
import { decodeWireMessage, encodeWireMessage } from '../../transport/wireMessage.ts';
import { startOtlpReceiver, type ReceivedSpan } from '../fixtures/otlpReceiver.ts';
import { startProcessStack, type ProcessStack } from '../fixtures/processStack.ts';
import { eventually, processStartTimeoutMs, startTroupe, type TroupeProcess } from '../fixtures/troupeProcess.ts';

const testAgents = fileURLToPath(new URL('../fixtures/agents/specialistTestAgents.ts', import.meta.url));

type Relayed = Extract<SessionEvent, { type: 'specialist.event' }>;

/** Runs a session to its end through the client library and returns every event it published. */
async function runSession(stack: ProcessStack, task: string, agent?: string): Promise<{ events: SessionEvent[]; finished: SessionFinished }> {
  const run = await startSession(stack.client, { namespace: stack.namespace, task, ...(agent ? { agent } : {}) });
  const events: SessionEvent[] = [];
  for await (const event of run.events) events.push(event);
  return { events, finished: await run.finished };
}

const relayed = (events: SessionEvent[]): Relayed[] => events.filter((e): e is Relayed => e.type === 'specialist.event');
const own = <T extends SessionEvent['type']>(events: SessionEvent[], type: T) =>
  events.filter((e): e is Extract<SessionEvent, { type: T }> => e.type === type);

describe('specialists served as worker pools, in separate processes', () => {
  let stack: ProcessStack;
  let otlp: Awaited<ReturnType<typeof startOtlpReceiver>>;
  const specialists: TroupeProcess[] = [];
  let dbWorker: TroupeProcess;

  beforeAll(async () => {
    otlp = await startOtlpReceiver();
    stack = await startProcessStack({ env: { TROUPE_AGENTS: testAgents, TROUPE_DEFAULT_AGENT: 'assistant', OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' } });
    dbWorker = await stack.startWorker('db');
    await stack.startWorker('calc');
    await stack.startWorker('files');
    specialists.push(startTroupe(['worker', '--agent', 'analyst'], stack.env), startTroupe(['worker', '--agent', 'analyst'], stack.env));
    specialists.push(startTroupe(['worker', '--agent', 'planner'], stack.env));
    const catalog = new ToolCatalog({ nats: stack.client, namespace: stack.namespace, quietPeriodMs: 100 });
    await eventually('two analysts and a planner discovered', async () => {
      await catalog.refresh();
      return (catalog.get('delegate_analyst')?.instances.size ?? 0) === 2 && catalog.get('delegate_planner') !== undefined;
    }, processStartTimeoutMs, specialists);
  }, 120_000);

  afterAll(async () => {
    for (const specialist of specialists) await specialist.stop();
    await stack?.stop();
    await otlp?.close();
  });

  it('delegates to a specialist that works with its own tools, and rolls its spending up into the session', async () => {
    const { events, finished } = await runSession(stack, '[delegate-revenue] How did 2025 go?');
    expect(finished.status, JSON.stringify(finished)).toBe('completed');
    expect(finished.output).toMatch(/^The analyst found: Revenue \d+(\.\d+)? USD over \d+ categories, \d+(\.\d+)? USD per category\.$/);

    const fromAnalyst = relayed(events);
    expect(fromAnalyst.every((e) => e.agent === 'analyst' && e.depth === 1)).toBe(true);
    const analystStarted = fromAnalyst.find((e) => e.event.type === 'session.started');
    expect(analystStarted?.event).toMatchObject({ agent: 'analyst', task: expect.stringContaining('[analyst-revenue]') });
    expect(fromAnalyst.filter((e) => e.event.type === 'tool.call.finished').map((e) => (e.event as { tool: string }).tool)).toEqual(['db_query', 'calc_evaluate']);
    // The relayed events arrive before the delegating call's own result, in the parent's order.
    const delegationFinished = events.findIndex((e) => e.type === 'tool.call.finished' && e.tool === 'delegate_analyst');
    expect(events.findIndex((e) => e.type === 'specialist.event' && e.event.type === 'session.finished')).toBeLessThan(delegationFinished);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i));

    // Totals are the sum of both sessions' model calls, as each reported them.
    const calls = [...own(events, 'model.responded'), ...fromAnalyst.map((e) => e.event).filter((e) => e.type === 'model.responded')];
    expect(calls).toHaveLength(5);
    const sum = (pick: (u: { inputTokens: number; outputTokens: number; costUsd: number }) => number) => calls.reduce((n, c) => n + pick(c.usage), 0);
    expect(finished.usage.inputTokens).toBe(sum((u) => u.inputTokens));
    expect(finished.usage.outputTokens).toBe(sum((u) => u.outputTokens));
    expect(finished.usage.inputTokens).toBe(300 + 500 + 200 + 250 + 300);
    expect(finished.usage.costUsd).toBeCloseTo(sum((u) => u.costUsd), 10);
    expect(finished.steps).toBe(2 + 3);
    expect(finished.toolCalls).toBe(1 + 2);
    expect(finished.delegated).toMatchObject({ steps: 3, toolCalls: 2, usage: { inputTokens: 750, outputTokens: 100 } });

    // One trace for the tree: the specialist's session hangs under the delegating call, across processes.
    const spansOf = () => otlp.spans.filter((s) => s.traceId === finished.traceId);
    const named = (name: string, service?: string) => spansOf().find((s) => s.name === name && (!service || s.service.includes(service)));
    await eventually('the specialist and tool pool spans exported', () => named('execute_tool db_query', 'worker-db') !== undefined && named('execute_tool calc_evaluate', 'worker-calc') !== undefined && named('invoke_agent analyst') !== undefined && named('invoke_agent assistant') !== undefined, 15_000);
    const byId = new Map(spansOf().map((s) => [s.spanId, s]));
    const parentOf = (span: ReceivedSpan | undefined) => (span ? byId.get(span.parentSpanId) : undefined);
    const analystSession = named('invoke_agent analyst');
    const workerSide = parentOf(analystSession);
    expect(workerSide).toMatchObject({ name: 'execute_tool delegate_analyst', service: expect.stringContaining('specialist-analyst') });
    const orchestratorSide = parentOf(workerSide);
    expect(orchestratorSide).toMatchObject({ name: 'execute_tool delegate_analyst', service: expect.stringContaining('orchestrator') });
    expect(orchestratorSide?.attributes['gen_ai.tool.call.id']).toBe(workerSide?.attributes['gen_ai.tool.call.id']);
    expect(parentOf(parentOf(orchestratorSide))?.name).toBe('invoke_agent assistant');
    expect(analystSession?.attributes).toMatchObject({ 'troupe.delegation.depth': 1, 'troupe.delegation.parent_session_id': finished.sessionId, 'gen_ai.agent.name': 'analyst' });
    const dbOnWorker = named('execute_tool db_query', 'worker-db');
    let ancestor = parentOf(dbOnWorker);
    while (ancestor && ancestor !== analystSession) ancestor = parentOf(ancestor);
    expect(ancestor, 'the db call descends from the analyst session').toBe(analystSession);
    expect(new Set(spansOf().map((s) => s.service.replace(/-\d+$/, '')))).toEqual(new Set(['troupe-orchestrator', 'troupe-specialist-analyst', 'troupe-worker-db', 'troupe-worker-calc']));
  }, 60_000);

  it('splits what the session has left among the turn\'s delegations: a specialist that needs more stops at its cap', async () => {
    const { events, finished } = await runSession(stack, '[delegate-split] Two questions at once.', 'coordinator');
    expect(finished.status, JSON.stringify(finished)).toBe('completed');
    const heavy = relayed(events).filter((e) => e.event.type === 'session.started' && e.event.task.includes('[analyst-heavy]'));
    expect(heavy).toHaveLength(1);
    const heavyCallId = heavy[0]?.callId;
    const heavyFinished = relayed(events).find((e) => e.callId === heavyCallId && e.event.type === 'session.finished')?.event as SessionFinished;
    expect(heavyFinished).toMatchObject({ status: 'budget_exhausted', budget: 'maxTotalTokens', steps: 2 });
    // 9,000 for the coordinator, 1,000 spent on its first turn: each of two delegations may spend 4,000.
    // The cap is checked before each model call, so the second call (2,500 more) is the last.
    expect(heavyFinished.usage.inputTokens + heavyFinished.usage.outputTokens).toBe(5_000);
    expect(finished.output).toBe('Heavy: SPECIALIST_FAILED on maxTotalTokens (capped by my budget: true). Light: Hello from the analyst.');
    const failure = own(events, 'tool.call.finished').find((e) => e.tool === 'delegate_analyst' && e.status === 'error')?.failure;
    expect(failure).toMatchObject({ code: 'SPECIALIST_FAILED', retryable: false, details: { agent: 'analyst', status: 'budget_exhausted', cappedByParent: true } });
    expect(finished.usage.inputTokens + finished.usage.outputTokens).toBe(1_000 + 5_000 + 500 + 1_100);
  }, 60_000);

  it('refuses a delegation deeper than the limit with a clear error to the specialist that tried', async () => {
    const { events, finished } = await runSession(stack, '[depth-parent] Plan it.', 'shallow');
    expect(finished.status, JSON.stringify(finished)).toBe('completed');
    expect(finished.output).toMatch(/^Planner said: I could not delegate: "delegate_analyst" would delegate deeper than allowed: this session is at delegation depth 1 and may not delegate further/);
    const rejected = relayed(events).find((e) => e.event.type === 'tool.call.rejected');
    expect(rejected).toMatchObject({ agent: 'planner', depth: 1, event: { tool: 'delegate_analyst', failure: { code: 'FORBIDDEN' } } });
    expect(relayed(events).some((e) => e.agent === 'analyst')).toBe(false);
  }, 60_000);

  it('returns a specialist\'s failure to the delegating model as a structured tool error', async () => {
    const { events, finished } = await runSession(stack, '[delegate-fail] Ask the analyst.');
    expect(finished.status, JSON.stringify(finished)).toBe('completed');
    expect(finished.output).toBe('The analyst could not help: SPECIALIST_FAILED / failed / model call failed');
    expect(relayed(events).filter((e) => e.event.type === 'model.retrying').length).toBeGreaterThan(0);
  }, 60_000);

  it('carries a cancellation to the specialist and to its tool calls in flight', async () => {
    const run = await startSession(stack.client, { namespace: stack.namespace, task: '[delegate-slow] Count.' });
    const events: SessionEvent[] = [];
    const reading = (async () => {
      for await (const event of run.events) events.push(event);
    })();
    await eventually('the specialist\'s slow query running', () =>
      relayed(events).some((e) => e.event.type === 'tool.call.started' && e.event.tool === 'db_query'), 30_000, specialists);
    const delegation = relayed(events).find((e) => e.event.type === 'session.started');
    const specialistSessionId = delegation?.event.sessionId as string;
    expect(await run.cancel('the user changed their mind')).toBe(true);
    const finished = await run.finished;
    await reading;
    expect(finished.status).toBe('cancelled');

    // The specialist's own session ends cancelled: its stream says so, whoever reads it.
    const specialistRun = await attachSession(stack.client, specialistSessionId, { namespace: stack.namespace });
    const specialistFinished = await specialistRun.finished;
    specialistRun.stop();
    expect(specialistFinished).toMatchObject({ status: 'cancelled' });
    // …and the db worker aborted the query it was running for the specialist.
    const dbQueryCallId = (relayed(events).find((e) => e.event.type === 'tool.call.started')?.event as { callId: string }).callId;
    await eventually('the db worker cancelling the specialist\'s query', () =>
      stack.logsOf(dbWorker).some((l) => l.msg === 'cancelling a call in flight' && l.callId === dbQueryCallId), 15_000, [dbWorker]);
  }, 60_000);

  it('shares delegated tasks between the members of a specialist pool (queue group)', async () => {
    const statsOf = async () => {
      const replies = await stack.client.requestMany(serviceDiscoverySubject('STATS', wireNames(stack.namespace).services.specialist('analyst')), undefined, { strategy: 'stall', stall: 300, maxWait: 3_000 });
      const perInstance = new Map<string, number>();
      for await (const msg of replies) {
        const decoded = decodeWireMessage(StatsResponse, msg.data, 'stats');
        if (decoded.ok) perInstance.set(decoded.value.id, decoded.value.endpoints.reduce((n, e) => n + e.num_requests, 0));
      }
      return perInstance;
    };
    const before = await statsOf();
    expect(before.size).toBe(2);
    const tasks = Array.from({ length: 16 }, async (_, i) => {
      const callId = `load-${i}-${randomUUID()}`;
      // Sent as a delegating session sends them: a specialist refuses a task that carries no delegation.
      const request: ToolRequest = {
        type: 'tool.request', sessionId: 'load-test', callId, tool: 'delegate_analyst',
        arguments: { task: `[analyst-light] Say hello (${i}).` }, deadline: Date.now() + 30_000,
        delegation: {
          sessionId: `delegation-${callId}`, parentSessionId: 'load-test', depth: 1, depthLeft: 0,
          limits: { maxSteps: 5, maxTotalTokens: 50_000, maxCostUsd: 1, deadline: Date.now() + 30_000 },
        },
      };
      const msg = await stack.client.request(wireNames(stack.namespace).subjects.delegation('analyst'), encodeWireMessage(request), { timeout: 30_000 });
      return decodeWireMessage(ToolReply, msg.data, 'reply');
    });
    const replies = await Promise.all(tasks);
    for (const reply of replies) expect(reply.ok && reply.value.status === 'ok', JSON.stringify(reply)).toBe(true);
    const after = await statsOf();
    const handled = [...after].map(([id, n]) => n - (before.get(id) ?? 0));
    expect(handled.reduce((a, b) => a + b, 0)).toBe(16);
    expect(handled.every((n) => n > 0), `per member: ${handled.join(', ')}`).toBe(true);
  }, 60_000);

  it('routes each turn to the model its rules pick, with the reason, and falls back when that model errors', async () => {
    const { events, finished } = await runSession(stack, '[route-turns] What is 2+2?', 'router');
    expect(finished.status, JSON.stringify(finished)).toBe('completed');
    expect(finished.output).toBe('2+2 = 4');
    const routed = own(events, 'model.routed');
    expect(routed.map((r) => [r.turn, r.model, r.rule])).toEqual([[1, 'strong-model', 'plan'], [2, 'strong-model', 'recover'], [3, 'cheap-model', null]]);
    expect(routed[0]?.reason).toBe('plan: turn kind first');
    expect(routed[1]?.reason).toBe('recover: turn kind after_tool_failure');
    expect(routed[2]?.reason).toMatch(/no rule matched \(turn kind after_tools\)/);
    expect(own(events, 'model.fallback')).toMatchObject([{ turn: 3, from: 'cheap-model', to: 'backup-model' }]);
    expect(own(events, 'model.responded').map((r) => r.model)).toEqual(['strong-model', 'strong-model', 'backup-model']);
    // The turn spans say which model was chosen and why.
    await eventually('the turn spans exported', () => otlp.spans.filter((s) => s.traceId === finished.traceId && s.attributes['troupe.routing.model']).length === 3, 15_000);
    const turns = otlp.spans.filter((s) => s.traceId === finished.traceId && s.attributes['troupe.routing.model']).sort((a, b) => Number(a.attributes['troupe.turn']) - Number(b.attributes['troupe.turn']));
    expect(turns.map((s) => s.attributes['troupe.routing.rule'])).toEqual(['plan', 'recover', '(default)']);
  }, 60_000);

  it('runs the demo task: the assistant hands the figures to the analyst and writes its answer to the report', async () => {
    const { events, finished } = await runSession(stack, demoTask);
    expect(finished.status, JSON.stringify(finished)).toBe('completed');
    const analystTools = relayed(events).filter((e) => e.event.type === 'tool.call.finished').map((e) => (e.event as { tool: string; status: string }));
    expect(analystTools.map((t) => `${t.tool}:${t.status}`)).toEqual(['db_schema:ok', 'db_query:ok', 'db_query:ok', 'calc_evaluate:ok']);
    const report = readFileSync(join(stack.workspace, 'reports/revenue-2025.md'), 'utf8');
    expect(report).toMatch(/\| electronics \| \d+(\.\d+)? \| \d+ \|/);
    expect(report).toMatch(/average per category: \d+(\.\d+)? USD/);
    expect(finished.output).toContain(report.split('\n').find((l) => l.startsWith('| electronics')));
    expect(finished.delegated?.steps).toBe(5);
  }, 60_000);
});
