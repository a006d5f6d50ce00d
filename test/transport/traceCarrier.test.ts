import { ROOT_CONTEXT, TraceFlags, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { traceContextOf, traceHeaders } from '../../transport/traceCarrier.ts';

const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const spanId = '00f067aa0ba902b7';
const contextWith = (traceFlags: TraceFlags) => trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId, traceFlags, isRemote: false });

describe('traceCarrier', () => {
  beforeAll(() => {
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  });
  afterAll(() => {
    propagation.disable();
  });

  it('carries a sampled span\'s context across, marked sampled', () => {
    const headers = traceHeaders(contextWith(TraceFlags.SAMPLED));
    expect(headers.get('traceparent')).toBe(`00-${traceId}-${spanId}-01`);
    expect(trace.getSpanContext(traceContextOf(headers))).toMatchObject({ traceId, spanId, traceFlags: TraceFlags.SAMPLED, isRemote: true });
  });

  // With parent-based sampling the receiving process drops its spans only if it learns the
  // parent was not sampled: the flag must cross, not just the ids.
  it('carries an unsampled span\'s context across too, marked not sampled', () => {
    const headers = traceHeaders(contextWith(TraceFlags.NONE));
    expect(headers.get('traceparent')).toBe(`00-${traceId}-${spanId}-00`);
    expect(trace.getSpanContext(traceContextOf(headers))).toMatchObject({ traceId, spanId, traceFlags: TraceFlags.NONE, isRemote: true });
  });

  it('reads no parent from a message that carries none', () => {
    expect(trace.getSpanContext(traceContextOf(undefined))).toBeUndefined();
  });
});
