import { randomUUID } from 'node:crypto';
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createActor, fromPromise, toPromise } from 'xstate';
import * as z from 'zod';
import { SessionEventPublisher } from '../../../actors/session/sessionEvents.ts';
import { SessionTrace } from '../../../actors/session/sessionTrace.ts';
import { CircuitBreakerRegistry } from '../../../actors/toolCalls/circuitBreakerRegistry.ts';
import { ToolCatalog } from '../../../actors/toolCalls/toolCatalog.ts';
import { createToolDispatcher } from '../../../actors/toolCalls/toolDispatch.ts';
import { startWorker, type ToolWorker } from '../../../actors/worker/toolWorker.ts';
import { CircuitBreakerSettings } from '../../../machines/circuitBreaker.ts';
import { RetryPolicy } from '../../../machines/retryPolicy.ts';
import type { ToolCallOutcome } from '../../../machines/toolCallOutcome.ts';
import { silentLogger } from '../../../observability/logger.ts';
import { defineTool } from '../../../tools/defineTool.ts';
import { ResultShapingLimits } from '../../../tools/resultShaping.ts';
import { ToolError, ToolFailureCode } from '../../../tools/toolFailure.ts';
import { testWireNames } from '../../fixtures/testNamespace.ts';

/**
 * The dispatcher against a real nats-server and a real pool, with one circuit breaker registry
 * shared by the calls of several sessions, as an orchestrator shares it.
 */
describe('createToolDispatcher and the circuit its sessions share', () => {
  const names = testWireNames();
  const logger = silentLogger();
  let nc: NatsConnection;
  let worker: ToolWorker;
  let catalog: ToolCatalog;
  let ran = 0;

  // A query that runs away answers TIMEOUT at once here, as the worker does when its deadline passes.
  const query = defineTool({
    name: 'db_query',
    description: 'Runs a query.',
    input: z.object({ sql: z.string() }),
    output: z.object({ rows: z.number() }),
    handler: ({ sql }) => {
      ran += 1;
      if (sql.includes('runaway')) throw new ToolError(ToolFailureCode.TIMEOUT, 'db_query did not finish within its deadline.');
      return { rows: 1 };
    },
  });

  beforeAll(async () => {
    nc = await connect({ servers: inject('natsUrl'), name: 'dispatch' });
    worker = await startWorker({ namespace: names.namespace, domain: 'db', tools: [query], nats: nc });
    catalog = new ToolCatalog({ nats: nc, namespace: names.namespace, refreshIntervalMs: 60_000, quietPeriodMs: 50 });
    await catalog.start();
    await catalog.waitFor(['db_query'], 5_000);
  });
  afterAll(async () => {
    catalog?.stop();
    await worker?.stop();
    await nc?.close();
  });

  function dispatcherFor(breakers: CircuitBreakerRegistry, sessionId: string) {
    return fromPromise(createToolDispatcher({
      nats: nc, names, catalog, breakers, logger, tracer: trace.getTracer('test'),
      trace: new SessionTrace(trace.getTracer('test'), ROOT_CONTEXT, { sessionId, agentName: 'a', model: 'm' }),
      events: new SessionEventPublisher(nc, names, sessionId, logger),
      largeResults: ResultShapingLimits.parse({}),
    }));
  }

  async function callFrom(breakers: CircuitBreakerRegistry, sessionId: string, sql: string): Promise<ToolCallOutcome> {
    const callId = randomUUID();
    const call = { callId, toolCallId: `t-${callId}`, name: 'db_query', arguments: { sql }, retry: RetryPolicy.parse({ maxAttempts: 1 }), fallbacks: [] };
    return toPromise(createActor(dispatcherFor(breakers, sessionId), { input: { sessionId, turn: 1, call } }).start());
  }

  const sharedBreakers = () => new CircuitBreakerRegistry(CircuitBreakerSettings.parse({ failureThreshold: 2, cooldownMs: 60_000 }), logger);

  // Regression: a request over the NATS payload limit failed as UNAVAILABLE and counted against the pool, so one
  // session sending too much opened the circuit for everyone.
  it('answers arguments too large for a NATS message with INVALID_INPUT and the limit, sends nothing, and never counts it against the circuit', async () => {
    const breakers = sharedBreakers();
    const before = ran;
    const limit = (nc.info?.max_payload ?? 0) - 4_096;
    for (const sessionId of ['s1', 's1', 's2']) {
      const outcome = await callFrom(breakers, sessionId, `select '${'x'.repeat(limit)}'`);
      expect(outcome).toMatchObject({ status: 'error', failure: { code: 'INVALID_INPUT', retryable: false, details: { maxRequestBytes: limit } } });
      expect(outcome.status === 'error' && outcome.failure.message).toMatch(
        new RegExp(`^The arguments for "db_query" are too large to send: the request is \\d+ bytes, and a request may be at most ${limit} bytes\\. Send less per call`),
      );
    }
    expect(breakers.state('db_query')).toBe('closed');
    expect(ran).toBe(before);
    expect(await callFrom(breakers, 's3', 'select 1')).toMatchObject({ status: 'ok', result: { rows: 1 } });
    breakers.stop();
  });

  // Regression: one session's runaway queries timed out until the circuit every session shares opened.
  it('keeps the circuit closed through one session’s runaway queries, and opens it once another session’s time out too', async () => {
    const breakers = sharedBreakers();
    for (let i = 0; i < 4; i++) expect(await callFrom(breakers, 'runaway-session', 'select runaway')).toMatchObject({ failure: { code: 'TIMEOUT' } });
    expect(breakers.state('db_query')).toBe('closed');
    expect(await callFrom(breakers, 'other-session', 'select 1')).toMatchObject({ status: 'ok' });
    expect(await callFrom(breakers, 'runaway-session', 'select runaway')).toMatchObject({ failure: { code: 'TIMEOUT' } });
    expect(await callFrom(breakers, 'other-session', 'select runaway too')).toMatchObject({ failure: { code: 'TIMEOUT' } });
    expect(breakers.state('db_query')).toBe('open');
    expect(await callFrom(breakers, 'third-session', 'select 1')).toMatchObject({ failure: { code: 'UNAVAILABLE', message: expect.stringContaining('its circuit is open') } });
    breakers.stop();
  });

  describe('write-ahead', () => {
    function writeAheadDispatcher(writeAhead: () => Promise<void>) {
      const sessionId = `wa-${randomUUID()}`;
      return {
        sessionId,
        logic: fromPromise(createToolDispatcher({
          nats: nc, names, catalog, breakers: sharedBreakers(), logger, tracer: trace.getTracer('test'),
          trace: new SessionTrace(trace.getTracer('test'), ROOT_CONTEXT, { sessionId, agentName: 'a', model: 'm' }),
          events: new SessionEventPublisher(nc, names, sessionId, logger),
          largeResults: ResultShapingLimits.parse({}), writeAhead,
        })),
      };
    }
    const callOf = (sideEffects: boolean) => {
      const callId = randomUUID();
      return { callId, toolCallId: `t-${callId}`, name: 'db_query', arguments: { sql: 'select 1' }, retry: RetryPolicy.parse({ maxAttempts: 1 }), fallbacks: [], sideEffects };
    };

    // Regression: side-effecting calls were sent while the checkpoint naming them was still being written.
    it('sends a side-effecting call only once the checkpoint holding it is stored', async () => {
      let stored!: () => void;
      const checkpoint = new Promise<void>((resolve) => (stored = resolve));
      let asked = 0;
      const { logic, sessionId } = writeAheadDispatcher(() => (asked++, checkpoint));
      const before = ran;
      const outcome = toPromise(createActor(logic, { input: { sessionId, turn: 1, call: callOf(true) } }).start());
      // A read-only call of the same session goes straight out meanwhile.
      expect(await toPromise(createActor(logic, { input: { sessionId, turn: 1, call: callOf(false) } }).start())).toMatchObject({ status: 'ok' });
      expect(ran).toBe(before + 1);
      expect(asked).toBe(1);
      stored();
      expect(await outcome).toMatchObject({ status: 'ok' });
      expect(ran).toBe(before + 2);
    });

    it('never sends a side-effecting call whose checkpoint cannot be stored, and says why', async () => {
      const { logic, sessionId } = writeAheadDispatcher(() => Promise.reject(new Error('the session is no longer hosted here')));
      const before = ran;
      const outcome = await toPromise(createActor(logic, { input: { sessionId, turn: 1, call: callOf(true) } }).start());
      expect(outcome).toMatchObject({ status: 'error', failure: { code: 'UNAVAILABLE', retryable: false, message: expect.stringContaining('no longer hosted here') } });
      expect(ran).toBe(before);
    });
  });
});
