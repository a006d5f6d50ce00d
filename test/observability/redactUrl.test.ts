import { describe, expect, it } from 'vitest';
import { redactUrlCredentials } from '../../observability/redactUrl.ts';

describe('redactUrlCredentials', () => {
  it('hides a user and password, or a token, and keeps where the URL points', () => {
    expect(redactUrlCredentials('nats://ada:s3cret@nats.example.com:4222')).toBe('nats://[redacted]@nats.example.com:4222');
    expect(redactUrlCredentials('tls://t0ken@10.0.0.1:4222')).toBe('tls://[redacted]@10.0.0.1:4222');
    expect(redactUrlCredentials('https://key:x@api.example.com/v1?q=a@b')).toBe('https://[redacted]@api.example.com/v1?q=a@b');
  });

  it('redacts every URL of a list and of a message quoting one, and leaves URLs without credentials alone', () => {
    expect(redactUrlCredentials('nats://a:b@one:4222,nats://c:d@two:4222')).toBe('nats://[redacted]@one:4222,nats://[redacted]@two:4222');
    expect(redactUrlCredentials('Could not reach NATS at nats://a:b@one:4222 (ECONNREFUSED).')).toBe('Could not reach NATS at nats://[redacted]@one:4222 (ECONNREFUSED).');
    expect(redactUrlCredentials('nats://127.0.0.1:4222')).toBe('nats://127.0.0.1:4222');
  });
});
