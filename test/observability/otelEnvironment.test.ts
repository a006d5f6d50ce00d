import { describe, expect, it } from 'vitest';
import { readOtelSettings, TelemetryConfigurationError } from '../../observability/otelEnvironment.ts';

function refusal(env: NodeJS.ProcessEnv): TelemetryConfigurationError {
  try {
    readOtelSettings(env);
  } catch (error) {
    if (error instanceof TelemetryConfigurationError) return error;
    throw error;
  }
  throw new Error(`readOtelSettings accepted ${JSON.stringify(env)}`);
}

describe('readOtelSettings', () => {
  it('exports nothing and samples parent-based when nothing is set', () => {
    expect(readOtelSettings({})).toStrictEqual({
      disabled: false,
      logLevel: 'warn',
      traces: { exporters: [], protocol: 'http/protobuf', sampler: 'parentbased_always_on', ratio: 1, batch: {} },
      metrics: { exporters: [], protocol: 'http/protobuf', intervalMillis: 60_000, timeoutMillis: 30_000, prometheus: { host: '0.0.0.0', port: 9464 } },
      logs: { exporters: [], protocol: 'http/protobuf', batch: {} },
    });
  });

  it('exports every signal over OTLP/HTTP protobuf once an endpoint is set', () => {
    const settings = readOtelSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4318' });
    expect([settings.traces, settings.metrics, settings.logs].map((s) => [s.exporters, s.protocol])).toEqual([
      [['otlp'], 'http/protobuf'], [['otlp'], 'http/protobuf'], [['otlp'], 'http/protobuf'],
    ]);
  });

  it('exports only the signal whose own endpoint is set', () => {
    const settings = readOtelSettings({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://jaeger:4318/v1/traces' });
    expect([settings.traces.exporters, settings.metrics.exporters, settings.logs.exporters]).toEqual([['otlp'], [], []]);
  });

  it('lets the exporter variables override the endpoint rule, and "none" turn a signal off', () => {
    const settings = readOtelSettings({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4318',
      OTEL_TRACES_EXPORTER: 'otlp,console',
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: 'console',
    });
    expect([settings.traces.exporters, settings.metrics.exporters, settings.logs.exporters]).toEqual([['otlp', 'console'], [], ['console']]);
    expect(readOtelSettings({ OTEL_TRACES_EXPORTER: 'otlp' }).traces.exporters).toEqual(['otlp']);
  });

  it('takes the protocol per signal over the general one, and values in any case', () => {
    const settings = readOtelSettings({ OTEL_EXPORTER_OTLP_PROTOCOL: 'GRPC', OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'http/json', OTEL_TRACES_EXPORTER: ' OTLP ' });
    expect([settings.traces.protocol, settings.metrics.protocol, settings.logs.protocol]).toEqual(['grpc', 'grpc', 'http/json']);
    expect(settings.traces.exporters).toEqual(['otlp']);
  });

  it('reads the sampler and its ratio', () => {
    expect(readOtelSettings({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }).traces).toMatchObject({ sampler: 'parentbased_traceidratio', ratio: 0.25 });
    expect(readOtelSettings({ OTEL_TRACES_SAMPLER: 'traceidratio' }).traces.ratio).toBe(1);
    expect(readOtelSettings({ OTEL_TRACES_SAMPLER: 'always_off' }).traces.sampler).toBe('always_off');
  });

  it('serves Prometheus on TROUPE_PROMETHEUS_PORT whatever OTEL_METRICS_EXPORTER says, and on the OpenTelemetry port otherwise', () => {
    const troupe = readOtelSettings({ TROUPE_PROMETHEUS_PORT: '9999', OTEL_METRICS_EXPORTER: 'none' }).metrics;
    expect(troupe).toMatchObject({ exporters: ['prometheus'], prometheus: { host: '0.0.0.0', port: 9999 } });
    const otel = readOtelSettings({ OTEL_METRICS_EXPORTER: 'prometheus', OTEL_EXPORTER_PROMETHEUS_PORT: '9465', OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1' }).metrics;
    expect(otel).toMatchObject({ exporters: ['prometheus'], prometheus: { host: '127.0.0.1', port: 9465 } });
    expect(readOtelSettings({ OTEL_METRICS_EXPORTER: 'otlp,prometheus', TROUPE_PROMETHEUS_PORT: '9999' }).metrics.exporters).toEqual(['otlp', 'prometheus']);
  });

  it('keeps the metric export timeout within the interval', () => {
    expect(readOtelSettings({ OTEL_METRIC_EXPORT_INTERVAL: '300' }).metrics).toMatchObject({ intervalMillis: 300, timeoutMillis: 300 });
  });

  it('passes the batch settings on to the span and log processors', () => {
    const settings = readOtelSettings({ OTEL_BSP_SCHEDULE_DELAY: '200', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '64', OTEL_BLRP_SCHEDULE_DELAY: '100' });
    expect(settings.traces.batch).toStrictEqual({ scheduledDelayMillis: 200, maxExportBatchSize: 64 });
    expect(settings.logs.batch).toStrictEqual({ scheduledDelayMillis: 100 });
  });

  it('reads OTEL_SDK_DISABLED and OTEL_LOG_LEVEL, and treats empty variables as unset', () => {
    expect(readOtelSettings({ OTEL_SDK_DISABLED: 'TRUE', OTEL_LOG_LEVEL: 'debug' })).toMatchObject({ disabled: true, logLevel: 'debug' });
    expect(readOtelSettings({ OTEL_SDK_DISABLED: '', OTEL_TRACES_EXPORTER: '', OTEL_TRACES_SAMPLER_ARG: ' ' })).toMatchObject({ disabled: false, traces: { exporters: [], ratio: 1 } });
  });

  it('accepts the standard forms of resource attributes, headers and endpoints', () => {
    expect(() => readOtelSettings({
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=staging, team=agents%2Cops',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20abc,x-tenant=acme',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel.example.com:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://localhost:4318/v1/traces',
      OTEL_PROPAGATORS: 'tracecontext,baggage',
      OTEL_SERVICE_NAME: 'checkout-agents',
    })).not.toThrow();
  });

  it.each([
    ['OTEL_TRACES_EXPORTER', 'zipkinn', 'OTEL_TRACES_EXPORTER="zipkinn": accepted values are otlp, console, none (comma-separated)'],
    ['OTEL_METRICS_EXPORTER', 'otlp,statsd', 'OTEL_METRICS_EXPORTER="otlp,statsd": accepted values are otlp, prometheus, console, none (comma-separated)'],
    ['OTEL_LOGS_EXPORTER', 'none,otlp', 'OTEL_LOGS_EXPORTER="none,otlp": "none" turns the signal off and cannot be combined with other values'],
    ['OTEL_EXPORTER_OTLP_PROTOCOL', 'http/xml', 'OTEL_EXPORTER_OTLP_PROTOCOL="http/xml": accepted values are http/protobuf, http/json, grpc'],
    ['OTEL_EXPORTER_OTLP_METRICS_PROTOCOL', 'udp', 'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL="udp": accepted values are http/protobuf, http/json, grpc'],
    ['OTEL_TRACES_SAMPLER', 'sometimes', 'OTEL_TRACES_SAMPLER="sometimes": accepted values are always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio'],
    ['OTEL_TRACES_SAMPLER_ARG', 'half', 'OTEL_TRACES_SAMPLER_ARG="half": must be a number from 0 to 1 (the fraction of traces kept)'],
    ['OTEL_TRACES_SAMPLER_ARG', '1.5', 'OTEL_TRACES_SAMPLER_ARG="1.5": must be a number from 0 to 1 (the fraction of traces kept)'],
    ['OTEL_SDK_DISABLED', 'yes', 'OTEL_SDK_DISABLED="yes": accepted values are true, false'],
    ['OTEL_EXPORTER_OTLP_ENDPOINT', 'localhost:4318', 'OTEL_EXPORTER_OTLP_ENDPOINT="localhost:4318": must be an http:// or https:// URL, e.g. http://localhost:4318 (4317 for grpc)'],
    ['OTEL_EXPORTER_OTLP_HEADERS', 'authorization', 'OTEL_EXPORTER_OTLP_HEADERS="authorization": must be headers as key=value pairs separated by commas (percent-encode "," inside values)'],
    ['OTEL_RESOURCE_ATTRIBUTES', 'deployment.environment', 'OTEL_RESOURCE_ATTRIBUTES="deployment.environment": must be resource attributes as key=value pairs separated by commas, one "=" per pair and at most 255 characters a side (percent-encode "," and "=")'],
    ['OTEL_RESOURCE_ATTRIBUTES', 'k=a=b', 'OTEL_RESOURCE_ATTRIBUTES="k=a=b": must be resource attributes as key=value pairs separated by commas, one "=" per pair and at most 255 characters a side (percent-encode "," and "=")'],
    ['OTEL_PROPAGATORS', 'TraceContext', 'OTEL_PROPAGATORS="TraceContext": accepted values are tracecontext, baggage, b3, b3multi, none (comma-separated, lower case)'],
    ['OTEL_METRIC_EXPORT_INTERVAL', '15s', 'OTEL_METRIC_EXPORT_INTERVAL="15s": must be a whole number from 1'],
    ['TROUPE_PROMETHEUS_PORT', '70000', 'TROUPE_PROMETHEUS_PORT="70000": must be a port number from 1 to 65535'],
    ['OTEL_CONFIG_FILE', 'otel.yaml', 'OTEL_CONFIG_FILE="otel.yaml": is not supported by Troupe: configure OpenTelemetry with the OTEL_* variables'],
  ])('refuses %s=%s with one line naming the variable and what it accepts', (variable, value, message) => {
    const error = refusal({ [variable]: value });
    expect(error.message).toBe(message);
    expect(error.problems).toEqual([{ variable, value, message: expect.any(String) }]);
  });

  it('names every wrong variable, still on one line', () => {
    const error = refusal({ OTEL_TRACES_EXPORTER: 'zipkinn', OTEL_TRACES_SAMPLER: 'sometimes' });
    expect(error.problems.map((p) => p.variable)).toEqual(['OTEL_TRACES_EXPORTER', 'OTEL_TRACES_SAMPLER']);
    expect(error.message).not.toContain('\n');
    expect(error.message).toMatch(/^OTEL_TRACES_EXPORTER="zipkinn": .+; OTEL_TRACES_SAMPLER="sometimes": .+$/);
  });
});
