import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { startWorker, WorkerConfigurationError, type ToolWorker } from '../../../actors/worker/toolWorker.ts';
import { StoredUndo } from '../../../actors/worker/undoStore.ts';
import { filesTools } from '../../../domains/files/filesTools.ts';
import { defineTool } from '../../../tools/defineTool.ts';
import { ToolError, ToolFailureCode } from '../../../tools/toolFailure.ts';
import { ToolReply, type ToolRequest } from '../../../transport/messages.ts';
import { startNatsServer, type NatsServerProcess } from '../../../testing/natsServer.ts';
import { testWireNames } from '../../fixtures/testNamespace.ts';

const encoder = new TextEncoder();
const names = testWireNames();
const { namespace } = names;

function toolRequest(tool: string, args: Record<string, unknown>, overrides: Partial<ToolRequest> = {}): ToolRequest {
  return {
    type: 'tool.request',
    sessionId: 'session-1',
    callId: `call-${Math.random().toString(36).slice(2)}`,
    tool,
    arguments: args,
    deadline: Date.now() + 10_000,
    ...overrides,
  };
}

function decodeReply(msg: Msg): ToolReply {
  return ToolReply.parse(JSON.parse(new TextDecoder().decode(msg.data)));
}

/** Sends a raw request the way the orchestrator does and returns the decoded reply with its message. */
async function call(nc: NatsConnection, domain: string, tool: string, body: unknown): Promise<{ reply: ToolReply; msg: Msg }> {
  const data = typeof body === 'string' ? encoder.encode(body) : encoder.encode(JSON.stringify(body));
  const msg = await nc.request(names.subjects.tool(domain, tool), data, { timeout: 5_000 });
  return { reply: decodeReply(msg), msg };
}

function failureOf(reply: ToolReply) {
  if (reply.status !== 'error') throw new Error(`expected an error reply, got ${JSON.stringify(reply)}`);
  return reply.failure;
}

/** A promise with its resolve function, for handlers the test holds open. */
function gate<T = void>() {
  let open!: (value: T) => void;
  const opened = new Promise<T>((resolve) => (open = resolve));
  return { open, opened };
}

describe('startWorker', () => {
  let server: NatsServerProcess;
  let workerNc: NatsConnection;
  let clientNc: NatsConnection;
  let worker: ToolWorker;
  const invocations = { shout: 0, slow: 0 };
  const slowSignals: AbortSignal[] = [];

  const shout = defineTool({
    name: 'echo_shout',
    description: 'Shouts the text back.',
    input: z.object({ text: z.string().min(1), style: z.object({ times: z.number().int().positive() }).optional() }),
    output: z.object({ shout: z.string() }),
    handler: ({ text, style }) => {
      invocations.shout += 1;
      return { shout: text.toUpperCase().repeat(style?.times ?? 1) };
    },
  });
  const slow = defineTool({
    name: 'echo_slow',
    description: 'Never finishes on its own; resolves only when aborted.',
    input: z.object({}),
    output: z.object({ done: z.boolean() }),
    handler: async (_input, { signal }) => {
      invocations.slow += 1;
      slowSignals.push(signal);
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
      return { done: true };
    },
  });
  const forbidden = defineTool({
    name: 'echo_forbidden',
    description: 'Refuses every call.',
    input: z.object({}),
    output: z.object({}),
    handler: () => {
      throw new ToolError(ToolFailureCode.FORBIDDEN, 'Writing outside the workspace is not allowed.');
    },
  });
  const multiline = defineTool({
    name: 'echo_multiline',
    description: 'Fails with a message that spans lines.',
    input: z.object({}),
    output: z.object({}),
    handler: () => {
      throw new Error('first line\nsecond line');
    },
  });
  const crash = defineTool({
    name: 'echo_crash',
    description: 'Fails with a plain error.',
    input: z.object({}),
    output: z.object({}),
    handler: () => {
      throw new Error('disk on fire');
    },
  });
  const liar = defineTool({
    name: 'echo_liar',
    description: 'Returns something its output schema does not allow.',
    input: z.object({}),
    output: z.object({ shout: z.string() }),
    // The cast is the point: a handler whose runtime output breaks its declared schema.
    handler: () => ({ shout: 42 }) as unknown as { shout: string },
  });

  beforeAll(async () => {
    server = await startNatsServer();
    workerNc = await connect({ servers: server.url, name: 'worker-echo' });
    clientNc = await connect({ servers: server.url, name: 'client' });
    worker = await startWorker({ domain: 'echo', tools: [shout, slow, forbidden, crash, multiline, liar], nats: workerNc, namespace });
  });

  afterAll(async () => {
    await worker?.stop();
    await workerNc?.close();
    await clientNc?.close();
    await server?.stop();
  });

  it('returns an ok reply with the result checked by the output schema', async () => {
    const request = toolRequest('echo_shout', { text: 'hey', style: { times: 2 } });
    const { reply, msg } = await call(clientNc, 'echo', 'echo_shout', request);
    expect(reply).toEqual({ type: 'tool.reply', status: 'ok', callId: request.callId, result: { shout: 'HEYHEY' } });
    expect(msg.headers?.get('Nats-Service-Error') ?? '').toBe('');
  });

  it('answers a body that is not JSON with INVALID_INPUT and keeps serving', async () => {
    const { reply } = await call(clientNc, 'echo', 'echo_shout', 'this is not json');
    expect(reply.callId).toBe('unknown');
    expect(failureOf(reply)).toMatchObject({ code: 'INVALID_INPUT', retryable: false });
    expect(failureOf(reply).message).toMatch(/^The request to echo_shout is not valid JSON: /);

    const after = await call(clientNc, 'echo', 'echo_shout', toolRequest('echo_shout', { text: 'still here' }));
    expect(after.reply).toMatchObject({ status: 'ok', result: { shout: 'STILL HERE' } });
  });

  it('answers a JSON body missing fields with INVALID_INPUT naming each field and keeps serving', async () => {
    const { reply } = await call(clientNc, 'echo', 'echo_shout', { type: 'tool.request', tool: 'echo_shout' });
    const failure = failureOf(reply);
    expect(failure.code).toBe('INVALID_INPUT');
    expect(failure.message).toMatch(/^The request to echo_shout is malformed: /);
    for (const field of ['sessionId', 'callId', 'arguments', 'deadline']) expect(failure.message).toContain(field);

    const after = await call(clientNc, 'echo', 'echo_shout', toolRequest('echo_shout', { text: 'ok' }));
    expect(after.reply.status).toBe('ok');
  });

  it('refuses a request naming another tool than the endpoint serves', async () => {
    const before = invocations.shout;
    const { reply } = await call(clientNc, 'echo', 'echo_shout', toolRequest('echo_crash', {}));
    expect(failureOf(reply)).toMatchObject({ code: 'INVALID_INPUT', message: 'This endpoint serves "echo_shout", not "echo_crash".' });
    expect(invocations.shout).toBe(before);
  });

  it('answers arguments that break the zod schema with INVALID_INPUT issues naming the path', async () => {
    const before = invocations.shout;
    const request = toolRequest('echo_shout', { text: '', style: { times: 'twice' } });
    const { reply } = await call(clientNc, 'echo', 'echo_shout', request);
    const failure = failureOf(reply);
    expect(reply.callId).toBe(request.callId);
    expect(failure.code).toBe('INVALID_INPUT');
    expect(failure.issues?.map((i) => [i.path, i.code])).toEqual([
      ['text', 'too_small'],
      ['style.times', 'invalid_type'],
    ]);
    expect(failure.message).toContain('`style.times`');
    expect(invocations.shout).toBe(before);
  });

  it('answers a call whose deadline has passed with TIMEOUT without running the handler', async () => {
    const before = invocations.shout;
    const request = toolRequest('echo_shout', { text: 'late' }, { deadline: Date.now() - 1_000 });
    const { reply } = await call(clientNc, 'echo', 'echo_shout', request);
    expect(failureOf(reply)).toMatchObject({ code: 'TIMEOUT', retryable: true });
    expect(failureOf(reply).message).toContain('after its deadline');
    expect(invocations.shout).toBe(before);
  });

  it('answers a handler slower than the deadline with TIMEOUT and aborts its signal', async () => {
    const before = invocations.slow;
    const { reply } = await call(clientNc, 'echo', 'echo_slow', toolRequest('echo_slow', {}, { deadline: Date.now() + 150 }));
    expect(failureOf(reply)).toMatchObject({ code: 'TIMEOUT', retryable: true });
    expect(failureOf(reply).message).toMatch(/^echo_slow did not finish within its deadline/);
    expect(invocations.slow).toBe(before + 1);
    expect(slowSignals.at(-1)?.aborted).toBe(true);
  });

  // Regression: a deadline further than 2^31−1 ms away armed a timer that fired at once, so the call timed out as it began.
  it('refuses a deadline further away than a timer can wait with INVALID_INPUT, without running the handler', async () => {
    const before = invocations.slow;
    const request = toolRequest('echo_slow', {}, { deadline: Date.now() + 3_000_000_000 });
    const { reply } = await call(clientNc, 'echo', 'echo_slow', request);
    expect(failureOf(reply)).toMatchObject({ code: 'INVALID_INPUT', retryable: false });
    expect(failureOf(reply).message).toContain('deadline: must be at most 2147483647 ms from now (about 24.8 days, the longest delay a timer can wait)');
    expect(invocations.slow).toBe(before);
  });

  it('passes a ToolError thrown by the handler through with its code and message', async () => {
    const { reply } = await call(clientNc, 'echo', 'echo_forbidden', toolRequest('echo_forbidden', {}));
    expect(failureOf(reply)).toEqual({ code: 'FORBIDDEN', message: 'Writing outside the workspace is not allowed.', retryable: false });
  });

  it('turns a plain Error thrown by the handler into INTERNAL', async () => {
    const { reply } = await call(clientNc, 'echo', 'echo_crash', toolRequest('echo_crash', {}));
    expect(failureOf(reply)).toEqual({ code: 'INTERNAL', message: 'The tool failed unexpectedly: disk on fire', retryable: true });
  });

  it('turns output that breaks the output schema into INTERNAL', async () => {
    const { reply } = await call(clientNc, 'echo', 'echo_liar', toolRequest('echo_liar', {}));
    expect(failureOf(reply)).toMatchObject({ code: 'INTERNAL' });
    expect(failureOf(reply).message).toBe('echo_liar produced a result that does not match its declared output.');
  });

  it('sets the service protocol error headers on error replies', async () => {
    const forbiddenCall = await call(clientNc, 'echo', 'echo_forbidden', toolRequest('echo_forbidden', {}));
    expect(forbiddenCall.msg.headers?.get('Nats-Service-Error')).toBe('Writing outside the workspace is not allowed.');
    expect(forbiddenCall.msg.headers?.get('Nats-Service-Error-Code')).toBe('400');

    const crashCall = await call(clientNc, 'echo', 'echo_crash', toolRequest('echo_crash', {}));
    expect(crashCall.msg.headers?.get('Nats-Service-Error')).toBe('The tool failed unexpectedly: disk on fire');
    expect(crashCall.msg.headers?.get('Nats-Service-Error-Code')).toBe('500');

    const malformed = await call(clientNc, 'echo', 'echo_shout', '{');
    expect(malformed.msg.headers?.get('Nats-Service-Error-Code')).toBe('400');
    expect(malformed.msg.headers?.get('Nats-Service-Error')).toBe(failureOf(malformed.reply).message);
  });

  // Regression: header values cannot hold line breaks, and the failed header write used to swallow the reply.
  it('replies to failures whose message spans lines, with the error headers on one line', async () => {
    const { reply, msg } = await call(clientNc, 'echo', 'echo_multiline', toolRequest('echo_multiline', {}));
    expect(failureOf(reply)).toMatchObject({ code: 'INTERNAL' });
    expect(msg.headers?.get('Nats-Service-Error')).not.toMatch(/[\r\n]/);
    const notJson = await call(clientNc, 'echo', 'echo_shout', '{"type":\n nope}');
    expect(failureOf(notJson.reply)).toMatchObject({ code: 'INVALID_INPUT' });
  });

  it('refuses a tool of another domain with WorkerConfigurationError', async () => {
    const other = defineTool({
      name: 'other_thing',
      description: 'Belongs elsewhere.',
      input: z.object({}),
      output: z.object({}),
      handler: () => ({}),
    });
    await expect(startWorker({ domain: 'echo', tools: [shout, other], nats: workerNc, namespace })).rejects.toThrow(
      new WorkerConfigurationError('Tool "other_thing" belongs to domain "other", not "echo".'),
    );
    await expect(startWorker({ domain: 'echo', tools: [shout, other], nats: workerNc, namespace })).rejects.toBeInstanceOf(WorkerConfigurationError);
  });

  it('refuses a domain that is not a subject token and an empty tool list', async () => {
    await expect(startWorker({ domain: 'echo.star', tools: [shout], nats: workerNc, namespace })).rejects.toBeInstanceOf(WorkerConfigurationError);
    await expect(startWorker({ domain: 'echo', tools: [], nats: workerNc, namespace })).rejects.toBeInstanceOf(WorkerConfigurationError);
  });
});

describe('ToolWorker.stop', () => {
  let server: NatsServerProcess;
  let workerNc: NatsConnection;
  let clientNc: NatsConnection;

  beforeAll(async () => {
    server = await startNatsServer();
    workerNc = await connect({ servers: server.url, name: 'worker-gate' });
    clientNc = await connect({ servers: server.url, name: 'client' });
  });

  afterAll(async () => {
    await workerNc?.close();
    await clientNc?.close();
    await server?.stop();
  });

  it('finishes the call in flight, then refuses new calls with no responders', async () => {
    const entered = gate();
    const release = gate();
    const order: string[] = [];
    const hold = defineTool({
      name: 'gate_hold',
      description: 'Holds until the test releases it.',
      input: z.object({}),
      output: z.object({ released: z.boolean() }),
      handler: async () => {
        entered.open();
        await release.opened;
        order.push('handler finished');
        return { released: true };
      },
    });
    const ping = defineTool({
      name: 'gate_ping',
      description: 'Answers at once.',
      input: z.object({}),
      output: z.object({ pong: z.boolean() }),
      handler: () => ({ pong: true }),
    });
    const worker = await startWorker({ domain: 'gate', tools: [hold, ping], nats: workerNc, namespace });

    const held = call(clientNc, 'gate', 'gate_hold', toolRequest('gate_hold', {}));
    await entered.opened;
    expect(worker.inFlight()).toBe(1);
    const stopping = worker.stop().then(() => order.push('stopped'));

    // Bounded polling: the drain unsubscribes asynchronously; wait until the server stops routing to the worker.
    const deadline = Date.now() + 5_000;
    let refused: unknown;
    while (refused === undefined && Date.now() < deadline) {
      refused = await call(clientNc, 'gate', 'gate_ping', toolRequest('gate_ping', {})).then(
        () => undefined,
        (error: unknown) => error,
      );
    }
    expect(refused).toBeInstanceOf(Error);
    expect(order).toEqual([]);
    expect(worker.inFlight()).toBe(1);

    release.open();
    const { reply } = await held;
    expect(reply).toMatchObject({ status: 'ok', result: { released: true } });
    await stopping;
    expect(order).toEqual(['handler finished', 'stopped']);
    expect(worker.inFlight()).toBe(0);

    await expect(call(clientNc, 'gate', 'gate_hold', toolRequest('gate_hold', {}))).rejects.toThrow(/no responders/i);
  });
});

describe('a pool of two workers of one domain', () => {
  let server: NatsServerProcess;
  const connections: NatsConnection[] = [];
  const workers: ToolWorker[] = [];
  const handledBy: Array<Map<string, number>> = [new Map(), new Map()];

  const countingTool = (counts: Map<string, number>) =>
    defineTool({
      name: 'pair_count',
      description: 'Counts the calls this instance handled.',
      input: z.object({}),
      output: z.object({ ok: z.boolean() }),
      handler: (_input, { callId }) => {
        counts.set(callId, (counts.get(callId) ?? 0) + 1);
        return { ok: true };
      },
    });

  beforeAll(async () => {
    server = await startNatsServer();
    for (const counts of handledBy) {
      const nc = await connect({ servers: server.url, name: 'worker-pair' });
      connections.push(nc);
      workers.push(await startWorker({ domain: 'pair', tools: [countingTool(counts)], nats: nc, namespace }));
    }
    connections.push(await connect({ servers: server.url, name: 'client' }));
  });

  afterAll(async () => {
    for (const worker of workers) await worker.stop();
    for (const nc of connections) await nc.close();
    await server?.stop();
  });

  it('shares calls between its members, each call handled exactly once', async () => {
    const client = connections.at(-1) as NatsConnection;
    const callIds: string[] = [];
    for (let i = 0; i < 40; i += 1) {
      const request = toolRequest('pair_count', {}, { callId: `pair-${i}` });
      callIds.push(request.callId);
      const { reply } = await call(client, 'pair', 'pair_count', request);
      expect(reply.status).toBe('ok');
    }
    const [first, second] = handledBy as [Map<string, number>, Map<string, number>];
    expect(first.size).toBeGreaterThan(0);
    expect(second.size).toBeGreaterThan(0);
    expect(first.size + second.size).toBe(40);
    expect([...first.keys(), ...second.keys()].sort()).toEqual([...callIds].sort());
    expect([...first.values(), ...second.values()].every((n) => n === 1)).toBe(true);
    expect(new Set(workers.map((w) => w.instanceId)).size).toBe(2);
  });
});

describe('a side-effecting call whose handler outlives its deadline', () => {
  let server: NatsServerProcess;
  let nc: NatsConnection;
  let worker: ToolWorker;
  let runs = 0;
  const slowWrite = defineTool({
    name: 'ledger_append',
    description: 'Appends to a ledger, slowly.',
    input: z.object({ line: z.string() }),
    output: z.object({ appended: z.string() }),
    sideEffects: true,
    // Ignores its abort signal, as real side effects often cannot be undone half-way.
    handler: async ({ line }) => {
      runs += 1;
      await new Promise((resolve) => setTimeout(resolve, 400));
      return { appended: line };
    },
  });

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    worker = await startWorker({ domain: 'ledger', tools: [slowWrite], nats: nc, namespace });
  });
  afterAll(async () => {
    await worker?.stop();
    await nc?.close();
    await server?.stop();
  });

  // Regression: the TIMEOUT released the claim, so the retry ran the handler again (three runs for one call).
  it('answers TIMEOUT, then gives the retry the real outcome without running the handler again', async () => {
    const callId = 'append-1';
    const first = await call(nc, 'ledger', 'ledger_append', toolRequest('ledger_append', { line: 'x' }, { callId, deadline: Date.now() + 150 }));
    expect(failureOf(first.reply).code).toBe('TIMEOUT');
    const retry = await call(nc, 'ledger', 'ledger_append', toolRequest('ledger_append', { line: 'x' }, { callId, deadline: Date.now() + 3_000 }));
    expect(retry.reply).toMatchObject({ status: 'ok', result: { appended: 'x' } });
    expect(runs).toBe(1);
  });
});

describe('a result larger than a NATS message', () => {
  let server: NatsServerProcess;
  let nc: NatsConnection;
  let worker: ToolWorker;
  const huge = defineTool({
    name: 'dump_all',
    description: 'Returns two megabytes.',
    input: z.object({}),
    output: z.object({ blob: z.string() }),
    handler: (_input, { reportSpending }) => {
      // As a specialist would: what producing the result cost travels back even when the result cannot.
      reportSpending({ usage: { inputTokens: 900, outputTokens: 100, costUsd: 0.01 }, steps: 2, toolCalls: 1 });
      return { blob: 'x'.repeat(2 * 1024 * 1024) };
    },
  });
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    worker = await startWorker({ domain: 'dump', tools: [huge], nats: nc, namespace });
  });
  afterAll(async () => {
    await worker?.stop();
    await nc?.close();
    await server?.stop();
  });

  // Regression: the reply could not be sent, so the caller timed out and retried the whole call.
  it('gets a structured error at once, saying to ask for less', async () => {
    const { reply } = await call(nc, 'dump', 'dump_all', toolRequest('dump_all', {}));
    expect(failureOf(reply)).toMatchObject({ code: 'INVALID_INPUT', retryable: false, message: expect.stringContaining('Ask for less') });
    expect(reply).toMatchObject({ spent: { usage: { inputTokens: 900, outputTokens: 100, costUsd: 0.01 }, steps: 2, toolCalls: 1 } });
  });
});

// Regression: files_write over an existing file larger than a reply can carry wrote the file, told
// the model the call failed (the capture made the reply too large to send), and lost the capture;
// its outcome could not be recorded either, so a retry would have run it again.
describe('files_write over an existing file larger than a reply can carry', () => {
  let server: NatsServerProcess;
  let nc: NatsConnection;
  let worker: ToolWorker;
  let workspace: string;
  const original = Buffer.concat([Buffer.from([0x00, 0xff, 0x10]), Buffer.alloc(1_000_000, 0x61)]);

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    workspace = await mkdtemp(join(tmpdir(), 'troupe-undo-'));
    await writeFile(join(workspace, 'big.bin'), original);
    worker = await startWorker({ domain: 'files', tools: filesTools({ workspace }), nats: nc, namespace });
  });
  afterAll(async () => {
    await worker?.stop();
    await nc?.close();
    await server?.stop();
  });

  const undo = async (body: Record<string, unknown>) => {
    const msg = await nc.request(names.subjects.toolUndo('files', 'files_write'), encoder.encode(JSON.stringify({ type: 'tool.undo', deadline: Date.now() + 10_000, ...body })), { timeout: 5_000 });
    return decodeReply(msg);
  };

  it('reports the write as done, keeps the capture by reference, and undoes it byte for byte', async () => {
    const request = toolRequest('files_write', { path: 'big.bin', content: 'replaced' }, { callId: 'write-big' });
    const { reply, msg } = await call(nc, 'files', 'files_write', request);
    expect(reply).toMatchObject({ status: 'ok', result: { path: 'big.bin', bytes: 8, created: false } });
    // What travels is a reference to the capture, never the capture (1.3 MB in base64).
    expect(msg.data.byteLength).toBeLessThan(1_024);
    const reference = StoredUndo.parse(reply.status === 'ok' ? reply.compensation : undefined);
    expect(reference.bytes).toBeGreaterThan(original.byteLength);
    expect(await readFile(join(workspace, 'big.bin'), 'utf8')).toBe('replaced');

    // The outcome was recorded: a retry of the call replays it and writes nothing again.
    await writeFile(join(workspace, 'big.bin'), 'changed since');
    const retry = await call(nc, 'files', 'files_write', { ...request, deadline: Date.now() + 10_000 });
    expect(retry.reply).toEqual(reply);
    expect(await readFile(join(workspace, 'big.bin'), 'utf8')).toBe('changed since');

    const undone = await undo({ sessionId: request.sessionId, callId: request.callId, tool: 'files_write', compensation: reference });
    expect(undone).toMatchObject({ status: 'ok' });
    expect(await readFile(join(workspace, 'big.bin'))).toEqual(original);
  });

  it('undoes nothing from a capture it did not keep: one written into the request, another call\'s, or a tampered reference', async () => {
    await writeFile(join(workspace, 'kept.txt'), 'kept');
    const request = toolRequest('files_write', { path: 'kept.txt', content: 'new' }, { callId: 'write-kept' });
    const { reply } = await call(nc, 'files', 'files_write', request);
    const reference = StoredUndo.parse(reply.status === 'ok' ? reply.compensation : undefined);
    const attempts = [
      { compensation: { path: 'kept.txt', previous: Buffer.from('forged').toString('base64') }, code: 'INVALID_INPUT' },
      { compensation: reference, callId: 'never-ran', code: 'NOT_FOUND' },
      { compensation: { ...reference, sha256: '0'.repeat(64) }, code: 'INVALID_INPUT' },
    ];
    for (const attempt of attempts) {
      const undone = await undo({ sessionId: request.sessionId, callId: attempt.callId ?? request.callId, tool: 'files_write', compensation: attempt.compensation });
      expect(failureOf(undone).code).toBe(attempt.code);
    }
    expect(await readFile(join(workspace, 'kept.txt'), 'utf8')).toBe('new');
  });
});

// Regression: a side-effecting call whose result was too large for a reply was answered as failed
// (so the model would do it again), and its outcome could not be recorded (so a retry would run it again).
describe('a side-effecting call whose result is larger than a NATS message', () => {
  let server: NatsServerProcess;
  let nc: NatsConnection;
  let worker: ToolWorker;
  let runs = 0;
  const export_ = defineTool({
    name: 'export_all',
    description: 'Exports everything and returns it.',
    input: z.object({}),
    output: z.object({ blob: z.string() }),
    sideEffects: true,
    handler: () => {
      runs += 1;
      return { blob: 'x'.repeat(2 * 1024 * 1024) };
    },
  });
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    worker = await startWorker({ domain: 'export', tools: [export_], nats: nc, namespace });
  });
  afterAll(async () => {
    await worker?.stop();
    await nc?.close();
    await server?.stop();
  });

  it('is reported as done with a note instead of its result, and a retry replays that without running it again', async () => {
    const request = toolRequest('export_all', {}, { callId: 'export-1' });
    const { reply } = await call(nc, 'export', 'export_all', request);
    expect(reply).toMatchObject({ status: 'ok', result: expect.stringContaining('export_all succeeded') });
    expect(reply.status === 'ok' && reply.result).toMatch(/Do not repeat the call/);
    const retry = await call(nc, 'export', 'export_all', { ...request, deadline: Date.now() + 10_000 });
    expect(retry.reply).toEqual(reply);
    expect(runs).toBe(1);
  });
});
