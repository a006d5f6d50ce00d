import { context, diag, propagation, trace, DiagLogLevel, type Tracer } from '@opentelemetry/api';
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
  env?: NodeJS.ProcessEnv;
}

export interface Telemetry {
  /** True when spans leave the process (an exporter is configured). */
  readonly exporting: boolean;
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
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME ?? options.serviceName, 'service.namespace': 'troupe' }),
    spanProcessors,
  });
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
    flush: () => guarded('flush', () => provider.forceFlush({ timeoutMillis: 5_000 })),
    shutdown: () => guarded('shutdown', () => provider.shutdown()),
  };
}
