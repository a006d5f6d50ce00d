import { ROOT_CONTEXT, SeverityNumber, TraceFlags, isSpanContextValid, logs, trace, type Attributes, type Context, type Logger as OtelLogger, type LoggerProvider } from '@opentelemetry/api';
import type { DestinationStream } from 'pino';

/**
 * A field on the lines the OpenTelemetry SDK writes about itself (export failures and the like):
 * they stay in the process's own log, since exporting a line about a failed export would feed
 * the failure back into the exporter.
 */
export const diagnosticField = 'otel_diagnostic';

const severityOf: Record<number, [SeverityNumber, string]> = {
  10: [SeverityNumber.TRACE, 'TRACE'],
  20: [SeverityNumber.DEBUG, 'DEBUG'],
  30: [SeverityNumber.INFO, 'INFO'],
  40: [SeverityNumber.WARN, 'WARN'],
  50: [SeverityNumber.ERROR, 'ERROR'],
  60: [SeverityNumber.FATAL, 'FATAL'],
};

// Carried by the record itself (body, severity, time, trace context) or by the resource (pid, host).
const recordFields = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'trace_id', 'span_id', 'trace_flags', 'err']);

/**
 * A pino destination that sends every line it is given on as an OpenTelemetry log record,
 * through the logs API (so to the `LoggerProvider` the process registered, or nowhere): the
 * message is the body, pino's level the severity, its `time` the timestamp, `trace_id` /
 * `span_id` / `trace_flags` the record's trace context, `err` the `exception.*` attributes, and
 * the other fields attributes (objects as JSON). Lines arrive already redacted. It never throws:
 * a line it cannot read is dropped.
 */
export function otelLogDestination(options: { provider?: LoggerProvider; scope?: string } = {}): DestinationStream {
  let logger: OtelLogger | undefined;
  return {
    write(chunk: string) {
      try {
        // Resolved on first use: the API's proxy logger follows a provider registered later.
        logger ??= (options.provider ?? logs.getLoggerProvider()).getLogger(options.scope ?? 'troupe');
        for (const line of chunk.split('\n')) {
          if (line.startsWith('{')) emit(logger, JSON.parse(line) as Record<string, unknown>);
        }
      } catch {
        // Telemetry never throws into the application; the line is still in the process's log.
      }
    },
  };
}

function emit(logger: OtelLogger, line: Record<string, unknown>): void {
  if (line[diagnosticField] !== undefined) return;
  const [severityNumber, severityText] = severityOf[Number(line.level)] ?? [SeverityNumber.UNSPECIFIED, String(line.level)];
  const attributes: Attributes = {};
  for (const [key, value] of Object.entries(line)) {
    if (recordFields.has(key) || key === diagnosticField || value === undefined || value === null) continue;
    attributes[key] = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? value : JSON.stringify(value);
  }
  const err = line.err as { type?: unknown; message?: unknown; stack?: unknown } | undefined;
  if (err && typeof err === 'object') {
    if (typeof err.type === 'string') attributes['exception.type'] = err.type;
    if (typeof err.message === 'string') attributes['exception.message'] = err.message;
    if (typeof err.stack === 'string') attributes['exception.stacktrace'] = err.stack;
  }
  logger.emit({
    severityNumber,
    severityText,
    ...(typeof line.msg === 'string' ? { body: line.msg } : {}),
    ...(typeof line.time === 'number' ? { timestamp: line.time } : {}),
    attributes,
    context: traceContextOf(line),
  });
}

/** The trace context the line was written in, from the ids the logger's mixin put on it; the root context when none. */
function traceContextOf(line: Record<string, unknown>): Context {
  const { trace_id: traceId, span_id: spanId, trace_flags: flags } = line;
  if (typeof traceId !== 'string' || typeof spanId !== 'string') return ROOT_CONTEXT;
  const spanContext = { traceId, spanId, traceFlags: typeof flags === 'string' ? Number.parseInt(flags, 16) || TraceFlags.NONE : TraceFlags.NONE, isRemote: false };
  return isSpanContextValid(spanContext) ? trace.setSpanContext(ROOT_CONTEXT, spanContext) : ROOT_CONTEXT;
}
