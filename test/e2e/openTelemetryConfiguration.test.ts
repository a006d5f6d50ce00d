import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToolCatalog } from '../../actors/toolCalls/toolCatalog.ts';
import { startSession } from '../../client/sessionClient.ts';
import type { SessionFinished } from '../../transport/messages.ts';
import { startOtlpReceiver, type OtlpProtocol, type OtlpReceiver, type ReceivedSpan } from '../fixtures/otlpReceiver.ts';
import { startProcessStack, type ProcessStack } from '../fixtures/processStack.ts';
import { cliMain, eventually, processStartTimeoutMs, startTroupe, type TroupeProcess } from '../fixtures/troupeProcess.ts';

/**
 * Every span one `[observe]` session makes (a calc call and a delegation to the analyst, then an
 * answer), as `service name`: what "the whole trace" means below.
 */
const wholeTrace = [
  'troupe-orchestrator execute_tool calc_evaluate',
  'troupe-orchestrator execute_tool delegate_analyst',
  'troupe-orchestrator chat scripted',
  'troupe-orchestrator chat scripted',
  'troupe-orchestrator invoke_agent assistant',
  'troupe-orchestrator turn 1',
  'troupe-orchestrator turn 2',
  'troupe-specialist-analyst chat scripted',
  'troupe-specialist-analyst execute_tool delegate_analyst',
  'troupe-specialist-analyst invoke_agent analyst',
  'troupe-specialist-analyst turn 1',
  'troupe-worker-calc execute_tool calc_evaluate',
].sort();

const secretKey = 'sk-test-otel-do-not-export-0123456789';

const named = (spans: ReceivedSpan[]) => spans.map((s) => `${s.service} ${s.name}`).sort();

/** One session's trace is whole when its spans are all there and every parent is one of them, down from one root. */
function expectWholeTrace(spans: ReceivedSpan[]): void {
  expect(named(spans)).toEqual(wholeTrace);
  const ids = new Set(spans.map((s) => s.spanId));
  const roots = spans.filter((s) => !ids.has(s.parentSpanId));
  expect(roots.map((s) => s.name)).toEqual(['invoke_agent assistant']);
  expect(roots[0]?.parentSpanId).toBe('');
}

interface ObservedSession {
  finished: SessionFinished;
  /** The exit codes of the orchestrator, the calc pool and the specialist, stopped after the session (0: they flushed and left). */
  exitCodes: Array<number | string>;
}

/**
 * Runs one `[observe]` session on its own orchestrator, calc pool and analyst specialist, each
 * started with the stack's environment plus `env` (and `orchestratorEnv` for the orchestrator),
 * then stops them: a process flushes its telemetry as it stops, so once they have exited the
 * receiver holds everything they will ever export, and a test can also assert what is absent.
 */
async function observeOneSession(stack: ProcessStack, env: NodeJS.ProcessEnv, orchestratorEnv: NodeJS.ProcessEnv = {}): Promise<ObservedSession> {
  const processes: TroupeProcess[] = [];
  try {
    processes.push(await stack.startWorker('calc', env));
    const analyst = startTroupe(['worker', '--agent', 'analyst'], { ...stack.env, ...env });
    processes.push(analyst);
    const catalog = new ToolCatalog({ nats: stack.client, namespace: stack.namespace, quietPeriodMs: 100 });
    await eventually('the analyst discovered', async () => {
      await catalog.refresh();
      return catalog.get('delegate_analyst') !== undefined;
    }, processStartTimeoutMs, [analyst]);
    processes.unshift(await stack.startOrchestrator({ ...env, ...orchestratorEnv }));
    const run = await startSession(stack.client, { namespace: stack.namespace, task: '[observe] Compute and ask.' });
    const finished = await run.finished;
    return { finished, exitCodes: await Promise.all(processes.map((p) => p.stop(10_000))) };
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
  }
}

const exporting = (otlp: OtlpReceiver, protocol: OtlpProtocol): NodeJS.ProcessEnv => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpointFor(protocol),
  OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
});

describe('OpenTelemetry configured with the standard OTEL_* variables, across processes', () => {
  let stack: ProcessStack;

  beforeAll(async () => {
    // The scripted model and a nats-server; each case starts (and stops) its own Troupe processes.
    stack = await startProcessStack({ orchestrator: false });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  describe.each(['http/protobuf', 'http/json', 'grpc'] as const)('OTEL_EXPORTER_OTLP_PROTOCOL=%s', (protocol) => {
    let otlp: OtlpReceiver;
    let observed: ObservedSession;

    beforeAll(async () => {
      otlp = await startOtlpReceiver();
      observed = await observeOneSession(stack, {
        ...exporting(otlp, protocol),
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=staging',
        OTEL_LOGS_EXPORTER: 'otlp',
        OPENAI_API_KEY: secretKey,
      });
    }, 120_000);

    afterAll(async () => {
      await otlp?.close();
    });

    it('delivers the session as one whole trace: the orchestrator\'s, the calc pool\'s and the specialist\'s spans, under one trace id', () => {
      expect(observed.finished.status, JSON.stringify(observed.finished)).toBe('completed');
      expect(observed.exitCodes).toEqual([0, 0, 0]);
      expect(otlp.spans.length).toBeGreaterThan(0);
      for (const span of otlp.spans) expect(span.traceId).toBe(observed.finished.traceId);
      expectWholeTrace(otlp.spans);
    });

    it(`sends every signal over ${protocol}`, () => {
      expect(new Set(otlp.resources.map((r) => r.signal))).toEqual(new Set(['traces', 'metrics', 'logs']));
      expect(new Set(otlp.resources.map((r) => r.protocol))).toEqual(new Set([protocol]));
    });

    it('puts OTEL_RESOURCE_ATTRIBUTES on every exported resource, beside each process\'s service name', () => {
      expect(otlp.resources.length).toBeGreaterThan(0);
      for (const resource of otlp.resources) {
        expect(resource.attributes).toMatchObject({ 'deployment.environment': 'staging', 'service.namespace': 'troupe' });
      }
      expect(new Set(otlp.resources.map((r) => r.attributes['service.name']))).toEqual(new Set(['troupe-orchestrator', 'troupe-worker-calc', 'troupe-specialist-analyst']));
    });

    it('sends the processes\' log lines as log records carrying the trace and span ids they were written under', () => {
      const callLines = otlp.logs.filter((l) => l.service === 'troupe-worker-calc' && l.attributes.callId !== undefined);
      expect(callLines.length).toBeGreaterThan(0);
      const workerSpans = new Set(otlp.spans.filter((s) => s.service === 'troupe-worker-calc').map((s) => s.spanId));
      for (const line of callLines) {
        expect(line.traceId, JSON.stringify(line)).toBe(observed.finished.traceId);
        expect(workerSpans).toContain(line.spanId);
      }
      // A line written outside any span carries no ids; secrets are redacted before a line leaves, as on stdout.
      const configuration = otlp.logs.find((l) => l.service === 'troupe-orchestrator' && l.body === 'configuration');
      expect(configuration).toMatchObject({ severityText: 'INFO', traceId: '', spanId: '' });
      expect(JSON.parse(String(configuration?.attributes.config))).toMatchObject({ OPENAI_API_KEY: '[redacted]' });
      expect(JSON.stringify(otlp.logs)).not.toContain(secretKey);
    });
  });

  describe('OTEL_TRACES_SAMPLER=always_off', () => {
    let otlp: OtlpReceiver;
    let observed: ObservedSession;

    beforeAll(async () => {
      otlp = await startOtlpReceiver();
      observed = await observeOneSession(stack, { ...exporting(otlp, 'http/protobuf'), OTEL_TRACES_SAMPLER: 'always_off' });
    }, 120_000);

    afterAll(async () => {
      await otlp?.close();
    });

    it('exports no spans from any process, and the session still completes with a trace id to correlate its logs', () => {
      expect(observed.finished.status, JSON.stringify(observed.finished)).toBe('completed');
      expect(observed.exitCodes).toEqual([0, 0, 0]);
      expect(observed.finished.traceId).toMatch(/^(?!0{32})[0-9a-f]{32}$/);
      expect(otlp.spans).toEqual([]);
      // Not for want of exporting: every process's log records (OTLP too, the endpoint being set) arrived.
      const loggingServices = new Set(otlp.resources.filter((r) => r.signal === 'logs').map((r) => r.attributes['service.name']));
      expect(loggingServices).toEqual(new Set(['troupe-orchestrator', 'troupe-worker-calc', 'troupe-specialist-analyst']));
    });
  });

  describe('OTEL_TRACES_SAMPLER=parentbased_traceidratio: the session\'s root decides for every process', () => {
    const ratio = (arg: string): NodeJS.ProcessEnv => ({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: arg });

    it('drops the whole trace in every process when the orchestrator\'s ratio is 0, though the pools on their own would keep everything (ratio 1)', async () => {
      const otlp = await startOtlpReceiver();
      try {
        const observed = await observeOneSession(stack, { ...exporting(otlp, 'http/protobuf'), ...ratio('1') }, ratio('0'));
        expect(observed.finished.status).toBe('completed');
        expect(observed.exitCodes).toEqual([0, 0, 0]);
        expect(otlp.spans).toEqual([]);
        // Not for want of exporting: the pools' log records (OTLP too, the endpoint being set) arrived.
        const loggingServices = new Set(otlp.resources.filter((r) => r.signal === 'logs').map((r) => r.attributes['service.name']));
        expect(loggingServices).toEqual(new Set(['troupe-orchestrator', 'troupe-worker-calc', 'troupe-specialist-analyst']));
      } finally {
        await otlp.close();
      }
    }, 120_000);

    it('keeps the whole trace in every process when the orchestrator\'s ratio is 1, though the pools on their own would keep nothing (ratio 0)', async () => {
      const otlp = await startOtlpReceiver();
      try {
        const observed = await observeOneSession(stack, { ...exporting(otlp, 'http/protobuf'), ...ratio('0') }, ratio('1'));
        expect(observed.finished.status).toBe('completed');
        expect(observed.exitCodes).toEqual([0, 0, 0]);
        for (const span of otlp.spans) expect(span.traceId).toBe(observed.finished.traceId);
        expectWholeTrace(otlp.spans);
      } finally {
        await otlp.close();
      }
    }, 120_000);
  });

  describe('a value OpenTelemetry does not accept', () => {
    /** Runs `troupe <args>` with `env` until it exits; a process that gets past its settings would go on to wait for NATS. */
    function troupeExit(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
      const child = spawn(process.execPath, [cliMain, ...args], { env: { ...process.env, ...stack.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
    }

    it.each([
      [['orchestrator'], 'OTEL_TRACES_EXPORTER', 'zipkinn', 'accepted values are otlp, console, none'],
      [['orchestrator'], 'OTEL_EXPORTER_OTLP_PROTOCOL', 'http/xml', 'accepted values are http/protobuf, http/json, grpc'],
      [['orchestrator'], 'OTEL_TRACES_SAMPLER', 'sometimes', 'accepted values are always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio'],
      [['orchestrator'], 'OTEL_TRACES_SAMPLER_ARG', 'half', 'must be a number from 0 to 1'],
      [['worker', 'calc'], 'OTEL_METRICS_EXPORTER', 'statsd', 'accepted values are otlp, prometheus, console, none'],
      [['worker', '--agent', 'analyst'], 'OTEL_LOGS_EXPORTER', 'loki', 'accepted values are otlp, console, none'],
    ])('stops `troupe %s` at start with exit code 2 and one line naming %s=%s and what it accepts', async (args, variable, value, accepted) => {
      const { code, stdout, stderr } = await troupeExit(args, { [variable]: value });
      expect(code).toBe(2);
      expect(stderr.trimEnd().split('\n'), stderr).toHaveLength(1);
      expect(stderr).toMatch(new RegExp(`^troupe: ${variable}="${value.replace('/', '\\/')}": ${accepted.replace(/[()]/g, '\\$&')}`));
      expect(stderr).not.toMatch(/^\s+at /m);
      expect(stdout).toBe('');
    });
  });
});
