import { afterEach, describe, expect, it } from 'vitest';
import { CheckpointStore } from '../../actors/durability/checkpointStore.ts';
import {
  answerSession, approveSession, attachSession, cancelSession, continueSession, denySession, interruptSession, startSession, type ControlResult,
} from '../../client/sessionClient.ts';
import { decodeSessionEvents, type SessionEvent } from '../../transport/messages.ts';
import { wireNames } from '../../transport/subjects.ts';
import { executions, startProcessStack, type ProcessStack } from '../fixtures/processStack.ts';
import { eventually, startTroupe, type TroupeProcess } from '../fixtures/troupeProcess.ts';
import { ofType } from '../fixtures/eventsOfType.ts';


/**
 * A person's command sent the moment its session's orchestrator dies (`kill -9`), before another has
 * taken the session over: it is recorded, not refused, and the orchestrator that resumes the session
 * applies it before anything else, once.
 */
describe('a person\'s command while its session changes hands', () => {
  let stack: ProcessStack | undefined;
  let standby: TroupeProcess | undefined;
  afterEach(async () => {
    await standby?.stop();
    await stack?.stop();
    stack = undefined;
    standby = undefined;
  });

  /** Starts `task`, waits until its checkpoint says it waits for a person, and kills its orchestrator. */
  async function parkThenKillHost(task: string) {
    stack = await startProcessStack({ env: { TROUPE_REQUIRE_APPROVAL: 'files_write', TROUPE_LEASE_TTL_MS: '1000' } });
    const worker = await stack.startWorker('files');
    const { client, namespace } = stack;
    const run = await startSession(client, { namespace, task });
    const checkpoints = await CheckpointStore.open(client, wireNames(namespace));
    await eventually('the session parked, and its checkpoint saying so', async () => (await checkpoints.read(run.sessionId))?.checkpoint.status === 'parked', 30_000);
    stack.orchestrator.child.kill('SIGKILL');
    run.detach();
    return { sessionId: run.sessionId, worker, client, namespace };
  }

  /** Takes the session over with a second orchestrator, and follows it to its end. */
  async function resumeAndFollow(sessionId: string, until: (event: SessionEvent) => boolean = (e) => e.type === 'session.finished' && e.status !== 'escalated') {
    standby = startTroupe(['orchestrator'], stack!.env);
    const feed = await attachSession(stack!.client, sessionId, { namespace: stack!.namespace });
    const events: SessionEvent[] = [];
    for await (const event of feed.events) {
      events.push(event);
      if (until(event)) break;
    }
    feed.stop();
    return events;
  }

  const recorded = (result: ControlResult) => expect(result).toMatchObject({ status: 'recorded', accepted: true });

  it('approve: recorded while nobody hosts the session, applied once by the orchestrator that resumes it, even sent twice; the call runs once', async () => {
    const { sessionId, worker, client, namespace } = await parkThenKillHost('[parked-write] approve');
    const once = { namespace, by: 'ops', controlId: 'approve-1', applyWithinMs: 0 };
    recorded(await approveSession(client, sessionId, once));
    recorded(await approveSession(client, sessionId, once));
    const events = await resumeAndFollow(sessionId);
    expect(events.at(-1)).toMatchObject({ type: 'session.finished', status: 'completed', output: 'finished' });
    expect(ofType(events, 'approval.decided')).toEqual([expect.objectContaining({ decision: 'approved', by: 'ops' })]);
    expect(ofType(events, 'control.applied').filter((e) => e.controlId === 'approve-1')).toEqual([expect.objectContaining({ accepted: true, control: 'session.approve' })]);
    expect(executions(stack!.logsOf(worker), 'files_write')).toBe(1);
    // Sent again once applied, the same command is answered from what came of it, not applied again.
    expect(await approveSession(client, sessionId, { ...once, applyWithinMs: 3_000 })).toMatchObject({ accepted: false, reason: 'the session has ended' });
  }, 120_000);

  it('deny: the call never runs, and the model is told', async () => {
    const { sessionId, worker, client, namespace } = await parkThenKillHost('[parked-write] deny');
    recorded(await denySession(client, sessionId, { namespace, by: 'ops', reason: 'not today', applyWithinMs: 0 }));
    const events = await resumeAndFollow(sessionId);
    expect(events.at(-1)).toMatchObject({ type: 'session.finished', status: 'completed', output: 'finished' });
    expect(ofType(events, 'approval.decided')).toEqual([expect.objectContaining({ decision: 'denied', reason: 'not today' })]);
    expect(executions(stack!.logsOf(worker), 'files_write')).toBe(0);
  }, 120_000);

  it('cancel: the resumed session ends cancelled without running the call', async () => {
    const { sessionId, worker, client, namespace } = await parkThenKillHost('[parked-write] cancel');
    recorded(await cancelSession(client, sessionId, 'changed my mind', { namespace, applyWithinMs: 0 }));
    const events = await resumeAndFollow(sessionId);
    expect(events.at(-1)).toMatchObject({ type: 'session.finished', status: 'cancelled' });
    expect(executions(stack!.logsOf(worker), 'files_write')).toBe(0);
  }, 120_000);

  it('interrupt: the resumed session pauses before its next model call, and goes on when told to', async () => {
    const { sessionId, worker, client, namespace } = await parkThenKillHost('[parked-write] interrupt');
    recorded(await interruptSession(client, sessionId, { namespace, applyWithinMs: 0 }));
    // Approved too, in order: the call runs, then the session pauses instead of asking the model again.
    recorded(await approveSession(client, sessionId, { namespace, by: 'ops', applyWithinMs: 0 }));
    const paused = await resumeAndFollow(sessionId, (e) => e.type === 'session.interrupted');
    expect(ofType(paused, 'control.applied').map((e) => [e.control, e.accepted])).toEqual([['session.interrupt', true], ['session.approve', true]]);
    expect(await continueSession(client, sessionId, { namespace })).toMatchObject({ status: 'applied' });
    const feed = await attachSession(client, sessionId, { namespace });
    let last: SessionEvent | undefined;
    for await (const event of feed.events) last = event;
    expect(last).toMatchObject({ type: 'session.finished', status: 'completed', output: 'finished' });
    expect(executions(stack!.logsOf(worker), 'files_write')).toBe(1);
  }, 120_000);

  it('answer: an escalated session resumes with the person\'s answer', async () => {
    const { sessionId, client, namespace } = await parkThenKillHost('Please get stuck on the report.');
    // A replay ends at the escalation's `session.finished`: the end after it is read as it comes.
    const final = new Promise<unknown>((resolve) => {
      const subscription = client.subscribe(wireNames(namespace).subjects.sessionEvents(sessionId), {
        callback: (_error, msg) => {
          for (const event of decodeSessionEvents(msg.data, 'an event').events) {
            if (event.type === 'session.finished' && event.status !== 'escalated') {
              subscription.unsubscribe();
              resolve(event);
            }
          }
        },
      });
    });
    recorded(await answerSession(client, sessionId, 'the report is in reports/2025.md', { namespace, applyWithinMs: 0 }));
    standby = startTroupe(['orchestrator'], stack!.env);
    expect(await final).toMatchObject({ type: 'session.finished', status: 'completed', output: 'back in control; I was told: the report is in reports/2025.md' });
  }, 120_000);
});
