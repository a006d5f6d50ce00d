import { trace } from '@opentelemetry/api';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { otelLogDestination } from './otelLogDestination.ts';
import { redactUrlCredentials } from './redactUrl.ts';
import { redactedText, redactSecrets } from './secretRedaction.ts';

export interface LoggerSettings {
  /** The process role, e.g. `orchestrator`, `worker-files`. */
  name: string;
  level?: string;
  destination?: DestinationStream;
  /**
   * More fields to redact, as pino paths (`customer.email`, `*.ssn`), besides the secrets always
   * redacted at any depth (see `redactSecrets`).
   */
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
 * needed) and secrets redacted: fields named like secrets at any depth and in any case, the
 * credentials of URLs in any string (the message included), and `redact`'s paths. Children per
 * actor add `sessionId` / `callId`; their bindings are redacted alike. With
 * `openTelemetry`, the lines also leave as OpenTelemetry log records.
 */
export function createLogger(settings: LoggerSettings): Logger {
  const options: LoggerOptions = {
    name: settings.name,
    level: settings.level ?? process.env.LOG_LEVEL ?? 'info',
    // pino's `redact` paths are fixed depths and exact case; secrets may sit anywhere (an error's
    // `config.headers.Authorization`), so every record is walked instead. The walk copies nothing
    // when there is nothing to redact, which is nearly always.
    formatters: {
      log: (object) => redactSecrets(object) as Record<string, unknown>,
    },
    serializers: {
      // Errors were serialized (and redacted) by the walk; an Error reaching here came another way.
      err: (value: unknown) => (value instanceof Error ? redactSecrets(value) : value),
      msg: (message: unknown) => (typeof message === 'string' && message.includes('://') ? redactUrlCredentials(message) : message),
    },
    ...(settings.redact?.length ? { redact: { paths: settings.redact, censor: redactedText } } : {}),
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
    return redactingChildBindings(pino(options, pino.multistream([
      { level, stream: settings.destination ?? pino.destination({ dest: 1 }) },
      { level, stream: otelLogDestination() },
    ])));
  }
  return redactingChildBindings(settings.destination ? pino(options, settings.destination) : pino(options));
}

/**
 * pino serializes a child's bindings once, when the child is made, without `formatters.log` (and
 * resets `formatters.bindings` for children): they are redacted here instead. Children inherit
 * `child` from the root, so this covers every descendant.
 */
function redactingChildBindings(root: Logger): Logger {
  const child = root.child;
  root.child = function (this: Logger, bindings, options) {
    return child.call(this, redactSecrets(bindings) as typeof bindings, options);
  } as Logger['child'];
  return root;
}

/** A logger that writes nothing: for library callers who pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
