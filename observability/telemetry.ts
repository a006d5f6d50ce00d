import { context, diag, metrics, propagation, trace, DiagLogLevel, type Tracer } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider, PeriodicExportingMetricReader, type MetricReader } from '@opentelemetry/sdk-metrics';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace';
import type { Logger } from 'pino';

/** The instrumentation scope of every Troupe span. */
export const tracerName = 'troupe';

/** The tracer Troupe's library code uses: whatever provider the application registered, or a no-op. */
export function troupeTracer(): Tracer {
  return trace.getTracer(tracerName);
}

export interface TelemetryOptions {
  /** `service.name` in every span: `troupe-orchestrator`, `troupe-worker-files`, … */
  serviceName: string;
  /** Reported to when an export fails; telemetry never throws into the application. */
  logger: Logger;
  /** Extra exporters (tests); OTLP/HTTP is added when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces one) is set. */
  exporters?: SpanExporter[];
  /** Extra metric readers (tests); OTLP/HTTP is added with the endpoint, and a Prometheus endpoint when `TROUPE_PROMETHEUS_PORT` is set. */
  metricReaders?: MetricReader[];
  env?: NodeJS.ProcessEnv;
}

export interface Telemetry {
  /** True when spans leave the process (an exporter is configured). */
  readonly exporting: boolean;
  /** The Prometheus scrape URL, when one is served. */
  readonly prometheusUrl: string | undefined;
  /** Exports what is buffered; resolves even when the collector is down. */
  flush(): Promise<void>;
  /** Flushes and stops. Call once, when the process stops. */
  shutdown(): Promise<void>;
}

/**
 * Sets up OpenTelemetry tracing for a Troupe process: W3C trace context, async context, and OTLP
 * export when configured. Registered globally, so call it once per process, first thing; library
 * users who run their own SDK skip it and Troupe's spans go to their provider.
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  const env = options.env ?? process.env;
  diag.setLogger(
    {
      error: (message, ...args) => options.logger.warn({ otel: args }, `OpenTelemetry: ${message}`),
      warn: (message, ...args) => options.logger.warn({ otel: args }, `OpenTelemetry: ${message}`),
      info: () => {},
      debug: () => {},
      verbose: () => {},
    },
    DiagLogLevel.WARN,
  );
  const exporters = [...(options.exporters ?? [])];
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) exporters.push(new OTLPTraceExporter());
  const spanProcessors: SpanProcessor[] = exporters.map(
    (exporter) => new BatchSpanProcessor({ exporter, scheduledDelayMillis: 500 }),
  );
  const resource = resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME ?? options.serviceName, 'service.namespace': 'troupe' });
  const provider = new TracerProvider({ resource, spanProcessors });
  const readers = [...(options.metricReaders ?? [])];
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT) {
    const interval = Number(env.OTEL_METRIC_EXPORT_INTERVAL ?? 15_000);
    readers.push(new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter(), exportIntervalMillis: interval, exportTimeoutMillis: Math.min(interval, 10_000) }));
  }
  let prometheusUrl: string | undefined;
  if (env.TROUPE_PROMETHEUS_PORT) {
    const port = Number(env.TROUPE_PROMETHEUS_PORT);
    const host = env.TROUPE_PROMETHEUS_HOST ?? '0.0.0.0';
    readers.push(new PrometheusExporter({ port, host }, (error) => {
      if (error) options.logger.warn({ err: error, port }, 'could not serve Prometheus metrics');
    }));
    prometheusUrl = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}/metrics`;
  }
  const meterProvider = new MeterProvider({ resource, readers });
  metrics.setGlobalMeterProvider(meterProvider);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
  trace.setGlobalTracerProvider(provider);
  const guarded = async (what: string, work: () => Promise<void>) => {
    try {
      await work();
    } catch (error) {
      options.logger.warn({ err: error }, `OpenTelemetry ${what} failed; spans may be lost`);
    }
  };
  return {
    exporting: exporters.length > 0,
    prometheusUrl,
    flush: async () => {
      await guarded('span flush', () => provider.forceFlush({ timeoutMillis: 5_000 }));
      await guarded('metric flush', () => meterProvider.forceFlush({ timeoutMillis: 5_000 }));
    },
    shutdown: async () => {
      await guarded('span shutdown', () => provider.shutdown());
      await guarded('metric shutdown', () => meterProvider.shutdown({ timeoutMillis: 5_000 }));
    },
  };
}
