import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, toPromise } from 'xstate';
import { ToolCatalog } from '../../../actors/toolCalls/toolCatalog.ts';
import { createToolCallTriage } from '../../../actors/toolCalls/toolCallTriage.ts';
import { SessionEventPublisher } from '../../../actors/session/sessionEvents.ts';
import { startWorker } from '../../../actors/worker/toolWorker.ts';
import { calcTools } from '../../../domains/calc/calcTools.ts';
import { silentLogger } from '../../../observability/logger.ts';
import { natsPerSuite } from '../../fixtures/natsPerSuite.ts';
import { testWireNames } from '../../fixtures/testNamespace.ts';

/** What the model asked for, checked before anything goes on the wire. */
describe('tool call triage', () => {
  const names = testWireNames();
  const nats = natsPerSuite();

  const triage = (catalog: ToolCatalog, tool: string) => toPromise(createActor(fromPromise(createToolCallTriage({
    catalog, approvalTimeoutMs: 60_000, allows: () => true, delegationDepth: () => ({ depth: 0, left: 1 }),
    events: new SessionEventPublisher(nats.nc, names, 'session-triage', silentLogger()),
  })), { input: { sessionId: 'session-triage', turn: 1, toolCalls: [{ id: 'call_1', name: tool, arguments: '{"expression":"1 + 1"}' }] } }).start());

  it('accepts a call of a tool whose pool served it minutes ago and is down now, and refuses one never served', async () => {
    const catalog = new ToolCatalog({ nats: nats.nc, namespace: names.namespace, refreshIntervalMs: 60_000, quietPeriodMs: 100, removalGraceMs: 0 });
    await catalog.start();
    const pool = await startWorker({ domain: 'calc', tools: calcTools(), nats: nats.nc, namespace: names.namespace });
    await catalog.refresh();
    expect((await triage(catalog, 'calc_evaluate')).accepted).toHaveLength(1);
    await pool.stop();
    await catalog.refresh();
    await catalog.refresh();
    expect(catalog.get('calc_evaluate')).toBeUndefined();
    // The model remembers it from an earlier turn: the call is planned, and waits for the pool with its retries.
    expect(await triage(catalog, 'calc_evaluate')).toMatchObject({ accepted: [expect.objectContaining({ name: 'calc_evaluate' })], rejected: [] });
    expect(await triage(catalog, 'calc_unheard_of')).toMatchObject({ accepted: [], rejected: [expect.objectContaining({ failure: expect.objectContaining({ code: 'UNKNOWN_TOOL' }) })] });
    catalog.stop();
  });
});
