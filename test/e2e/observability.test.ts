import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToolCatalog } from '../../actors/toolCalls/toolCatalog.ts';
import { startSession } from '../../client/sessionClient.ts';
import { costOfCall, defaultPriceTable, priceOf } from '../../models/priceTable.ts';
import { Alert, type SessionEvent, type SessionFinished } from '../../transport/messages.ts';
import { orchestratorAnswers } from '../../client/orchestratorProbe.ts';
import { wireNames } from '../../transport/subjects.ts';
import { decodeWireMessage } from '../../transport/wireMessage.ts';
import { metricPoints, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../fixtures/otlpReceiver.ts';
import { startProcessStack, type ProcessStack } from '../fixtures/processStack.ts';
import { freePort } from '../../testing/natsServer.ts';
import { eventually, startTroupe, type TroupeProcess, processStartTimeoutMs } from '../fixtures/troupeProcess.ts';

const secretKey = 'sk-test-do-not-log-0123456789';

describe('observability across processes: traces, metrics, alerts and logs', () => {
  let stack: ProcessStack;
  let otlp: OtlpReceiver;
  let orchestrator: TroupeProcess;
  let calcWorker: TroupeProcess;
  let analyst: TroupeProcess;
  let prometheusPort: number;
  const alerts: Alert[] = [];
  let finished: SessionFinished;
  let events: SessionEvent[] = [];

  beforeAll(async () => {
    otlp = await startOtlpReceiver();
    prometheusPort = await freePort();
    stack = await startProcessStack({
      orchestrator: false,
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_METRIC_EXPORT_INTERVAL: '300', OPENAI_API_KEY: secretKey },
    });
    // The first attempt of the first calc call fails as a pool under strain would: the call is retried.
    calcWorker = await stack.startWorker('calc', { TROUPE_FAULTS: '{"calc_evaluate":[{"kind":"error","code":"UNAVAILABLE","times":1}]}' });
    await stack.startWorker('files', { TROUPE_FAULTS: '{"files_read":[{"kind":"error","code":"NOT_FOUND","message":"no such file"}]}' });
    analyst = startTroupe(['worker', '--agent', 'analyst'], stack.env);
    orchestrator = startTroupe(['orchestrator'], {
      ...stack.env,
      TROUPE_PROMETHEUS_PORT: String(prometheusPort),
      TROUPE_ALERTS: '{"toolErrorRate":{"threshold":0.75,"minCalls":4},"sessionSpendUsd":1000}',
    });
    const catalog = new ToolCatalog({ nats: stack.client, namespace: stack.namespace, quietPeriodMs: 100 });
    await eventually('the analyst discovered', async () => {
      await catalog.refresh();
      return catalog.get('delegate_analyst') !== undefined;
    }, processStartTimeoutMs, [analyst]);
    await eventually('the orchestrator answering', () => orchestratorAnswers(stack.client, { namespace: stack.namespace }), processStartTimeoutMs, [orchestrator]);
    stack.client.subscribe(wireNames(stack.namespace).subjects.allAlerts, {
      callback: (_error, msg) => {
        const decoded = decodeWireMessage(Alert, msg.data, 'alert');
        if (decoded.ok) alerts.push(decoded.value);
      },
    });

    const run = await startSession(stack.client, { namespace: stack.namespace, task: '[observe] Compute and ask.', tenant: 'acme', user: 'ada' });
    for await (const event of run.events) events.push(event);
    finished = await run.finished;
  }, 120_000);

  afterAll(async () => {
    for (const p of [orchestrator, analyst]) await p?.stop();
    await stack?.stop();
    await otlp?.close();
  });

  const traceSpans = () => otlp.spans.filter((s) => s.traceId === finished.traceId);
  const one = (predicate: (s: ReceivedSpan) => boolean, what: string): ReceivedSpan => {
    const found = traceSpans().filter(predicate);
    expect(found, what).toHaveLength(1);
    return found[0] as ReceivedSpan;
  };

  it('completes, and reports its cost per model call, per turn and for the session, attributed to its tenant', () => {
    expect(finished.status, JSON.stringify(finished)).toBe('completed');
    expect(finished.output).toBe('6*7 = 42; the analyst says: Hello from the analyst.');
    expect(events[0]).toMatchObject({ type: 'session.started', tenant: 'acme', user: 'ada' });
    const price = priceOf('scripted', defaultPriceTable);
    const own = [costOfCall(price, { inputTokens: 120, outputTokens: 30 }), costOfCall(price, { inputTokens: 200, outputTokens: 20 })];
    const responded = events.filter((e) => e.type === 'model.responded');
    expect(responded.map((e) => e.usage.costUsd)).toEqual(own);
    const specialist = costOfCall(price, { inputTokens: 400, outputTokens: 100 });
    expect(finished.usage.costUsd).toBeCloseTo(own[0]! + own[1]! + specialist, 12);
  });

  it('exports one trace across the orchestrator, the calc pool and the specialist, linked parent to child', async () => {
    // Each process exports in its own batches: wait for all thirteen spans (the session, two turns, three
    // model calls, the calc call on both sides of each of its two attempts, the delegation on both sides,
    // and the specialist's session and turn) before looking at any of them.
    await eventually('every span of the session exported', () =>
      traceSpans().some((s) => s.name === 'invoke_agent assistant') && traceSpans().filter((s) => s.name === 'execute_tool calc_evaluate' && s.service.includes('worker-calc')).length === 2
      && traceSpans().filter((s) => s.name === 'chat scripted').length === 3 && traceSpans().length >= 13, 20_000);
    const byId = new Map(traceSpans().map((s) => [s.spanId, s]));
    const parentOf = (s: ReceivedSpan) => byId.get(s.parentSpanId);
    const session = one((s) => s.name === 'invoke_agent assistant', 'the session span');
    expect(session.attributes).toMatchObject({
      'gen_ai.operation.name': 'invoke_agent', 'gen_ai.provider.name': 'troupe', 'gen_ai.agent.name': 'assistant',
      'gen_ai.conversation.id': finished.sessionId, 'troupe.tenant': 'acme', 'user.id': 'ada', 'troupe.session.status': 'completed',
    });
    const turns = traceSpans().filter((s) => s.service.includes('orchestrator') && /^turn \d$/.test(s.name));
    expect(turns.map((t) => t.name).sort()).toEqual(['turn 1', 'turn 2']);
    for (const t of turns) expect(parentOf(t)).toBe(session);

    // Model calls: the GenAI attributes, with the tokens the scripted model reported.
    const chats = traceSpans().filter((s) => s.name === 'chat scripted' && s.service.includes('orchestrator'));
    expect(chats.map((c) => [c.attributes['gen_ai.usage.input_tokens'], c.attributes['gen_ai.usage.output_tokens']]).sort()).toEqual([[120, 30], [200, 20]]);
    for (const chat of chats) {
      expect(chat.kind).toBe(3); // CLIENT
      expect(chat.attributes).toMatchObject({
        'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'scripted', 'gen_ai.response.model': 'scripted',
        'gen_ai.conversation.id': finished.sessionId,
      });
      expect(chat.attributes['gen_ai.response.finish_reasons']).toEqual([expect.stringMatching(/^(tool_calls|stop)$/)]);
      // Contents stay out of spans unless TROUPE_CAPTURE_CONTENT opts in.
      expect(chat.attributes).not.toHaveProperty('gen_ai.input.messages');
      expect(turns).toContain(parentOf(chat));
    }

    // The calc call: the orchestrator's span with the retry as an event, the worker's as its child.
    const calcClient = one((s) => s.name === 'execute_tool calc_evaluate' && s.service.includes('orchestrator'), 'the orchestrator calc span');
    expect(calcClient.attributes).toMatchObject({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'calc_evaluate', 'troupe.tool.attempts': 2 });
    expect(calcClient.attributes).not.toHaveProperty('gen_ai.tool.call.arguments');
    expect(calcClient.events.find((e) => e.name === 'retry')?.attributes).toMatchObject({ 'troupe.retry.attempt': 2, 'error.type': 'UNAVAILABLE' });
    const calcWorkers = traceSpans().filter((s) => s.name === 'execute_tool calc_evaluate' && s.service.includes('worker-calc'));
    expect(calcWorkers).toHaveLength(2); // the failed attempt and the retry, both under the one call
    for (const w of calcWorkers) {
      expect(parentOf(w)).toBe(calcClient);
      expect(w.attributes['gen_ai.tool.call.id']).toBe(calcClient.attributes['gen_ai.tool.call.id']);
    }

    // The specialist's session is a child of the delegating call, on the specialist's process.
    const specialistSession = one((s) => s.name === 'invoke_agent analyst', 'the specialist session span');
    expect(specialistSession.service).toContain('specialist-analyst');
    expect(parentOf(parentOf(specialistSession) as ReceivedSpan)?.name).toBe('execute_tool delegate_analyst');
    const specialistChat = one((s) => s.name === 'chat scripted' && s.service.includes('specialist'), 'the specialist model call');
    expect(specialistChat.attributes).toMatchObject({ 'gen_ai.usage.input_tokens': 400, 'gen_ai.usage.output_tokens': 100 });

    // Each turn's cost: its model call, plus what its specialist spent.
    const price = priceOf('scripted', defaultPriceTable);
    const turn1 = turns.find((t) => t.name === 'turn 1') as ReceivedSpan;
    expect(turn1.attributes['troupe.cost_usd']).toBeCloseTo(costOfCall(price, { inputTokens: 120, outputTokens: 30 }) + costOfCall(price, { inputTokens: 400, outputTokens: 100 }), 8);
  });

  it('exports the metrics with the session\'s values, over OTLP and for Prometheus', async () => {
    const sumOf = (name: string, attributes: Record<string, unknown>, service = 'troupe-orchestrator') =>
      metricPoints(otlp, service, name, attributes).reduce((n, p) => n + (p.sum ?? p.value ?? 0), 0);
    await eventually('the session\'s metrics exported', () => sumOf('troupe.sessions', { 'troupe.session.status': 'completed' }) >= 1
      && sumOf('gen_ai.client.token.usage', { 'gen_ai.token.type': 'input' }, 'troupe-specialist') > 0, 15_000);
    expect(sumOf('gen_ai.client.token.usage', { 'gen_ai.token.type': 'input', 'gen_ai.request.model': 'scripted' })).toBe(120 + 200);
    expect(sumOf('gen_ai.client.token.usage', { 'gen_ai.token.type': 'output' })).toBe(30 + 20);
    expect(sumOf('gen_ai.client.token.usage', { 'gen_ai.token.type': 'input' }, 'troupe-specialist')).toBe(400);
    const durations = metricPoints(otlp, 'troupe-orchestrator', 'gen_ai.client.operation.duration', { 'gen_ai.operation.name': 'chat' });
    expect(durations.reduce((n, p) => n + (p.count ?? 0), 0)).toBe(2);
    expect(sumOf('troupe.tool.calls', { 'gen_ai.tool.name': 'calc_evaluate', 'troupe.tool.status': 'ok' })).toBe(1);
    expect(sumOf('troupe.tool.calls', { 'gen_ai.tool.name': 'delegate_analyst', 'troupe.tool.status': 'ok', 'troupe.tool.domain': 'delegate' })).toBe(1);
    expect(sumOf('troupe.tool.retries', { 'gen_ai.tool.name': 'calc_evaluate', 'error.type': 'UNAVAILABLE' })).toBe(1);
    expect(sumOf('troupe.sessions', { 'gen_ai.agent.name': 'assistant', 'troupe.session.status': 'completed', 'troupe.tenant': 'acme' })).toBe(1);
    const price = priceOf('scripted', defaultPriceTable);
    expect(sumOf('troupe.cost', { 'troupe.tenant': 'acme', 'gen_ai.agent.name': 'assistant' }))
      .toBeCloseTo(costOfCall(price, { inputTokens: 120, outputTokens: 30 }) + costOfCall(price, { inputTokens: 200, outputTokens: 20 }), 12);
    // The specialist's spend is counted where it happens, attributed to the same tenant.
    expect(sumOf('troupe.cost', { 'troupe.tenant': 'acme', 'gen_ai.agent.name': 'analyst' }, 'troupe-specialist')).toBeCloseTo(costOfCall(price, { inputTokens: 400, outputTokens: 100 }), 12);
    expect(metricPoints(otlp, 'troupe-orchestrator', 'troupe.circuit_breaker.state', { 'gen_ai.tool.name': 'calc_evaluate' })[0]?.value).toBe(0);

    const scraped = await (await fetch(`http://127.0.0.1:${prometheusPort}/metrics`)).text();
    expect(scraped).toMatch(/^gen_ai_client_token_usage_sum\{[^}]*gen_ai_token_type="input"[^}]*\} 320$/m);
    expect(scraped).toMatch(/^troupe_tool_retries_total\{[^}]*gen_ai_tool_name="calc_evaluate"[^}]*\} 1$/m);
  });

  it('raises an alert on NATS, in the log and as a metric when a tool\'s error rate crosses its threshold', async () => {
    const run = await startSession(stack.client, { namespace: stack.namespace, task: '[error-burst] Read them all.' });
    await run.finished;
    await eventually('the alert published', () => alerts.length > 0, 10_000, [orchestrator]);
    expect(alerts).toEqual([expect.objectContaining({
      type: 'alert.raised', kind: 'tool_error_rate', subject: 'files_read', value: 1, threshold: 0.75, windowMs: 60_000, source: 'troupe-orchestrator',
      detail: 'Tool files_read: 4 of the last 4 calls failed (100%) in 1 min, at or over the 75% alert threshold.',
    })]);
    await eventually('the alert logged', () => stack.logsOf(orchestrator).some((l) => l.msg === `alert: ${alerts[0]?.detail}` && l.level === 40), 5_000);
    await eventually('the alert counted', () => metricPoints(otlp, 'troupe-orchestrator', 'troupe.alerts', { 'troupe.alert.kind': 'tool_error_rate' })[0]?.value === 1, 10_000);
  });

  it('writes JSON logs with the trace id inside spans, and never the API key', async () => {
    const workerLines = stack.logsOf(calcWorker).filter((l) => l.callId !== undefined);
    expect(workerLines.length).toBeGreaterThan(0);
    for (const line of workerLines) expect(line.trace_id, JSON.stringify(line)).toBe(finished.traceId);
    const configuration = stack.logsOf(orchestrator).find((l) => l.msg === 'configuration') as { config: Record<string, unknown> };
    expect(configuration.config.OPENAI_API_KEY).toBe('[redacted]');
    for (const p of [orchestrator, analyst, calcWorker]) expect(p.output()).not.toContain(secretKey);
  });

  it('prints the session\'s span tree with durations, tokens and cost from Jaeger\'s query API (troupe trace)', async () => {
    // Jaeger's query API v3 answers with the spans it received over OTLP: this one serves what the receiver got.
    type Export = { resourceSpans: Array<{ resource: unknown; scopeSpans: Array<{ scope?: unknown; spans: Array<{ traceId: string }> }> }> };
    const jaeger = createServer((req, res) => {
      const id = /^\/api\/v3\/traces\/([0-9a-f]{32})$/.exec(req.url ?? '')?.[1];
      const resourceSpans = (otlp.traceExports as Export[]).flatMap((e) => e.resourceSpans)
        .map((rs) => ({ ...rs, scopeSpans: rs.scopeSpans.map((ss) => ({ ...ss, spans: ss.spans.filter((sp) => sp.traceId === id) })) }))
        .filter((rs) => rs.scopeSpans.some((ss) => ss.spans.length > 0));
      if (!id || resourceSpans.length === 0) res.writeHead(404).end('{"error":{"message":"trace not found"}}');
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ result: { resourceSpans } }));
    });
    await new Promise<void>((resolve) => jaeger.listen(0, '127.0.0.1', resolve));
    try {
      const jaegerUrl = `http://127.0.0.1:${(jaeger.address() as AddressInfo).port}`;
      const { code, output } = await stack.troupe(['trace', finished.sessionId], { JAEGER_URL: jaegerUrl });
      expect(code, output).toBe(0);
      const lines = output.trim().split('\n');
      expect(lines[0]).toBe(`trace ${finished.traceId} · session ${finished.sessionId}`);
      expect(lines[1]).toMatch(/^invoke_agent assistant · troupe-orchestrator · \d+\.\d ms · 720 in \/ 150 out · \$0\.\d{6}$/);
      expect(output).toMatch(/^  turn 1 · troupe-orchestrator · [\d.]+ ms · \$0\.001040$/m);
      expect(output).toMatch(/^    chat scripted · troupe-orchestrator · [\d.]+ ms · 120 in \/ 30 out · \$0\.000240$/m);
      expect(output).toMatch(/^      execute_tool calc_evaluate · troupe-worker-calc · [\d.]+ ms · ERROR /m);
      expect(output).toMatch(/^        invoke_agent analyst · troupe-specialist-analyst · /m);
      expect(lines.at(-1)).toMatch(/^\d+ spans · 3 services · 3 model calls · 720 in \/ 150 out · \$0\.001320$/);

      const missing = await stack.troupe(['trace', '--trace-id', '0'.repeat(32)], { JAEGER_URL: jaegerUrl });
      expect(missing.code).toBe(1);
      expect(missing.output).toContain('Jaeger has no trace 00000000000000000000000000000000 (yet)');
      const unset = await stack.troupe(['trace', finished.sessionId], { JAEGER_URL: '' });
      expect(unset.code).toBe(2);
      expect(unset.output).toContain('set JAEGER_URL');
    } finally {
      await new Promise((resolve) => jaeger.close(resolve));
    }
  });
});
