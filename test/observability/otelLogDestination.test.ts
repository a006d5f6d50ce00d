import { Writable } from 'node:stream';
import { ROOT_CONTEXT, SeverityNumber, context, logs, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../observability/logger.ts';
import { diagnosticField, otelLogDestination } from '../../observability/otelLogDestination.ts';

describe('otelLogDestination', () => {
  const manager = new AsyncLocalStorageContextManager();
  const exporter = new InMemoryLogRecordExporter();
  beforeAll(() => {
    context.setGlobalContextManager(manager.enable());
    logs.setGlobalLoggerProvider(new LoggerProvider({ processors: [new SimpleLogRecordProcessor({ exporter })] }));
  });
  beforeEach(() => exporter.reset());
  afterAll(() => {
    logs.disable();
    manager.disable();
    context.disable();
  });

  /** A process's logger as startProcessRole makes it when OTEL_LOGS_EXPORTER is set, its stdout captured. */
  function setUp() {
    const stdout: string[] = [];
    const bridged = createLogger({
      name: 'test',
      level: 'debug',
      openTelemetry: true,
      destination: new Writable({ write: (chunk: Buffer, _e, done) => (stdout.push(chunk.toString()), done()) }),
      redact: ['customer.email'],
    });
    return { bridged, stdout };
  }

  it('sends a line written inside a span as a log record carrying that span\'s trace and span ids', () => {
    const { bridged } = setUp();
    const span = new TracerProvider().getTracer('test').startSpan('work');
    context.with(trace.setSpan(ROOT_CONTEXT, span), () => bridged.info({ callId: 'c1', attempt: 2 }, 'tool call finished'));
    bridged.info('outside');
    span.end();
    const [inside, outside] = exporter.getFinishedLogRecords();
    expect(inside?.spanContext).toMatchObject({ traceId: span.spanContext().traceId, spanId: span.spanContext().spanId, traceFlags: 1 });
    expect(inside).toMatchObject({ body: 'tool call finished', severityNumber: SeverityNumber.INFO, severityText: 'INFO', attributes: { callId: 'c1', attempt: 2 } });
    expect(outside?.spanContext).toBeUndefined();
  });

  it('maps levels to severities, errors to exception attributes and objects to JSON, after redaction', () => {
    const { bridged } = setUp();
    bridged.warn({ customer: { email: 'ada@example.com', tier: 'gold' } }, 'slow customer');
    bridged.error({ err: new TypeError('boom') }, 'failed');
    const [warn, error] = exporter.getFinishedLogRecords();
    expect(warn).toMatchObject({ severityNumber: SeverityNumber.WARN, attributes: { customer: '{"email":"[redacted]","tier":"gold"}' } });
    expect(error).toMatchObject({ severityNumber: SeverityNumber.ERROR, attributes: { 'exception.type': 'TypeError', 'exception.message': 'boom' } });
    expect(String(error?.attributes['exception.stacktrace'])).toContain('TypeError: boom');
    expect(JSON.stringify(exporter.getFinishedLogRecords().map((r) => r.attributes))).not.toContain('ada@example.com');
  });

  it('keeps the SDK\'s own diagnostics out of the exported records', () => {
    const { bridged } = setUp();
    bridged.child({ [diagnosticField]: true }).warn('OpenTelemetry: export failed');
    bridged.info('kept');
    expect(exporter.getFinishedLogRecords().map((r) => r.body)).toEqual(['kept']);
  });

  it('never throws into the application, whatever it is given', () => {
    const destination = otelLogDestination({ provider: new LoggerProvider() });
    expect(() => destination.write('{not json\n')).not.toThrow();
    expect(() => destination.write('{"level":30,"msg":"fine","trace_id":"zz","span_id":"yy"}\n')).not.toThrow();
  });

  it('leaves the process\'s own output as it was', async () => {
    const { bridged, stdout } = setUp();
    bridged.info({ callId: 'c1' }, 'both');
    await new Promise((r) => setImmediate(r));
    expect(JSON.parse(stdout.join(''))).toMatchObject({ msg: 'both', callId: 'c1', name: 'test', level: 30 });
    expect(exporter.getFinishedLogRecords().map((r) => r.body)).toEqual(['both']);
  });

  it('sends nothing when openTelemetry is off', () => {
    createLogger({ name: 'test', destination: new Writable({ write: (_c, _e, done) => done() }) }).info('local only');
    expect(exporter.getFinishedLogRecords()).toEqual([]);
  });
});
