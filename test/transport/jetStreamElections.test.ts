import { TimeoutError } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../observability/logger.ts';
import { retryWhileElecting } from '../../transport/jetStreamElections.ts';

// Regression (chaos run with a NATS server killed): an orchestrator started while JetStream elected a
// leader could not open its buckets in time and ran for good without checkpoints.
describe('retryWhileElecting', () => {
  it('opens again while JetStream does not answer in time, and returns what opened', async () => {
    let tries = 0;
    const opened = await retryWhileElecting(async () => {
      if (++tries < 3) throw new TimeoutError();
      return 'buckets';
    }, silentLogger(), 'the buckets');
    expect(opened).toBe('buckets');
    expect(tries).toBe(3);
  });

  it('throws any other failure at once: JetStream not enabled is not an election', async () => {
    let tries = 0;
    await expect(retryWhileElecting(async () => {
      tries++;
      throw new Error('jetstream not enabled');
    }, silentLogger(), 'the buckets')).rejects.toThrow('jetstream not enabled');
    expect(tries).toBe(1);
  });
});
