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

// Regression: redaction used fixed pino paths, so it missed nested keys ({a:{b:{apiKey}}}),
// `Authorization` with a capital A, an error's `config.headers.authorization`, and credentials in
// NATS_URL, OPENAI_BASE_URL and JAEGER_URL.
describe('createLogger redaction', () => {
  async function logged(write: (logger: ReturnType<typeof createLogger>) => void, redact?: string[]) {
    const { lines, destination } = capture();
    write(createLogger({ name: 'test', destination, ...(redact ? { redact } : {}) }));
    await new Promise((r) => setImmediate(r));
    return lines;
  }

  it('redacts secret keys at any depth, in any case, inside errors, and URL credentials in fields and messages', async () => {
    const failure = Object.assign(new Error('request to https://bob:hunter3@api.example.com/v1 failed'), {
      config: { url: 'https://api.example.com', headers: { authorization: 'Bearer sk-err-1', Accept: 'json' } },
    });
    const lines = await logged((logger) => {
      logger.info({
        a: { b: { apiKey: 'sk-nested-1' } }, headers: { Authorization: 'Bearer sk-capital-1' }, deep: [{ 'X-Api-Key': 'sk-array-1' }],
        env: { NATS_URL: 'nats://alice:s3cret@nats.example.com:4222,nats://tok3n@backup:4222', OPENAI_BASE_URL: 'https://u:p4ss@llm.example.com/v1', JAEGER_URL: 'http://j:jpass@jaeger:16686' },
        endpoint: new URL('https://carol:c4rol@model.example.com/v1'),
        usage: { inputTokens: 12, outputTokens: 3 }, tokenizer: 'o200k', publicKey: 'UABC',
      }, 'connecting to nats://dave:d4ve@nats:4222');
      logger.error({ err: failure }, 'model call failed');
      logger.child({ url: 'nats://eve:ev3@nats:4222', token: 'child-token-1' }).info('child');
    });
    const text = JSON.stringify(lines);
    for (const secret of ['sk-nested-1', 'sk-capital-1', 'sk-array-1', 'sk-err-1', 's3cret', 'tok3n', 'p4ss', 'jpass', 'c4rol', 'hunter3', 'd4ve', 'ev3', 'child-token-1']) {
      expect(text).not.toContain(secret);
    }
    const [first, error, child] = lines;
    expect(first).toMatchObject({
      msg: 'connecting to nats://[redacted]@nats:4222',
      a: { b: { apiKey: '[redacted]' } }, headers: { Authorization: '[redacted]' }, deep: [{ 'X-Api-Key': '[redacted]' }],
      env: { NATS_URL: 'nats://[redacted]@nats.example.com:4222,nats://[redacted]@backup:4222', OPENAI_BASE_URL: 'https://[redacted]@llm.example.com/v1', JAEGER_URL: 'http://[redacted]@jaeger:16686' },
      endpoint: 'https://[redacted]@model.example.com/v1',
      // Names that merely resemble a secret's are left alone.
      usage: { inputTokens: 12, outputTokens: 3 }, tokenizer: 'o200k', publicKey: 'UABC',
    });
    expect(error).toMatchObject({
      msg: 'model call failed',
      err: { type: 'Error', message: 'request to https://[redacted]@api.example.com/v1 failed', config: { headers: { authorization: '[redacted]', Accept: 'json' } } },
    });
    expect((error?.err as { stack: string }).stack).toContain('https://[redacted]@api.example.com');
    expect(child).toMatchObject({ url: 'nats://[redacted]@nats:4222', token: '[redacted]', msg: 'child' });
  });

  it('writes a cycle once and leaves the logged object unchanged', async () => {
    const looped: Record<string, unknown> = { name: 'loop', password: 'pw-1' };
    looped.self = looped;
    const lines = await logged((logger) => logger.info({ looped }, 'cyclic'));
    expect(lines[0]).toMatchObject({ looped: { name: 'loop', password: '[redacted]', self: '[Circular]' } });
    expect(looped.password).toBe('pw-1');
  });

  it('keeps TROUPE_REDACT paths working next to the built-in redaction', async () => {
    const lines = await logged((logger) => logger.info({ customer: { email: 'ada@example.com', apiKey: 'sk-c' }, ssn: '1' }), ['customer.email', 'ssn']);
    expect(lines[0]).toMatchObject({ customer: { email: '[redacted]', apiKey: '[redacted]' }, ssn: '[redacted]' });
  });
});
