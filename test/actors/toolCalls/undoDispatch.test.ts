import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUser } from '@nats-io/nkeys';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createActor, fromPromise, toPromise } from 'xstate';
import { SessionEventPublisher } from '../../../actors/session/sessionEvents.ts';
import { createUndoDispatcher } from '../../../actors/toolCalls/undoDispatch.ts';
import { startWorker, type ToolWorker } from '../../../actors/worker/toolWorker.ts';
import { filesTools } from '../../../domains/files/filesTools.ts';
import type { LedgerEntry } from '../../../machines/ledger.ts';
import { silentLogger } from '../../../observability/logger.ts';
import { ToolReply, type ToolRequest } from '../../../transport/messages.ts';
import { statementSigner, type StatementSigner } from '../../../transport/signatures.ts';
import { decodeWireMessage, encodeWireMessage } from '../../../transport/wireMessage.ts';
import { testWireNames } from '../../fixtures/testNamespace.ts';

/**
 * The rollback actor against a real files pool that trusts one orchestrator key: only the undo
 * requests that key signed restore anything.
 */
describe('createUndoDispatcher with a pool that trusts orchestrator keys', () => {
  const names = testWireNames();
  const orchestrator = statementSigner(createUser().getSeed());
  const workspace = mkdtempSync(join(tmpdir(), 'troupe-undo-'));
  let nc: NatsConnection;
  let worker: ToolWorker;
  let calls = 0;

  beforeAll(async () => {
    nc = await connect({ servers: inject('natsUrl'), name: 'undo-dispatch' });
    worker = await startWorker({ namespace: names.namespace, domain: 'files', tools: filesTools({ workspace }), nats: nc, trustedOrchestrators: [orchestrator.publicKey] });
  });
  afterAll(async () => {
    await worker?.stop();
    await nc?.close();
  });

  /** Overwrites `path` through the pool, as a session's call would, and returns its ledger entry. */
  const overwrite = async (path: string, content: string): Promise<LedgerEntry> => {
    const callId = `call_${++calls}`;
    const request: ToolRequest = { type: 'tool.request', sessionId: 's-undo', callId, tool: 'files_write', arguments: { path, content }, deadline: Date.now() + 10_000 };
    const reply = decodeWireMessage(ToolReply, (await nc.request(names.subjects.tool('files', 'files_write'), encodeWireMessage(request), { timeout: 10_000 })).data, 'reply');
    if (!reply.ok || reply.value.status !== 'ok') throw new Error(`the write failed: ${JSON.stringify(reply)}`);
    return { turn: 1, callId, toolCallId: callId, tool: 'files_write', arguments: request.arguments, status: 'ok', sideEffects: true, compensation: reply.value.compensation };
  };

  const rollBack = async (entry: LedgerEntry, signer?: StatementSigner) => {
    const events = new SessionEventPublisher(nc, names, 's-undo', silentLogger());
    const logic = fromPromise(createUndoDispatcher({ nats: nc, names, ledger: () => [entry], events, logger: silentLogger(), ...(signer ? { signer } : {}) }));
    const actor = createActor(logic, { input: { sessionId: 's-undo', toTurn: 0, by: 'ada', plan: [{ turn: 1, callId: entry.callId as string, tool: 'files_write', action: 'undo' }] } });
    actor.start();
    return await toPromise(actor);
  };

  it('restores the file when the orchestrator signed the undo', async () => {
    writeFileSync(join(workspace, 'signed.txt'), 'before');
    const entry = await overwrite('signed.txt', 'after');
    const report = await rollBack(entry, orchestrator);
    expect(report.steps).toEqual([{ turn: 1, callId: entry.callId, tool: 'files_write', action: 'undo', result: 'undone' }]);
    expect(readFileSync(join(workspace, 'signed.txt'), 'utf8')).toBe('before');
  });

  it('undoes nothing for a rollback nobody signed, or one another key signed, and says why', async () => {
    writeFileSync(join(workspace, 'unsigned.txt'), 'before');
    const entry = await overwrite('unsigned.txt', 'after');
    expect((await rollBack(entry)).steps[0]).toMatchObject({ result: 'failed', message: expect.stringContaining('carries no orchestrator signature') });
    expect((await rollBack(entry, statementSigner(createUser().getSeed()))).steps[0]).toMatchObject({ result: 'failed', message: expect.stringContaining('not an orchestrator key') });
    expect(readFileSync(join(workspace, 'unsigned.txt'), 'utf8')).toBe('after');
  });
});
