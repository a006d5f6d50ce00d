import { DiagLogLevel, ProxyTracerProvider, diag, trace, type DiagLogger } from '@opentelemetry/api';
import { OTLPLogExporter as GrpcLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as JsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as ProtobufLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPMetricExporter as GrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as JsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as ProtobufMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, ConsoleLogRecordExporter, SimpleLogRecordProcessor, type LogRecordProcessor } from '@opentelemetry/sdk-logs';
import { ConsoleMetricExporter, PeriodicExportingMetricReader, type MetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  AlwaysOffSampler, AlwaysOnSampler, BatchSpanProcessor, ConsoleSpanExporter, NoopSpanProcessor, ParentBasedSampler,
  SimpleSpanProcessor, TraceIdRatioBasedSampler, type Sampler, type SpanExporter, type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import type { Logger } from 'pino';
import { diagnosticField } from './otelLogDestination.ts';
import { readOtelSettings, type DiagLogLevelName, type OtelSettings, type OtlpProtocol } from './otelEnvironment.ts';
import { tracerName } from './tracer.ts';

export { tracerName, troupeTracer } from './tracer.ts';

export interface TelemetryOptions {
  /** `service.name` unless `OTEL_SERVICE_NAME` (or `OTEL_RESOURCE_ATTRIBUTES`) names one: `troupe-orchestrator`, `troupe-worker-files`, … */
  serviceName: string;
  /** Where the SDK's own warnings (a failed export, a refused endpoint) are written; telemetry never throws into the application. */
  logger: Logger;
  /** The OpenTelemetry settings, when the caller read them already; otherwise read from `process.env` here. */
  settings?: OtelSettings;
  /** More span exporters besides the configured ones (tests). */
  exporters?: SpanExporter[];
  /** More metric readers besides the configured ones (tests). */
  metricReaders?: MetricReader[];
}

export interface Telemetry {
  /** False when this call set nothing up: `OTEL_SDK_DISABLED=true`, or the application had registered its own SDK. */
  readonly registered: boolean;
  /** True when spans leave the process (an exporter is configured). */
  readonly exporting: boolean;
  /** True when log records leave the process: give the process's pino logger `openTelemetry: true`. */
  readonly exportingLogs: boolean;
  /** The Prometheus scrape URL, when one is served. */
  readonly prometheusUrl: string | undefined;
  /** Exports what is buffered; resolves even when the collector is down. */
  flush(): Promise<void>;
  /** Flushes and stops, within a few seconds even when the collector is down. Call once, when the process stops. */
  shutdown(): Promise<void>;
}

const shutdownLimitMillis = 5_000;

/**
 * Sets up OpenTelemetry for a Troupe process with `NodeSDK`, configured by the standard `OTEL_*`
 * variables (see `readOtelSettings`): spans, metrics and log records, their exporters (OTLP over
 * `http/protobuf`, `http/json` or `grpc`, `console`, `prometheus` for metrics), the resource,
 * the sampler, W3C trace context and async context. Registered globally, so call it once per
 * process, first thing. It throws a `TelemetryConfigurationError` when a variable is wrong, and
 * nothing else: should the SDK itself fail to start, the process runs on without telemetry.
 *
 * A host application that registered its own SDK first keeps it: when a tracer provider is
 * already registered, this registers nothing, reads no `OTEL_*` variable and returns a telemetry
 * whose flush and shutdown do nothing; Troupe's spans and metrics (it uses only the API) go to
 * the host's providers. Such an application need not call this at all.
 *
 * @example
 * const logger = createLogger({ name: 'worker-fx' });
 * const telemetry = startTelemetry({ serviceName: 'troupe-worker-fx', logger });
 * process.once('SIGTERM', () => void telemetry.shutdown().finally(() => process.exit(0)));
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  if (hostProviderRegistered()) {
    options.logger.info('OpenTelemetry: the application registered its own SDK; Troupe\'s spans and metrics go to it');
    return inactive;
  }
  const settings = options.settings ?? readOtelSettings();
  if (settings.disabled) {
    options.logger.info('OpenTelemetry is off (OTEL_SDK_DISABLED=true)');
    return inactive;
  }
  try {
    return startSdk(options, settings);
  } catch (error) {
    // The settings were checked, so this is the SDK's own failure: it costs the process its telemetry, not its work.
    options.logger.warn({ err: error, [diagnosticField]: true }, 'OpenTelemetry could not start; the process runs without telemetry');
    return inactive;
  }
}

function startSdk(options: TelemetryOptions, settings: OtelSettings): Telemetry {
  const diagnostics = diagnosticLogger(options.logger.child({ [diagnosticField]: true }));
  // Set first so that exporters' complaints while they are built reach the log.
  diag.setLogger(diagnostics, diagLevels[settings.logLevel]);

  const spanExporters = [...settings.traces.exporters.map((name) => (name === 'console' ? new ConsoleSpanExporter() : otlpTraceExporter(settings.traces.protocol))), ...(options.exporters ?? [])];
  const spanProcessors: SpanProcessor[] = spanExporters.map((exporter) =>
    exporter instanceof ConsoleSpanExporter ? new SimpleSpanProcessor({ exporter }) : new BatchSpanProcessor({ exporter, ...settings.traces.batch }));
  const { metrics } = settings;
  const metricReaders: MetricReader[] = [...metrics.exporters.map((name): MetricReader => {
    if (name === 'prometheus') {
      return new PrometheusExporter(metrics.prometheus, (error) => {
        if (error) options.logger.warn({ err: error, port: metrics.prometheus.port }, 'could not serve Prometheus metrics');
      });
    }
    const exporter = name === 'console' ? new ConsoleMetricExporter() : otlpMetricExporter(metrics.protocol);
    return new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: metrics.intervalMillis, exportTimeoutMillis: metrics.timeoutMillis });
  }), ...(options.metricReaders ?? [])];
  const logProcessors: LogRecordProcessor[] = settings.logs.exporters.map((name) =>
    name === 'console' ? new SimpleLogRecordProcessor({ exporter: new ConsoleLogRecordExporter() }) : new BatchLogRecordProcessor({ exporter: otlpLogExporter(settings.logs.protocol), ...settings.logs.batch }));

  // NodeSDK's constructor swaps in a console diag logger when OTEL_LOG_LEVEL is set: take the
  // process's own back without the "logger overwritten" warnings a plain re-register writes.
  diag.disable();
  const sdk = new NodeSDK({
    // The role's name under whatever OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES say (the env detector wins).
    resource: defaultResource().merge(resourceFromAttributes({ 'service.name': options.serviceName, 'service.namespace': 'troupe' })),
    sampler: samplerOf(settings.traces),
    // With no exporter a provider is still registered: sessions get real trace ids to carry across
    // processes and into logs, even when nothing is exported here.
    spanProcessors: spanProcessors.length > 0 ? spanProcessors : [new NoopSpanProcessor()],
    metricReaders,
    // An empty list, not undefined: NodeSDK would otherwise read OTEL_LOGS_EXPORTER with its own default.
    logRecordProcessors: logProcessors,
  });
  diag.disable();
  diag.setLogger(diagnostics, diagLevels[settings.logLevel]);
  sdk.start();

  const guarded = async (what: string, work: () => Promise<void>) => {
    try {
      await work();
    } catch (error) {
      options.logger.warn({ err: error, [diagnosticField]: true }, `OpenTelemetry ${what} failed; telemetry may be lost`);
    }
  };
  let stopped: Promise<void> | undefined;
  return {
    registered: true,
    exporting: spanExporters.length > 0,
    exportingLogs: logProcessors.length > 0,
    prometheusUrl: metrics.exporters.includes('prometheus')
      ? `http://${metrics.prometheus.host === '0.0.0.0' ? '127.0.0.1' : metrics.prometheus.host}:${metrics.prometheus.port}/metrics`
      : undefined,
    flush: async () => {
      await Promise.all([
        ...spanProcessors.map((p) => guarded('span flush', () => p.forceFlush())),
        ...metricReaders.map((r) => guarded('metric flush', () => r.forceFlush({ timeoutMillis: shutdownLimitMillis }))),
        ...logProcessors.map((p) => guarded('log flush', () => p.forceFlush())),
      ]);
    },
    shutdown: () => {
      // A collector that does not answer must not keep the process from stopping.
      stopped ??= guarded('shutdown', () => withinLimit(sdk.shutdown(), shutdownLimitMillis));
      return stopped;
    },
  };
}

const inactive: Telemetry = {
  registered: false,
  exporting: false,
  exportingLogs: false,
  prometheusUrl: undefined,
  flush: async () => {},
  shutdown: async () => {},
};

/** Whether a tracer provider is registered already (by the host application, or an earlier call). */
function hostProviderRegistered(): boolean {
  const provider = trace.getTracerProvider();
  // Another copy of the API registered a provider of its own kind: someone owns the globals.
  if (!(provider instanceof ProxyTracerProvider)) return true;
  return provider.getDelegateTracer(tracerName) !== undefined;
}

function otlpTraceExporter(protocol: OtlpProtocol): SpanExporter {
  if (protocol === 'grpc') return new GrpcTraceExporter();
  return protocol === 'http/json' ? new JsonTraceExporter() : new ProtobufTraceExporter();
}

function otlpMetricExporter(protocol: OtlpProtocol) {
  if (protocol === 'grpc') return new GrpcMetricExporter();
  return protocol === 'http/json' ? new JsonMetricExporter() : new ProtobufMetricExporter();
}

function otlpLogExporter(protocol: OtlpProtocol) {
  if (protocol === 'grpc') return new GrpcLogExporter();
  return protocol === 'http/json' ? new JsonLogExporter() : new ProtobufLogExporter();
}

function samplerOf({ sampler, ratio }: OtelSettings['traces']): Sampler {
  switch (sampler) {
    case 'always_on': return new AlwaysOnSampler();
    case 'always_off': return new AlwaysOffSampler();
    case 'traceidratio': return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_on': return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off': return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio': return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
}

const diagLevels: Record<DiagLogLevelName, DiagLogLevel> = {
  none: DiagLogLevel.NONE, error: DiagLogLevel.ERROR, warn: DiagLogLevel.WARN, info: DiagLogLevel.INFO,
  debug: DiagLogLevel.DEBUG, verbose: DiagLogLevel.VERBOSE, all: DiagLogLevel.ALL,
};

/** The SDK's own messages as process log lines; its errors (a failed export) are the application's warnings. */
function diagnosticLogger(logger: Logger): DiagLogger {
  const at = (level: 'warn' | 'info' | 'debug') => (message: string, ...args: unknown[]) =>
    logger[level](args.length > 0 ? { otel: args.map((a) => (a instanceof Error ? { type: a.name, message: a.message } : a)) } : {}, `OpenTelemetry: ${message}`);
  return { error: at('warn'), warn: at('warn'), info: at('info'), debug: at('debug'), verbose: at('debug') };
}

function withinLimit(work: Promise<void>, millis: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, millis);
    timer.unref();
  });
  return Promise.race([work, limit]).finally(() => clearTimeout(timer));
}
