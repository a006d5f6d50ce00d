import type { Logger } from 'pino';
import { createLogger } from '../observability/logger.ts';
import { startTelemetry, type Telemetry } from '../observability/telemetry.ts';

export interface ProcessRole {
  readonly logger: Logger;
  readonly telemetry: Telemetry;
  /** Runs `stop` once on SIGTERM or SIGINT, then flushes telemetry and exits with `exitCode`. */
  onShutdown(stop: () => Promise<void>): void;
}

/**
 * What every long-running Troupe process does first: a pino root logger, OpenTelemetry (spans and
 * metrics), and an orderly shutdown on SIGTERM/SIGINT that flushes spans, metrics and logs before
 * the process exits.
 */
export function startProcessRole(name: string, level: string, redact?: string[]): ProcessRole {
  const logger = createLogger({ name, level, ...(redact ? { redact } : {}) });
  const telemetry = startTelemetry({ serviceName: `troupe-${name}`, logger });
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
          // Spans and metrics are flushed, then the log (pino writes asynchronously), then the process ends.
          .finally(() => void telemetry.shutdown().finally(() => logger.flush(() => process.exit(0))));
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
    },
  };
}
