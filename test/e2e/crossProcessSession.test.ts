import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToolCatalog } from '../../actors/toolCalls/toolCatalog.ts';
import { SessionEvent } from '../../transport/messages.ts';
import { orchestratorAnswers } from '../../client/orchestratorProbe.ts';
import { testScriptsDir } from '../fixtures/inProcessStack.ts';
import { testNamespace } from '../fixtures/testNamespace.ts';
import { startOtlpReceiver, type ReceivedSpan } from '../fixtures/otlpReceiver.ts';
import { eventually, startTroupe, type TroupeProcess, processStartTimeoutMs } from '../fixtures/troupeProcess.ts';
import { freePort, startNatsServer, type NatsServerProcess } from '../../testing/natsServer.ts';

describe('a session across separate processes', () => {
  let nats: NatsServerProcess;
  let otlp: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let nc: NatsConnection;
  const services: TroupeProcess[] = [];
  let runOutput = '';
  let runExit: number | string;

  beforeAll(async () => {
    nats = await startNatsServer();
    otlp = await startOtlpReceiver();
    nc = await connect({ servers: nats.url });
    const modelPort = await freePort();
    const env = {
      NATS_URL: nats.url,
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OPENAI_BASE_URL: `http://127.0.0.1:${modelPort}/v1`,
      OPENAI_API_KEY: 'scripted',
      TROUPE_SCRIPTED_MODEL: '1',
      TROUPE_WORKSPACE: mkdtempSync(join(tmpdir(), 'troupe-e2e-')),
    };
    services.push(startTroupe(['model', 'serve', '--port', String(modelPort), '--scripts', testScriptsDir], env));
    services.push(startTroupe(['worker', 'calc'], env), startTroupe(['worker', 'files'], env), startTroupe(['orchestrator'], env));
    // Every process joins the test file's namespace (startTroupe sets TROUPE_NAMESPACE).
    const namespace = testNamespace();
    const catalog = new ToolCatalog({ nats: nc, namespace });
    await eventually('both pools discovered', async () => {
      await catalog.refresh();
      return catalog.get('calc_evaluate') !== undefined && catalog.get('files_write') !== undefined;
    }, processStartTimeoutMs, services);
    await eventually('the orchestrator answering', () => orchestratorAnswers(nc, { namespace }), processStartTimeoutMs, services);

    const run = startTroupe(['run', '--json', 'Please use two pools.'], env);
    runExit = await run.exited;
    runOutput = run.output();
    // SIGTERM makes every process flush its spans before it exits.
    for (const service of services.reverse()) await service.stop();
  }, 120_000);

  afterAll(async () => {
    for (const service of services) await service.stop();
    await nc?.close();
    await otlp?.close();
    await nats?.stop();
  });

  const finishedEvent = () => {
    const lines = runOutput.trim().split('\n').filter((l) => l.startsWith('{'));
    return SessionEvent.parse(JSON.parse(lines.at(-1) ?? '{}'));
  };

  it('prints one JSON event per line and ends with session.finished, exiting 0', () => {
    expect(runExit, runOutput).toBe(0);
    const lines = runOutput.trim().split('\n');
    for (const line of lines) expect(() => SessionEvent.parse(JSON.parse(line))).not.toThrow();
    const finished = finishedEvent();
    expect(finished).toMatchObject({ type: 'session.finished', status: 'completed', stopReason: 'answered', steps: 3, toolCalls: 3 });
    if (finished.type !== 'session.finished') throw new Error('unreachable');
    expect(finished.usage.inputTokens).toBeGreaterThan(0);
    expect(finished.usage.outputTokens).toBeGreaterThan(0);
    expect(finished.usage.costUsd).toBeGreaterThan(0);
    expect(finished.traceId).toMatch(/^[0-9a-f]{32}$/);
  });

  it('exports one trace that spans the orchestrator and both worker pools', () => {
    const { traceId } = finishedEvent() as { traceId: string };
    const spans = otlp.spans.filter((s) => s.traceId === traceId);
    expect(new Set(spans.map((s) => s.service))).toEqual(new Set(['troupe-orchestrator', 'troupe-worker-calc', 'troupe-worker-files']));
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const parentOf = (s: ReceivedSpan) => byId.get(s.parentSpanId);

    const session = spans.filter((s) => s.name === 'invoke_agent assistant');
    expect(session).toHaveLength(1);
    expect(session[0]?.attributes['gen_ai.conversation.id']).toBe(finishedEvent().sessionId);
    const turns = spans.filter((s) => s.name.startsWith('turn '));
    expect(turns.map((t) => parentOf(t)?.name)).toEqual(Array(3).fill('invoke_agent assistant'));

    const chats = spans.filter((s) => s.name === 'chat scripted');
    expect(chats).toHaveLength(3);
    for (const chat of chats) {
      expect(parentOf(chat)?.name).toMatch(/^turn /);
      expect(chat.attributes).toMatchObject({ 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'scripted' });
      expect(chat.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
    }

    // Each tool call is a CLIENT span on the orchestrator and a SERVER span on the worker, linked through NATS headers.
    const workerSide = spans.filter((s) => s.name.startsWith('execute_tool') && s.service !== 'troupe-orchestrator');
    expect(workerSide.map((s) => s.name).sort()).toEqual(['execute_tool calc_evaluate', 'execute_tool files_read', 'execute_tool files_write']);
    for (const span of workerSide) {
      const parent = parentOf(span);
      expect(parent?.service).toBe('troupe-orchestrator');
      expect(parent?.name).toBe(span.name);
      expect(parent?.attributes['gen_ai.tool.call.id']).toBe(span.attributes['gen_ai.tool.call.id']);
      expect(parentOf(parent as ReceivedSpan)?.name).toMatch(/^turn /);
    }
  });

  it('writes pino JSON logs that carry the trace id inside spans', () => {
    const { traceId } = finishedEvent() as { traceId: string };
    const workerLogs = services
      .flatMap((s) => s.output().split('\n'))
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(workerLogs.some((l) => l.trace_id === traceId && typeof l.span_id === 'string')).toBe(true);
  });
});
