import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResultStore } from '../../../actors/toolCalls/resultStore.ts';
import { resultsTools } from '../../../actors/toolCalls/resultsTools.ts';
import { startWorker, type ToolWorker } from '../../../actors/worker/toolWorker.ts';
import { ToolReply, type ToolRequest } from '../../../transport/messages.ts';
import { decodeWireMessage, encodeWireMessage } from '../../../transport/wireMessage.ts';
import { testWireNames } from '../../fixtures/testNamespace.ts';
import { startNatsServer, type NatsServerProcess } from '../../../testing/natsServer.ts';

const names = testWireNames();

describe('results_fetch', () => {
  let server: NatsServerProcess;
  let storingNc: NatsConnection;
  let servingNc: NatsConnection;
  let callerNc: NatsConnection;
  // The orchestrator whose dispatcher kept the result is not the one whose results pool answers.
  let storing: ResultStore;
  let pool: ToolWorker;

  /** A `results_fetch` call as an orchestrator sends it on behalf of `sessionId`. */
  const fetchAs = async (sessionId: string, callId: string, path = 'rows'): Promise<ToolReply> => {
    const request: ToolRequest = {
      type: 'tool.request', sessionId, callId: `fetch-${sessionId}-${callId}`, tool: 'results_fetch',
      arguments: { callId, path, offset: 0, limit: 2 }, deadline: Date.now() + 10_000,
    };
    const msg = await callerNc.request(names.subjects.tool('results', 'results_fetch'), encodeWireMessage(request), { timeout: 10_000 });
    const decoded = decodeWireMessage(ToolReply, msg.data, 'the results_fetch reply');
    if (!decoded.ok) throw new Error(decoded.error);
    return decoded.value;
  };

  beforeAll(async () => {
    server = await startNatsServer();
    storingNc = await connect({ servers: server.url, name: 'orchestrator-a' });
    servingNc = await connect({ servers: server.url, name: 'orchestrator-b' });
    callerNc = await connect({ servers: server.url, name: 'caller' });
    storing = await ResultStore.open(storingNc, names);
    pool = await startWorker({ domain: 'results', tools: resultsTools(await ResultStore.open(servingNc, names)), nats: servingNc, namespace: names.namespace });
  });

  afterAll(async () => {
    await pool?.stop();
    for (const nc of [storingNc, servingNc, callerNc]) await nc?.close();
    await server?.stop();
  });

  it('pages through a session\'s own result, kept by another orchestrator than the one answering', async () => {
    await storing.put('session-own', 'call_big', { rows: [{ id: 1 }, { id: 2 }, { id: 3 }] });
    const reply = await fetchAs('session-own', 'call_big');
    expect(reply).toMatchObject({ status: 'ok', result: { callId: 'call_big', path: 'rows', total: 3, offset: 0, items: [{ id: 1 }, { id: 2 }] } });
  });

  // Regression: any session could read any other session's large results by their call id.
  it('answers another session\'s call id with the same NOT_FOUND as an id that was never stored', async () => {
    const neverStored = await fetchAs('session-intruder', 'call_secret');
    await storing.put('session-owner', 'call_secret', { rows: ['salary 1', 'salary 2'] });
    const afterStoring = await fetchAs('session-intruder', 'call_secret');
    expect(neverStored).toMatchObject({ status: 'error', failure: { code: 'NOT_FOUND', retryable: false } });
    // Nothing in the refusal tells the intruder the id now exists in another session.
    expect(afterStoring).toEqual(neverStored);
    expect(await fetchAs('session-owner', 'call_secret')).toMatchObject({ status: 'ok', result: { items: ['salary 1', 'salary 2'] } });
  });

  // Regression: results were kept by call id alone, and models choose call ids, so two sessions could overwrite each other's.
  it('keeps the results of two sessions that used the same call id apart', async () => {
    await storing.put('session-one', 'call_1', { rows: ['one'] });
    await storing.put('session-two', 'call_1', { rows: ['two'] });
    expect(await fetchAs('session-one', 'call_1')).toMatchObject({ status: 'ok', result: { items: ['one'] } });
    expect(await fetchAs('session-two', 'call_1')).toMatchObject({ status: 'ok', result: { items: ['two'] } });
  });
});
