import type { Logger } from 'pino';
import { createLogger } from '../observability/logger.ts';
import { readOtelSettings, TelemetryConfigurationError, type OtelSettings } from '../observability/otelEnvironment.ts';
import { startTelemetry, type Telemetry } from '../observability/telemetry.ts';
import { ConfigurationError } from './environment.ts';

export interface ProcessRole {
  readonly logger: Logger;
  readonly telemetry: Telemetry;
  /** Runs `stop` once on SIGTERM or SIGINT, then flushes telemetry and exits with `exitCode`. */
  onShutdown(stop: () => Promise<void>): void;
}

/**
 * What every long-running Troupe process does first: a pino root logger, OpenTelemetry (spans,
 * metrics and, with `OTEL_LOGS_EXPORTER`, log records) from the standard `OTEL_*` variables, and
 * an orderly shutdown on SIGTERM/SIGINT that flushes spans, metrics and logs before the process
 * exits. A wrong `OTEL_*` value throws a {@link ConfigurationError} before anything starts.
 */
export function startProcessRole(name: string, level: string, redact?: string[]): ProcessRole {
  const settings = otelSettings();
  // The logger is made before telemetry (which reports through it), so it is told now whether its
  // lines also leave as log records; they reach the SDK once it is registered, a moment later.
  const logger = createLogger({ name, level, ...(redact ? { redact } : {}), openTelemetry: !settings.disabled && settings.logs.exporters.length > 0 });
  const telemetry = startTelemetry({ serviceName: `troupe-${name}`, logger, settings });
  process.on('unhandledRejection', (error) => logger.error({ err: error }, 'unhandled rejection'));
  return {
    logger,
    telemetry,
    onShutdown(stop) {
      let stopping = false;
      const shutdown = (signal: string) => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'shutting down');
        void stop()
          .catch((error: unknown) => logger.error({ err: error }, 'error while stopping'))
          // Spans, metrics and log records are flushed, then the log (pino writes asynchronously), then the process ends.
          .finally(() => void telemetry.shutdown().finally(() => logger.flush(() => process.exit(0))));
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
    },
  };
}

function otelSettings(): OtelSettings {
  try {
    return readOtelSettings();
  } catch (error) {
    // The CLI's kind of configuration error: one line on stderr and exit code 2.
    if (error instanceof TelemetryConfigurationError) throw new ConfigurationError(error.message);
    throw error;
  }
}
