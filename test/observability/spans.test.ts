import { ROOT_CONTEXT } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { describe, expect, it } from 'vitest';
import { recordSpanFailure, startChatSpan } from '../../observability/spans.ts';

describe('recordSpanFailure', () => {
  // Regression: an error's text quoting a URL with credentials (an OPENAI_BASE_URL or NATS_URL with
  // user:pass@) went to the collector as the span's status message.
  it('strips the credentials of URLs in the failure message before it is put on the span', async () => {
    const exporter = new InMemorySpanExporter();
    const tracer = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] }).getTracer('test');
    const span = startChatSpan(tracer, ROOT_CONTEXT, { sessionId: 's', model: 'm', providerName: 'openai', serverAddress: 'llm.example.com', serverPort: 443 });
    recordSpanFailure(span, 'APIConnectionError', 'request to https://bob:hunter2@llm.example.com/v1/chat/completions failed; fallback nats://tok3n@nats:4222');
    span.end();
    const [finished] = exporter.getFinishedSpans();
    expect(finished?.status.message).toBe('request to https://[redacted]@llm.example.com/v1/chat/completions failed; fallback nats://[redacted]@nats:4222');
    expect(finished?.attributes).toMatchObject({ 'error.type': 'APIConnectionError', 'server.address': 'llm.example.com' });
    expect(JSON.stringify(finished?.attributes)).not.toContain('hunter2');
  });
});
