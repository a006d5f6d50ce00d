import type { NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { openSessionRuntime, type SessionRuntimeOptions } from '../../../actors/session/sessionRuntime.ts';
import { silentLogger } from '../../../observability/logger.ts';

// Fails loudly if the runtime gets as far as the bus: the options must be refused before.
const noBus = new Proxy({}, { get: (_target, property) => { throw new Error(`the runtime used the bus (${String(property)})`); } }) as NatsConnection;

describe('openSessionRuntime', () => {
  // Regression: the approval deadline is a timer, and Node fires one longer than 2^31−1 ms at once, denying every call.
  it('refuses an approvalTimeoutMs longer than a timer can wait before it starts anything', async () => {
    const options = { nats: noBus, approvalTimeoutMs: 30 * 24 * 3_600_000 } as unknown as SessionRuntimeOptions;
    await expect(openSessionRuntime(options, silentLogger())).rejects.toThrow(
      'approvalTimeoutMs is 2592000000: it must be a positive whole number of milliseconds, at most 2147483647 ms (about 24.8 days), the longest delay a timer can wait.',
    );
  });
});
