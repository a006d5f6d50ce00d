import { ExportResultCode } from '@opentelemetry/core';
import { PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { silentLogger } from '../observability/logger.ts';
import { readOtelSettings } from '../observability/otelEnvironment.ts';
import { startTelemetry } from '../observability/telemetry.ts';

/** OpenTelemetry as a deployment runs it, its exports counted and dropped. */
export interface DiscardingTelemetry {
  /** Spans the batch processor handed to the exporter so far. */
  spansExported(): number;
  shutdown(): Promise<void>;
}

/**
 * Registers Troupe's OpenTelemetry SDK for the whole process, as `startTelemetry` does in every
 * Troupe process: spans through a batch processor, metrics collected every second, both handed
 * to exporters that count and drop them. The `OTEL_*` variables are ignored. Registration is
 * global and for good (call it after the cases that must run without an SDK).
 */
export function startDiscardingTelemetry(): DiscardingTelemetry {
  let spans = 0;
  const spanExporter: SpanExporter = {
    export: (batch: ReadableSpan[], done) => {
      spans += batch.length;
      done({ code: ExportResultCode.SUCCESS });
    },
    shutdown: async () => {},
  };
  const metricExporter: PushMetricExporter = {
    export: (_metrics, done) => done({ code: ExportResultCode.SUCCESS }),
    forceFlush: async () => {},
    shutdown: async () => {},
  };
  const telemetry = startTelemetry({
    serviceName: 'troupe-bench', logger: silentLogger(), settings: readOtelSettings({}), exporters: [spanExporter],
    metricReaders: [new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 1_000 })],
  });
  if (!telemetry.registered) throw new Error('The bench could not register the OpenTelemetry SDK (OTEL_SDK_DISABLED, or another SDK registered first).');
  return { spansExported: () => spans, shutdown: () => telemetry.shutdown() };
}
