import { Writable } from 'node:stream';
import { ROOT_CONTEXT, context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../observability/logger.ts';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, destination };
}

describe('createLogger', () => {
  const manager = new AsyncLocalStorageContextManager();
  beforeAll(() => {
    context.setGlobalContextManager(manager.enable());
  });
  afterAll(() => {
    manager.disable();
    context.disable();
  });

  it('puts trace_id and span_id on every line written inside a span, and none outside', async () => {
    const { lines, destination } = capture();
    const logger = createLogger({ name: 'test', destination });
    const tracer = new TracerProvider().getTracer('test');
    const span = tracer.startSpan('work');
    context.with(trace.setSpan(ROOT_CONTEXT, span), () => logger.info('inside'));
    logger.info('outside');
    span.end();
    await new Promise((r) => setImmediate(r));
    const { traceId, spanId } = span.spanContext();
    expect(lines.find((l) => l.msg === 'inside')).toMatchObject({ trace_id: traceId, span_id: spanId, trace_flags: '01' });
    expect(lines.find((l) => l.msg === 'outside')).not.toHaveProperty('trace_id');
  });

  it('redacts keys, authorization headers and passwords wherever they appear, and the fields a deployment adds', async () => {
    const { lines, destination } = capture();
    const logger = createLogger({ name: 'test', destination, redact: ['customer.email', '*.ssn'] });
    logger.info({
      apiKey: 'sk-live-123', config: { OPENAI_API_KEY: 'sk-live-456', password: 'hunter2' }, headers: { authorization: 'Bearer t' },
      customer: { email: 'ada@example.com', name: 'Ada' }, person: { ssn: '123-45-6789' },
    }, 'configured');
    await new Promise((r) => setImmediate(r));
    const text = JSON.stringify(lines);
    for (const secret of ['sk-live-123', 'sk-live-456', 'hunter2', 'Bearer t', 'ada@example.com', '123-45-6789']) expect(text).not.toContain(secret);
    expect(lines[0]).toMatchObject({ apiKey: '[redacted]', customer: { email: '[redacted]', name: 'Ada' }, person: { ssn: '[redacted]' } });
  });
});
