import type { NatsConnection } from '@nats-io/transport-node';
import { startSession } from '../client/sessionClient.ts';
import type { SessionEvent } from '../transport/messages.ts';

/** Per-step and per-call figures of sessions read event by event. */
export interface SessionTimings {
  /** Per session: its duration less model and tool time, per step (the orchestrator's own cost). */
  stepOverheads: number[];
  /** Per session: its duration less model time, per step (the orchestrator's cost and the tool call's). */
  stepTimes: number[];
  /** Every tool call's duration as the orchestrator saw it. */
  toolOverheads: number[];
  toolCallsPerSecond: number;
}

/**
 * Runs `sessions` sessions of `task`, `concurrency` at a time (each slot starts the next session
 * as its last one ends), reading every event; throws if one does not complete.
 */
export async function runSessions(nc: NatsConnection, concurrency: number, sessions: number, task: string): Promise<SessionTimings> {
  const timings: SessionTimings = { stepOverheads: [], stepTimes: [], toolOverheads: [], toolCallsPerSecond: 0 };
  let toolCalls = 0;
  const started = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, sessions) }, async () => {
    while (next++ < sessions) {
      const run = await startSession(nc, { task, agent: 'bench' });
      const events: SessionEvent[] = [];
      for await (const event of run.events) events.push(event);
      const finished = events.at(-1);
      if (finished?.type !== 'session.finished' || finished.status !== 'completed') throw new Error(`bench session ended ${JSON.stringify(finished)}`);
      const modelMs = events.reduce((sum, e) => sum + (e.type === 'model.responded' ? e.durationMs : 0), 0);
      const toolMs = events.reduce((sum, e) => sum + (e.type === 'tool.call.finished' ? e.durationMs : 0), 0);
      timings.stepOverheads.push((finished.durationMs - modelMs - toolMs) / finished.steps);
      timings.stepTimes.push((finished.durationMs - modelMs) / finished.steps);
      for (const e of events) if (e.type === 'tool.call.finished') timings.toolOverheads.push(e.durationMs);
      toolCalls += finished.toolCalls;
    }
  }));
  timings.toolCallsPerSecond = toolCalls / ((performance.now() - started) / 1000);
  return timings;
}
