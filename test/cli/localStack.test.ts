import { describe, expect, it } from 'vitest';
import { localClusterPorts, refundDeskDomain, stackDomains } from '../../cli/localStack.ts';
import { UsageError } from '../../cli/usageError.ts';

describe('localClusterPorts', () => {
  it('leaves every port free to choose when NATS_URL is not set', () => {
    expect(localClusterPorts(undefined)).toEqual([]);
  });

  it('takes the ports of the local servers NATS_URL names, 4222 for one that names none', () => {
    expect(localClusterPorts('nats://127.0.0.1:14222')).toEqual([14222]);
    expect(localClusterPorts('nats://localhost, nats://127.0.0.1:14223,tls://127.0.0.1:14224')).toEqual([4222, 14223, 14224]);
  });

  it('refuses a server on another machine: --cluster starts its servers on this one', () => {
    const refusal = (() => {
      try {
        localClusterPorts('nats://ada:secret@nats.example.com:4222');
      } catch (error) {
        return error;
      }
    })();
    expect(refusal).toBeInstanceOf(UsageError);
    expect((refusal as Error).message).toBe('--cluster starts its servers on this machine, but NATS_URL names nats://[redacted]@nats.example.com:4222: leave out --cluster to use that NATS, or unset NATS_URL.');
  });

  it('refuses more servers than the cluster has', () => {
    expect(() => localClusterPorts('nats://127.0.0.1:1,nats://127.0.0.1:2,nats://127.0.0.1:3,nats://127.0.0.1:4')).toThrow(
      '--cluster starts 3 servers, but NATS_URL names 4 (nats://127.0.0.1:1,nats://127.0.0.1:2,nats://127.0.0.1:3,nats://127.0.0.1:4): name at most 3, or none.',
    );
  });
});

describe('stackDomains', () => {
  it('starts every example pool but the refund desk by default, so the assistant is not offered refunds_issue', () => {
    expect(stackDomains({})).toEqual(['files', 'db', 'calc']);
    expect(stackDomains({ refundDesk: false })).not.toContain(refundDeskDomain);
  });

  it('adds the refunds pool with the refund desk', () => {
    expect(stackDomains({ refundDesk: true })).toEqual(['files', 'db', 'calc', 'refunds']);
  });
});
