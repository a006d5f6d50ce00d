import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ExportResultCode } from '@opentelemetry/core';
import { PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { silentLogger } from '../observability/logger.ts';
import { readOtelSettings } from '../observability/otelEnvironment.ts';
import { startTelemetry } from '../observability/telemetry.ts';

/** OpenTelemetry as a deployment runs it, its exports received by this process and dropped. */
export interface DiscardingTelemetry {
  /** Spans the batch processor handed to the exporters so far. */
  spansExported(): number;
  /** OTLP/HTTP export requests the local receiver took, and their bytes. */
  received(): { requests: number; bytes: number };
  shutdown(): Promise<void>;
}

let registered: Promise<DiscardingTelemetry> | undefined;

/**
 * Registers Troupe's OpenTelemetry SDK for the whole process, as `startTelemetry` does in every
 * Troupe process: spans through a batch processor to the OTLP/HTTP exporter (protobuf), sent to a
 * receiver in this process that answers and drops them; metrics collected every second and dropped.
 * The `OTEL_*` variables are ignored. Registration is global and for good, so every caller gets the
 * same one (call it after the cases that must run without an SDK).
 */
export function startDiscardingTelemetry(): Promise<DiscardingTelemetry> {
  registered ??= register();
  return registered;
}

async function register(): Promise<DiscardingTelemetry> {
  const received = { requests: 0, bytes: 0 };
  const receiver: Server = createServer((request, response) => {
    request.on('data', (chunk: Buffer) => (received.bytes += chunk.length));
    request.on('end', () => {
      received.requests++;
      response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiver.unref();
  const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

  let spans = 0;
  const spanCounter: SpanExporter = {
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
    serviceName: 'troupe-bench', logger: silentLogger(),
    settings: readOtelSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none' }),
    exporters: [spanCounter],
    metricReaders: [new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 1_000 })],
  });
  if (!telemetry.registered) throw new Error('The bench could not register the OpenTelemetry SDK (OTEL_SDK_DISABLED, or another SDK registered first).');
  return {
    spansExported: () => spans,
    received: () => ({ ...received }),
    shutdown: async () => {
      await telemetry.shutdown();
      receiver.close();
    },
  };
}
