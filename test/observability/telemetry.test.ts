import { context, diag, isSpanContextValid, logs, metrics, propagation, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../observability/logger.ts';
import { readOtelSettings } from '../../observability/otelEnvironment.ts';
import { startTelemetry, type Telemetry } from '../../observability/telemetry.ts';
import { troupeTracer } from '../../observability/tracer.ts';

describe('startTelemetry', () => {
  const started: Telemetry[] = [];
  const start = (...args: Parameters<typeof startTelemetry>) => {
    const telemetry = startTelemetry(...args);
    started.push(telemetry);
    return telemetry;
  };

  afterEach(async () => {
    for (const telemetry of started.splice(0)) await telemetry.shutdown();
    for (const api of [trace, metrics, logs, context, propagation, diag]) api.disable();
  });

  it('registers a tracer provider that gives spans real ids even when nothing is exported', () => {
    const telemetry = start({ serviceName: 'troupe-test', logger: silentLogger(), settings: readOtelSettings({}) });
    expect(telemetry).toMatchObject({ registered: true, exporting: false, exportingLogs: false, prometheusUrl: undefined });
    const span = troupeTracer().startSpan('work');
    expect(isSpanContextValid(span.spanContext())).toBe(true);
    span.end();
  });

  it('sends spans to the exporters it is given, and flushes them on demand', async () => {
    const exporter = new InMemorySpanExporter();
    const telemetry = start({ serviceName: 'troupe-test', logger: silentLogger(), settings: readOtelSettings({}), exporters: [exporter] });
    expect(telemetry.exporting).toBe(true);
    troupeTracer().startSpan('work').end();
    await telemetry.flush();
    // The role's name, unless the environment running the tests names a service.
    expect(exporter.getFinishedSpans().map((s) => [s.name, s.resource.attributes['service.name']])).toEqual([['work', process.env.OTEL_SERVICE_NAME || 'troupe-test']]);
  });

  it('drops every span with always_off, and still makes trace ids', async () => {
    const exporter = new InMemorySpanExporter();
    const telemetry = start({ serviceName: 'troupe-test', logger: silentLogger(), settings: readOtelSettings({ OTEL_TRACES_SAMPLER: 'always_off' }), exporters: [exporter] });
    const span = troupeTracer().startSpan('work');
    expect(span.isRecording()).toBe(false);
    expect(isSpanContextValid(span.spanContext())).toBe(true);
    span.end();
    await telemetry.flush();
    expect(exporter.getFinishedSpans()).toEqual([]);
  });

  it('sets up nothing with OTEL_SDK_DISABLED=true', () => {
    const telemetry = start({ serviceName: 'troupe-test', logger: silentLogger(), settings: readOtelSettings({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'console' }) });
    expect(telemetry).toMatchObject({ registered: false, exporting: false });
    expect(isSpanContextValid(troupeTracer().startSpan('work').spanContext())).toBe(false);
  });

  it('leaves an SDK the application registered first alone, and Troupe\'s spans go to it', () => {
    const hostSpans = new InMemorySpanExporter();
    trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: hostSpans })] }));
    // No settings given: it would read (and refuse) process.env's OTEL_* if it went on.
    const telemetry = start({ serviceName: 'troupe-test', logger: silentLogger(), exporters: [new InMemorySpanExporter()] });
    expect(telemetry).toMatchObject({ registered: false, exporting: false });
    troupeTracer().startSpan('work').end();
    expect(hostSpans.getFinishedSpans().map((s) => s.name)).toEqual(['work']);
  });

  it('leaves its own earlier registration alone when called twice', () => {
    expect(start({ serviceName: 'troupe-first', logger: silentLogger(), settings: readOtelSettings({}) }).registered).toBe(true);
    expect(start({ serviceName: 'troupe-second', logger: silentLogger(), settings: readOtelSettings({}) }).registered).toBe(false);
  });
});
