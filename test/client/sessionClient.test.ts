import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cancelSession, NoOrchestratorError, SessionRejectedError, startSession } from '../../client/sessionClient.ts';
import {
  SessionStartRequest,
  type SessionEvent,
  type SessionEventBody,
  type SessionFinished,
  type SessionStartReply,
} from '../../transport/messages.ts';
import { startNatsServer, type NatsServerProcess } from '../../testing/natsServer.ts';
import { testWireNames } from '../fixtures/testNamespace.ts';

const names = testWireNames();
const { namespace, subjects } = names;

const usage = { inputTokens: 12, outputTokens: 3, costUsd: 0.0001 };

function finishedBody(): SessionEventBody {
  return {
    type: 'session.finished', status: 'completed', output: 'the answer is 42', stopReason: 'answered',
    steps: 1, toolCalls: 0, usage, traceId: 'trace-1', durationMs: 12,
  };
}

async function collect(events: AsyncIterable<SessionEvent>): Promise<SessionEvent[]> {
  const all: SessionEvent[] = [];
  for await (const event of events) all.push(event);
  return all;
}

type Emit = (body: SessionEventBody | string) => void;
type StartHandler = (request: SessionStartRequest, emit: Emit) => SessionStartReply;
type AfterReply = (emit: Emit) => void;

/**
 * An orchestrator made of raw subscriptions. `onStart` runs synchronously inside the start handler,
 * with `emit` publishing events of the session, and returns the reply.
 */
function fakeOrchestrator(
  nc: NatsConnection,
  onStart: StartHandler,
  afterReply: AfterReply = () => {},
): { requests: SessionStartRequest[]; subscription: Subscription } {
  const requests: SessionStartRequest[] = [];
  const subscription = nc.subscribe(subjects.sessionStart, {
    callback: (_error, msg: Msg) => {
      const request = SessionStartRequest.parse(msg.json());
      requests.push(request);
      let seq = 0;
      const emit: Emit = (body) => {
        const data = typeof body === 'string' ? body : JSON.stringify({ ...body, sessionId: request.sessionId, seq: seq++, at: new Date(0).toISOString() });
        nc.publish(subjects.sessionEvents(request.sessionId), data);
      };
      const reply = onStart(request, emit);
      msg.respond(JSON.stringify(reply));
      afterReply(emit);
    },
  });
  return { requests, subscription };
}

const accepted = (request: SessionStartRequest): SessionStartReply => ({ type: 'session.accepted', sessionId: request.sessionId, traceId: 'trace-1' });
const started: SessionEventBody = { type: 'session.started', agent: 'assistant', model: 'scripted', task: 'the task', traceId: 'trace-1' };

describe('startSession', () => {
  let server: NatsServerProcess;
  let orchestratorNc: NatsConnection;
  let clientNc: NatsConnection;
  let subscriptions: Subscription[] = [];

  beforeAll(async () => {
    // Its own server: a fake orchestrator on the shared one would take other suites' sessions.
    server = await startNatsServer();
    orchestratorNc = await connect({ servers: server.url, name: 'fake-orchestrator' });
    clientNc = await connect({ servers: server.url, name: 'client' });
  });

  afterEach(async () => {
    for (const sub of subscriptions) sub.unsubscribe();
    subscriptions = [];
    await orchestratorNc.flush();
  });

  afterAll(async () => {
    await orchestratorNc?.close();
    await clientNc?.close();
    await server?.stop();
  });

  const serve = (onStart: StartHandler, afterReply?: AfterReply) => {
    const fake = fakeOrchestrator(orchestratorNc, onStart, afterReply);
    subscriptions.push(fake.subscription);
    return fake;
  };

  it('receives an event published before the orchestrator replies', async () => {
    const fake = serve(
      (request, emit) => {
        emit(started);
        return accepted(request);
      },
      (emit) => {
        emit({ type: 'turn.started', turn: 1 });
        emit(finishedBody());
      },
    );
    await orchestratorNc.flush();
    const run = await startSession(clientNc, { namespace, task: 'the task', sessionId: 'early-event', agent: 'assistant' });
    expect(run).toMatchObject({ sessionId: 'early-event', traceId: 'trace-1' });
    expect(fake.requests).toEqual([{ type: 'session.start', sessionId: 'early-event', task: 'the task', agent: 'assistant' }]);
    const events = await collect(run.events);
    expect(events.map((e) => [e.type, e.seq])).toEqual([
      ['session.started', 0],
      ['turn.started', 1],
      ['session.finished', 2],
    ]);
  });

  it('makes up a session id when none is given and sends no agent when none is named', async () => {
    const fake = serve((request, emit) => {
      emit(finishedBody());
      return accepted(request);
    });
    await orchestratorNc.flush();
    const run = await startSession(clientNc, { namespace, task: 'the task' });
    expect(run.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(fake.requests[0]).toEqual({ type: 'session.start', sessionId: run.sessionId, task: 'the task' });
    expect((await run.finished).sessionId).toBe(run.sessionId);
  });

  it('sends the budgets asked for with the start', async () => {
    const fake = serve((request, emit) => {
      emit(finishedBody());
      return accepted(request);
    });
    await orchestratorNc.flush();
    const run = await startSession(clientNc, { namespace, task: 'the task', sessionId: 'tight', budgets: { maxSteps: 2, maxCostUsd: 0.05 } });
    expect(fake.requests).toEqual([{ type: 'session.start', sessionId: 'tight', task: 'the task', budgets: { maxSteps: 2, maxCostUsd: 0.05 } }]);
    await run.finished;
  });

  it('throws SessionRejectedError with the reason of a rejection', async () => {
    serve((request) => ({ type: 'session.rejected', sessionId: request.sessionId, reason: 'there is no agent named "nobody"' }));
    await orchestratorNc.flush();
    const error = await startSession(clientNc, { namespace, task: 'the task', agent: 'nobody' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SessionRejectedError);
    expect(error).toMatchObject({ reason: 'there is no agent named "nobody"', message: 'The session was refused: there is no agent named "nobody"' });
  });

  it('throws NoOrchestratorError when no orchestrator listens', async () => {
    await expect(startSession(clientNc, { namespace, whenNoOrchestrator: 'fail', task: 'the task', acceptTimeoutMs: 2_000 })).rejects.toBeInstanceOf(NoOrchestratorError);
  });

  it('reports malformed events to onInvalidEvent, skips them, and keeps delivering later ones', async () => {
    serve(
      (request, emit) => {
        emit(started);
        return accepted(request);
      },
      (emit) => {
        emit('not json at all');
        emit(JSON.stringify({ type: 'turn.started', sessionId: 'malformed', seq: 1, at: 'now' }));
        emit({ type: 'turn.started', turn: 1 });
        emit(finishedBody());
      },
    );
    await orchestratorNc.flush();
    const invalid: string[] = [];
    const run = await startSession(clientNc, { namespace, task: 'the task', sessionId: 'malformed', onInvalidEvent: (error) => invalid.push(error) });
    const events = await collect(run.events);
    expect(events.map((e) => e.type)).toEqual(['session.started', 'turn.started', 'session.finished']);
    expect(invalid).toHaveLength(2);
    expect(invalid[0]).toMatch(/^A session event is not valid JSON/);
    expect(invalid[1]).toMatch(/^A session event is malformed: turn: /);
  });

  it('resolves finished with the session.finished event even when nobody reads events', async () => {
    serve(
      (request) => accepted(request),
      (emit) => {
        emit(started);
        emit(finishedBody());
      },
    );
    await orchestratorNc.flush();
    const run = await startSession(clientNc, { namespace, task: 'the task', sessionId: 'unread' });
    const finished: SessionFinished = await run.finished;
    expect(finished).toEqual({ ...finishedBody(), sessionId: 'unread', seq: 1, at: new Date(0).toISOString() });
  });

  it('ends events after session.finished, ignoring anything published later', async () => {
    serve(
      (request) => accepted(request),
      (emit) => {
        emit(started);
        emit(finishedBody());
        emit({ type: 'turn.started', turn: 2 });
      },
    );
    await orchestratorNc.flush();
    const run = await startSession(clientNc, { namespace, task: 'the task', sessionId: 'ends' });
    const iterator = run.events[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toMatchObject({ type: 'session.started' });
    expect((await iterator.next()).value).toMatchObject({ type: 'session.finished' });
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  });

  it('records a cancel in the session\'s command stream, one copy per command id, and reports what its host made of it', async () => {
    serve((request, emit) => {
      emit(started);
      return accepted(request);
    });
    // The host: applies each recorded command it is handed, and says so on the session's events.
    const reasons: string[] = [];
    subscriptions.push(
      orchestratorNc.subscribe(subjects.sessionControls('cancel-me'), {
        callback: (_error, msg) => {
          reasons.push(msg.json<{ reason: string }>().reason);
          const controlId = msg.headers?.get('Nats-Msg-Id');
          orchestratorNc.publish(subjects.sessionEvents('cancel-me'), JSON.stringify({
            type: 'control.applied', sessionId: 'cancel-me', seq: 10 + reasons.length, at: new Date(0).toISOString(), controlId, control: 'session.cancel', accepted: true,
          }));
        },
      }),
    );
    await orchestratorNc.flush();
    const run = await startSession(clientNc, { namespace, task: 'the task', sessionId: 'cancel-me' });
    expect(await run.cancel('changed my mind')).toBe(true);
    expect(reasons).toEqual(['changed my mind']);
    const once = { namespace, controlId: 'cancel-1' };
    expect(await cancelSession(clientNc, 'cancel-me', 'again', once)).toMatchObject({ status: 'applied', controlId: 'cancel-1' });
    await cancelSession(clientNc, 'cancel-me', 'again', once);
    // The stream keeps one copy of an id, which is what a resumed host reads.
    const stored = await (await jetstreamManager(clientNc)).streams.info(names.streams.sessionControls, { subjects_filter: subjects.sessionControls('cancel-me') });
    expect(stored.state.subjects).toEqual({ [subjects.sessionControls('cancel-me')]: 2 });
  });
});
