import { trace, type Tracer } from '@opentelemetry/api';

/** The instrumentation scope of every Troupe span. */
export const tracerName = 'troupe';

/**
 * The tracer Troupe's library code uses: whatever provider the application registered (through
 * `startTelemetry` or its own SDK), or a no-op. Only the API is imported here, so library
 * code never loads an SDK.
 */
export function troupeTracer(): Tracer {
  return trace.getTracer(tracerName);
}
