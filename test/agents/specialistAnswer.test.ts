import { describe, expect, it } from 'vitest';
import { delegationResult } from '../../agents/specialistAnswer.ts';
import { noUsage } from '../../machines/usage.ts';
import type { SessionFinished } from '../../transport/messages.ts';

const ended = (fields: Partial<SessionFinished>): SessionFinished => ({
  type: 'session.finished', sessionId: 'sp-1', seq: 3, at: new Date().toISOString(), status: 'failed', output: null, stopReason: 'rejected',
  steps: 0, toolCalls: 0, usage: noUsage, traceId: 't', durationMs: 0, ...fields,
} as SessionFinished);

describe('delegationResult', () => {
  // Regression (chaos run with a NATS server killed): a specialist member that died before storing its
  // session's first checkpoint made every such delegation fail for good, and the delegating session with it.
  it('asks for the delegation to be sent again when its session never started, and fails it when the session was refused for good', () => {
    expect(delegationResult('auditor', ended({ stopReason: 'not_started', error: 'Its host stopped before the session\'s first checkpoint was stored' })))
      .toMatchObject({ ok: false, failure: { code: 'UNAVAILABLE', retryable: true } });
    expect(delegationResult('auditor', ended({ stopReason: 'rejected', error: 'unknown agent' })))
      .toMatchObject({ ok: false, failure: { code: 'SPECIALIST_FAILED', retryable: false } });
  });
});
