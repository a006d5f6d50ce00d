import * as z from 'zod';

/** The OTLP transports, as `OTEL_EXPORTER_OTLP_PROTOCOL` names them. */
export const otlpProtocols = ['http/protobuf', 'http/json', 'grpc'] as const;
export type OtlpProtocol = (typeof otlpProtocols)[number];

export const traceExporterNames = ['otlp', 'console', 'none'] as const;
export const metricExporterNames = ['otlp', 'prometheus', 'console', 'none'] as const;
export const logExporterNames = ['otlp', 'console', 'none'] as const;
export const samplerNames = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
export type SamplerName = (typeof samplerNames)[number];
export const diagLogLevels = ['none', 'error', 'warn', 'info', 'debug', 'verbose', 'all'] as const;
export type DiagLogLevelName = (typeof diagLogLevels)[number];
/** Read by NodeSDK itself, by these exact (lower-case) names. */
const propagatorNames = ['tracecontext', 'baggage', 'b3', 'b3multi', 'none'] as const;
const resourceDetectorNames = ['env', 'host', 'os', 'process', 'serviceinstance', 'all', 'none'] as const;

type Without<T extends readonly string[], U> = Exclude<T[number], U>;

// Enumerated values are compared without regard to case, as the specification asks.
const oneOf = <const T extends readonly string[]>(values: T) =>
  z.string().transform((text, ctx): T[number] => {
    const value = text.trim().toLowerCase();
    if ((values as readonly string[]).includes(value)) return value;
    ctx.addIssue({ code: 'custom', message: `accepted values are ${values.join(', ')}` });
    return z.NEVER;
  });

/** A comma-separated list of names; `none` stands alone and reads as the empty list. */
const listOf = <const T extends readonly string[]>(values: T, options: { caseSensitive?: boolean } = {}) =>
  z.string().transform((text, ctx): Array<Without<T, 'none'>> => {
    const names = [...new Set(text.split(',').map((s) => (options.caseSensitive ? s.trim() : s.trim().toLowerCase())).filter(Boolean))];
    if (names.length === 0 || names.some((n) => !(values as readonly string[]).includes(n))) {
      ctx.addIssue({ code: 'custom', message: `accepted values are ${values.join(', ')} (comma-separated${options.caseSensitive ? ', lower case' : ''})` });
      return z.NEVER;
    }
    if (names.includes('none') && names.length > 1) {
      ctx.addIssue({ code: 'custom', message: '"none" turns the signal off and cannot be combined with other values' });
      return z.NEVER;
    }
    return names.filter((n): n is Without<T, 'none'> => n !== 'none');
  });

const boolean = oneOf(['true', 'false']).transform((v) => v === 'true');

const integer = (min: number, max = Number.MAX_SAFE_INTEGER, what = `a whole number from ${min}`) =>
  z.string().transform((text, ctx) => {
    const value = Number(text.trim());
    if (/^\s*\d+\s*$/.test(text) && value >= min && value <= max) return value;
    ctx.addIssue({ code: 'custom', message: `must be ${what}` });
    return z.NEVER;
  });
const milliseconds = integer(0, Number.MAX_SAFE_INTEGER, 'a whole number of milliseconds');
const count = integer(1, Number.MAX_SAFE_INTEGER, 'a whole number from 1');
const port = integer(1, 65_535, 'a port number from 1 to 65535');

const ratio = z.string().transform((text, ctx) => {
  const value = Number(text.trim());
  if (text.trim() !== '' && Number.isFinite(value) && value >= 0 && value <= 1) return value;
  ctx.addIssue({ code: 'custom', message: 'must be a number from 0 to 1 (the fraction of traces kept)' });
  return z.NEVER;
});

const endpoint = z.string().refine((text) => {
  try {
    return ['http:', 'https:'].includes(new URL(text.trim()).protocol);
  } catch {
    return false;
  }
}, 'must be an http:// or https:// URL, e.g. http://localhost:4318 (4317 for grpc)');

// `key=value,key=value` with percent-encoding, as OTEL_RESOURCE_ATTRIBUTES and the OTLP headers
// are read: an entry the SDK cannot read would otherwise drop silently (all of them, for resources).
function readablePairs(text: string, options: { resource: boolean }): boolean {
  return text.split(',').filter((entry) => entry.trim() !== '').every((entry) => {
    const at = entry.indexOf('=');
    if (at <= 0 || entry.slice(0, at).trim() === '') return false;
    // The resource detector takes a single "=" per entry and at most 255 characters a side.
    if (options.resource && (entry.split('=').length !== 2 || entry.split('=').some((side) => side.trim().length > 255))) return false;
    try {
      decodeURIComponent(entry.slice(0, at));
      decodeURIComponent(entry.slice(at + 1));
      return true;
    } catch {
      return false;
    }
  });
}
const headers = z.string().refine((text) => readablePairs(text, { resource: false }),
  'must be headers as key=value pairs separated by commas (percent-encode "," inside values)');
const resourceAttributes = z.string().refine((text) => readablePairs(text, { resource: true }),
  'must be resource attributes as key=value pairs separated by commas, one "=" per pair and at most 255 characters a side (percent-encode "," and "=")');

const signals = ['', 'TRACES_', 'METRICS_', 'LOGS_'] as const;
type OtlpVariable<N extends string> = `OTEL_EXPORTER_OTLP_${(typeof signals)[number]}${N}`;
/** The same setting for all signals and for each one (`OTEL_EXPORTER_OTLP_TRACES_…` wins). */
function perSignal<N extends string, S extends z.ZodType>(name: N, schema: S) {
  return Object.fromEntries(signals.map((signal) => [`OTEL_EXPORTER_OTLP_${signal}${name}`, schema.optional()])) as Record<OtlpVariable<N>, z.ZodOptional<S>>;
}

/**
 * The OpenTelemetry environment variables Troupe's processes read, each checked the way the
 * OpenTelemetry specification defines it. The SDK itself only warns about a value it does not
 * know and carries on without it (no exporter, the default sampler); a Troupe process refuses to
 * start instead. Empty variables count as unset. `TROUPE_PROMETHEUS_PORT` / `_HOST` are Troupe's
 * older names for a Prometheus endpoint and still work.
 */
export const OtelEnvironment = z.object({
  OTEL_SDK_DISABLED: boolean.optional(),
  OTEL_LOG_LEVEL: oneOf(diagLogLevels).optional(),
  OTEL_SERVICE_NAME: z.string().trim().min(1).optional(),
  OTEL_RESOURCE_ATTRIBUTES: resourceAttributes.optional(),
  OTEL_NODE_RESOURCE_DETECTORS: listOf(resourceDetectorNames, { caseSensitive: true }).optional(),
  OTEL_PROPAGATORS: listOf(propagatorNames, { caseSensitive: true }).optional(),
  OTEL_TRACES_EXPORTER: listOf(traceExporterNames).optional(),
  OTEL_METRICS_EXPORTER: listOf(metricExporterNames).optional(),
  OTEL_LOGS_EXPORTER: listOf(logExporterNames).optional(),
  OTEL_TRACES_SAMPLER: oneOf(samplerNames).optional(),
  OTEL_TRACES_SAMPLER_ARG: ratio.optional(),
  ...perSignal('PROTOCOL', oneOf(otlpProtocols)),
  ...perSignal('ENDPOINT', endpoint),
  ...perSignal('HEADERS', headers),
  ...perSignal('TIMEOUT', milliseconds),
  ...perSignal('COMPRESSION', oneOf(['gzip', 'none'])),
  ...perSignal('INSECURE', boolean),
  OTEL_BSP_SCHEDULE_DELAY: milliseconds.optional(),
  OTEL_BSP_EXPORT_TIMEOUT: milliseconds.optional(),
  OTEL_BSP_MAX_QUEUE_SIZE: count.optional(),
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: count.optional(),
  OTEL_BLRP_SCHEDULE_DELAY: milliseconds.optional(),
  OTEL_BLRP_EXPORT_TIMEOUT: milliseconds.optional(),
  OTEL_BLRP_MAX_QUEUE_SIZE: count.optional(),
  OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: count.optional(),
  OTEL_METRIC_EXPORT_INTERVAL: count.optional(),
  OTEL_METRIC_EXPORT_TIMEOUT: count.optional(),
  OTEL_EXPORTER_PROMETHEUS_HOST: z.string().trim().min(1).optional(),
  OTEL_EXPORTER_PROMETHEUS_PORT: port.optional(),
  TROUPE_PROMETHEUS_HOST: z.string().trim().min(1).optional(),
  TROUPE_PROMETHEUS_PORT: port.optional(),
  // NodeSDK reads only the variables; a configuration file would be silently ignored.
  OTEL_CONFIG_FILE: z.string().refine(() => false, 'is not supported by Troupe: configure OpenTelemetry with the OTEL_* variables').optional(),
});
export type OtelEnvironment = z.infer<typeof OtelEnvironment>;

interface BatchSettings {
  scheduledDelayMillis?: number;
  exportTimeoutMillis?: number;
  maxQueueSize?: number;
  maxExportBatchSize?: number;
}

/** What a process's telemetry is made of, resolved from {@link OtelEnvironment}. */
export interface OtelSettings {
  /** `OTEL_SDK_DISABLED=true`: no SDK at all (no spans, ids, metrics or log records). */
  readonly disabled: boolean;
  /** How much the SDK says about itself, into the process's log; `warn` unless `OTEL_LOG_LEVEL` says otherwise. */
  readonly logLevel: DiagLogLevelName;
  readonly traces: {
    readonly exporters: ReadonlyArray<Without<typeof traceExporterNames, 'none'>>;
    readonly protocol: OtlpProtocol;
    readonly sampler: SamplerName;
    /** For the ratio samplers: the fraction of traces kept. */
    readonly ratio: number;
    readonly batch: BatchSettings;
  };
  readonly metrics: {
    readonly exporters: ReadonlyArray<Without<typeof metricExporterNames, 'none'>>;
    readonly protocol: OtlpProtocol;
    readonly intervalMillis: number;
    readonly timeoutMillis: number;
    /** Where the Prometheus scrape endpoint listens, when `prometheus` is among the exporters. */
    readonly prometheus: { readonly host: string; readonly port: number };
  };
  readonly logs: {
    readonly exporters: ReadonlyArray<Without<typeof logExporterNames, 'none'>>;
    readonly protocol: OtlpProtocol;
    readonly batch: BatchSettings;
  };
}

/** One variable that is set to something OpenTelemetry does not accept. */
export interface OtelProblem {
  readonly variable: string;
  readonly value: string;
  readonly message: string;
}

/** An `OTEL_*` variable holds a value OpenTelemetry does not accept: the process must not start. */
export class TelemetryConfigurationError extends Error {
  readonly problems: readonly OtelProblem[];
  constructor(problems: readonly OtelProblem[]) {
    // One line, however many problems: it is what the CLI prints before it exits.
    super(problems.map((p) => `${p.variable}=${JSON.stringify(p.value)}: ${p.message}`).join('; '));
    this.name = new.target.name;
    this.problems = problems;
  }
}

const defaultInterval = 60_000;

/**
 * Reads and checks the OpenTelemetry variables of `env` and resolves what they mean, or throws a
 * {@link TelemetryConfigurationError} naming every variable that is wrong and what it accepts.
 *
 * Defaults follow the specification (`http/protobuf`, `parentbased_always_on`, a 60 s metric
 * interval) with one exception: a signal whose exporter variable is unset is exported over OTLP
 * only when an OTLP endpoint for it is set, so a process with no collector configured sends
 * nothing rather than failing against `localhost:4318`.
 */
export function readOtelSettings(env: NodeJS.ProcessEnv = process.env): OtelSettings {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== '')) as Record<string, string>;
  const parsed = OtelEnvironment.safeParse(present);
  if (!parsed.success) {
    throw new TelemetryConfigurationError(parsed.error.issues.map((issue) => {
      const variable = String(issue.path[0]);
      return { variable, value: present[variable] ?? '', message: issue.message };
    }));
  }
  return otelSettingsOf(parsed.data);
}

/** The settings a checked environment stands for (see {@link readOtelSettings} for the defaults). */
export function otelSettingsOf(e: OtelEnvironment): OtelSettings {
  const protocolOf = (signal: 'TRACES' | 'METRICS' | 'LOGS'): OtlpProtocol =>
    e[`OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`] ?? e.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf';
  const endpointSet = (signal: 'TRACES' | 'METRICS' | 'LOGS') =>
    e[`OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`] !== undefined || e.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined;
  const otlpIfEndpoint = (signal: 'TRACES' | 'METRICS' | 'LOGS') => (endpointSet(signal) ? (['otlp'] as const) : []);
  const metricExporters: OtelSettings['metrics']['exporters'] = e.OTEL_METRICS_EXPORTER ?? otlpIfEndpoint('METRICS');
  const intervalMillis = e.OTEL_METRIC_EXPORT_INTERVAL ?? defaultInterval;
  const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  return {
    disabled: e.OTEL_SDK_DISABLED ?? false,
    logLevel: e.OTEL_LOG_LEVEL ?? 'warn',
    traces: {
      exporters: e.OTEL_TRACES_EXPORTER ?? otlpIfEndpoint('TRACES'),
      protocol: protocolOf('TRACES'),
      sampler: e.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on',
      ratio: e.OTEL_TRACES_SAMPLER_ARG ?? 1,
      batch: defined({
        scheduledDelayMillis: e.OTEL_BSP_SCHEDULE_DELAY, exportTimeoutMillis: e.OTEL_BSP_EXPORT_TIMEOUT,
        maxQueueSize: e.OTEL_BSP_MAX_QUEUE_SIZE, maxExportBatchSize: e.OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
      }),
    },
    metrics: {
      // TROUPE_PROMETHEUS_PORT asks for the scrape endpoint by itself, whatever else is exported.
      exporters: e.TROUPE_PROMETHEUS_PORT !== undefined && !metricExporters.includes('prometheus') ? [...metricExporters, 'prometheus'] : metricExporters,
      protocol: protocolOf('METRICS'),
      intervalMillis,
      timeoutMillis: Math.min(e.OTEL_METRIC_EXPORT_TIMEOUT ?? 30_000, intervalMillis),
      prometheus: {
        host: e.TROUPE_PROMETHEUS_HOST ?? e.OTEL_EXPORTER_PROMETHEUS_HOST ?? '0.0.0.0',
        port: e.TROUPE_PROMETHEUS_PORT ?? e.OTEL_EXPORTER_PROMETHEUS_PORT ?? 9464,
      },
    },
    logs: {
      exporters: e.OTEL_LOGS_EXPORTER ?? otlpIfEndpoint('LOGS'),
      protocol: protocolOf('LOGS'),
      batch: defined({
        scheduledDelayMillis: e.OTEL_BLRP_SCHEDULE_DELAY, exportTimeoutMillis: e.OTEL_BLRP_EXPORT_TIMEOUT,
        maxQueueSize: e.OTEL_BLRP_MAX_QUEUE_SIZE, maxExportBatchSize: e.OTEL_BLRP_MAX_EXPORT_BATCH_SIZE,
      }),
    },
  };
}
