import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CheckpointStore, type Checkpoint } from '../../actors/durability/checkpointStore.ts';
import { startWorker, type ToolWorker } from '../../actors/worker/toolWorker.ts';
import { sessionsCommand } from '../../cli/sessionsCommand.ts';
import { startSession } from '../../client/sessionClient.ts';
import { calcTools } from '../../domains/calc/calcTools.ts';
import { EvalCase } from '../../evaluation/evalCase.ts';
import { EvalReport } from '../../evaluation/evalReport.ts';
import { recordSession, SessionRecordingError } from '../../evaluation/sessionRecording.ts';
import { Script } from '../../scriptedModel/script.ts';
import { wireNames } from '../../transport/subjects.ts';
import { startInProcessStack, type InProcessStack } from '../fixtures/inProcessStack.ts';
import { startProcessStack, type ProcessStack } from '../fixtures/processStack.ts';
import { eventually, processStartTimeoutMs, startTroupe, type TroupeProcess } from '../fixtures/troupeProcess.ts';
import { ToolCatalog } from '../../actors/toolCalls/toolCatalog.ts';

describe('troupe sessions record, then troupe eval', () => {
  let stack: InProcessStack;
  let worker: ToolWorker;
  beforeAll(async () => {
    stack = await startInProcessStack();
    const orchestrator = await stack.startOrchestrator();
    worker = await startWorker({ domain: 'calc', tools: calcTools(), nats: await stack.connection('calc'), namespace: stack.namespace });
    await orchestrator.catalog.waitFor(['calc_evaluate'], 30_000);
  });
  afterAll(async () => {
    await worker?.stop();
    await stack?.stop();
  });

  const stored = async (sessionId: string): Promise<Checkpoint> => {
    const read = await (await CheckpointStore.open(await stack.connection('reader'), wireNames(stack.namespace))).read(sessionId);
    if (!read) throw new Error(`no checkpoint for ${sessionId}`);
    return read.checkpoint;
  };

  it('turns a finished session into a case and a script that replay to the same trajectory', async () => {
    const client = await stack.connection('client');
    const run = await startSession(client, { task: 'Please compute two plus two.', namespace: stack.namespace });
    const finished = await run.finished;
    expect(finished.status).toBe('completed');

    const dir = mkdtempSync(join(tmpdir(), 'troupe-record-'));
    const dataset = join(dir, 'recorded.yaml');
    const out = new PassThrough();
    let printed = '';
    out.on('data', (chunk: Buffer) => (printed += chunk.toString()));
    expect(await sessionsCommand(['record', run.sessionId, '--out', dataset], { nc: client, namespace: stack.namespace, out })).toBe(0);
    expect(printed).toContain(`recorded session ${run.sessionId} as case recorded-${run.sessionId.slice(0, 8)}`);
    const cases = parse(readFileSync(dataset, 'utf8')) as unknown[];
    const recorded = EvalCase.parse(cases[0]);
    expect(recorded.expect).toMatchObject({
      status: 'completed', output: { equals: finished.output },
      trajectory: { mode: 'strict', calls: [{ tool: 'calc_evaluate', arguments: { expression: '2 + 2' } }] },
    });
    const script = Script.parse(JSON.parse(readFileSync(join(dir, recorded.script as string), 'utf8')));
    expect(script.steps).toHaveLength(2);

    // Replayed on a stack of its own: the same calls, the same answer.
    const replay = startTroupe(['eval', dataset, '--json', '--log-dir', join(dir, 'logs')], { NATS_URL: stack.natsServer.url, OPENAI_BASE_URL: '', OPENAI_API_KEY: '', TROUPE_WORKSPACE: dir });
    expect(await replay.exited, replay.output().slice(-3000)).toBe(0);
    const report = EvalReport.parse(JSON.parse(replay.output().slice(replay.output().indexOf('{\n'), replay.output().lastIndexOf('\n}') + 2)));
    expect(report.cases[0]).toMatchObject({ id: recorded.id, passed: true, scores: { trajectoryMatch: 1 } });

    // Recorded again into the same dataset: refused, nothing overwritten.
    await expect(sessionsCommand(['record', run.sessionId, '--out', dataset], { nc: client, namespace: stack.namespace, out })).rejects.toThrow(/exists already/);
  }, 240_000);

  it('refuses a session that has not ended, and one a person took part in, saying why', async () => {
    const base = await stored((await (async () => {
      const run = await startSession(await stack.connection('client-2'), { task: 'Please compute two plus two.', namespace: stack.namespace });
      await run.finished;
      return run.sessionId;
    })()));
    const options = { caseId: 'c', scriptFile: 'scripts/c.json', recordedAt: '2026-11-30T00:00:00.000Z' };
    expect(() => recordSession({ ...base, status: 'running' }, options)).toThrow(SessionRecordingError);
    expect(() => recordSession({ ...base, status: 'running' }, options)).toThrow(/has not ended \(it is running\)/);
    const context = base.snapshot.context as Record<string, unknown>;
    const withPerson = { ...base, snapshot: { ...base.snapshot, context: { ...context, interventions: [{ turn: 1, kind: 'redirected', by: 'ada' }] } } };
    expect(() => recordSession(withPerson, options)).toThrow(/a person took part .* \(redirected\)/);
    // A model turn whose arguments were not JSON is played back as the same text.
    const conversation = (context.conversation as Array<Record<string, unknown>>).map((m) => (m.role === 'assistant' && m.toolCalls ? { ...m, toolCalls: [{ id: 'x', name: 'calc_evaluate', arguments: '{"expression": 2 +' }] } : m));
    const malformed = recordSession({ ...base, snapshot: { ...base.snapshot, context: { ...context, conversation } } }, options);
    expect(malformed.script.steps[0]?.toolCalls?.[0]?.arguments).toBe('{"expression": 2 +');
  }, 60_000);
});

describe('troupe sessions record of a session that delegated, then troupe eval', () => {
  let stack: ProcessStack;
  let analyst: TroupeProcess;
  beforeAll(async () => {
    stack = await startProcessStack();
    await stack.startWorker('db');
    analyst = startTroupe(['worker', '--agent', 'analyst'], stack.env);
    const catalog = new ToolCatalog({ nats: stack.client, namespace: stack.namespace, quietPeriodMs: 100 });
    await eventually('the analyst pool', async () => {
      await catalog.refresh();
      return catalog.get('delegate_analyst') !== undefined;
    }, processStartTimeoutMs, [analyst]);
    catalog.stop();
  }, 120_000);
  afterAll(async () => {
    await analyst?.stop();
    await stack?.stop();
  });

  it('records the specialist\'s session as a script of its own, and the replay delegates again to the same answer', async () => {
    const run = await startSession(stack.client, { task: '[record-delegation] How many customers?', namespace: stack.namespace });
    const finished = await run.finished;
    expect(finished, JSON.stringify(finished)).toMatchObject({ status: 'completed', output: expect.stringMatching(/^The analyst says: The shop has \d+ customers\.$/) });

    const dir = mkdtempSync(join(tmpdir(), 'troupe-record-delegation-'));
    const dataset = join(dir, 'recorded.yaml');
    const recorded = await stack.troupe(['sessions', 'record', run.sessionId, '--out', dataset]);
    expect(recorded.code, recorded.output).toBe(0);
    expect(recorded.output).toContain('and its specialists\' in');
    const [written] = parse(readFileSync(dataset, 'utf8')) as unknown[];
    const evalCase = EvalCase.parse(written);
    expect(evalCase.specialistScripts).toEqual([`scripts/${evalCase.id}-specialist-1.json`]);
    const specialistScript = Script.parse(JSON.parse(readFileSync(join(dir, evalCase.specialistScripts?.[0] as string), 'utf8')));
    expect(specialistScript.match?.userIncludes).toBe('[record-delegation-analyst] Count the customers of the shop.');
    expect(specialistScript.steps.map((step) => step.toolCalls?.map((call) => call.name) ?? [])).toEqual([['db_query'], []]);

    // Replayed on a stack of its own, with none of the test scripts: the recorded ones alone answer both sessions.
    const replay = startTroupe(['eval', dataset, '--json', '--log-dir', join(dir, 'logs')], { NATS_URL: stack.nats.url, OPENAI_BASE_URL: '', OPENAI_API_KEY: '', TROUPE_SCRIPTS: '' });
    expect(await replay.exited, replay.output().slice(-3000)).toBe(0);
    const report = EvalReport.parse(JSON.parse(replay.output().slice(replay.output().indexOf('{\n'), replay.output().lastIndexOf('\n}') + 2)));
    expect(report.cases[0]).toMatchObject({ id: evalCase.id, passed: true, scores: { trajectoryMatch: 1 } });
    expect(report.cases[0]?.runs[0]?.output).toBe(finished.output);
  }, 240_000);

  it('refuses a delegating session whose specialist sessions are not given', async () => {
    const run = await startSession(stack.client, { task: '[record-delegation] How many customers, again?', namespace: stack.namespace });
    await run.finished;
    const read = await (await CheckpointStore.open(stack.client, wireNames(stack.namespace))).read(run.sessionId);
    if (!read) throw new Error('no checkpoint');
    expect(() => recordSession(read.checkpoint, { caseId: 'c', scriptFile: 'scripts/c.json', recordedAt: '2026-11-30T00:00:00.000Z' }))
      .toThrow(new RegExp(`session ${run.sessionId} delegated to specialists whose sessions were not given \\(${run.sessionId}-d-`));
  }, 120_000);
});
