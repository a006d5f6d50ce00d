import { trace } from '@opentelemetry/api';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { otelLogDestination } from './otelLogDestination.ts';

/** Fields never written in clear, wherever they appear in a log record. */
export const redactedPaths = [
  'apiKey', '*.apiKey', 'OPENAI_API_KEY', '*.OPENAI_API_KEY',
  'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization',
  'password', '*.password', 'token', '*.token',
];

export interface LoggerSettings {
  /** The process role, e.g. `orchestrator`, `worker-files`. */
  name: string;
  level?: string;
  destination?: DestinationStream;
  /** More paths to redact besides {@link redactedPaths}, e.g. `customer.email`. */
  redact?: string[];
  /**
   * Also send every line, redacted, as an OpenTelemetry log record through the logs API, with the
   * trace and span ids of the span it was written in (`OTEL_LOGS_EXPORTER`; see
   * `otelLogDestination`). Off by default.
   */
  openTelemetry?: boolean;
}

/**
 * The root pino logger of a process: JSON lines with `trace_id` and `span_id` whenever a line is
 * written inside a span (read from the active OpenTelemetry context, so no patching of pino is
 * needed) and secrets redacted. Children per actor add `sessionId` / `callId`. With
 * `openTelemetry`, the lines also leave as OpenTelemetry log records.
 */
export function createLogger(settings: LoggerSettings): Logger {
  const options: LoggerOptions = {
    name: settings.name,
    level: settings.level ?? process.env.LOG_LEVEL ?? 'info',
    redact: { paths: [...redactedPaths, ...(settings.redact ?? [])], censor: '[redacted]' },
    mixin() {
      const span = trace.getActiveSpan();
      if (!span) return {};
      const { traceId, spanId, traceFlags } = span.spanContext();
      return { trace_id: traceId, span_id: spanId, trace_flags: `0${traceFlags.toString(16)}` };
    },
  };
  if (settings.openTelemetry && options.level !== 'silent') {
    // The same lines to both: stdout (as pino writes by default) and the logs API.
    const level = options.level as string;
    return pino(options, pino.multistream([
      { level, stream: settings.destination ?? pino.destination({ dest: 1 }) },
      { level, stream: otelLogDestination() },
    ]));
  }
  return settings.destination ? pino(options, settings.destination) : pino(options);
}

/** A logger that writes nothing: for library callers who pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
