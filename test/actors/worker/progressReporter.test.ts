import { describe, expect, it } from 'vitest';
import { progressReporterFor } from '../../../actors/worker/progressReporter.ts';
import { ToolProgressInbox } from '../../../actors/toolCalls/toolProgressInbox.ts';
import { silentLogger } from '../../../observability/logger.ts';
import type { ToolProgress, ToolRequest } from '../../../transport/messages.ts';
import { wireNames } from '../../../transport/subjects.ts';
import { natsPerSuite } from '../../fixtures/natsPerSuite.ts';
import { eventually } from '../../fixtures/troupeProcess.ts';

const names = wireNames('progress-test');
const request = (progressTo: string | undefined, callId = 'call-1'): ToolRequest => ({
  type: 'tool.request', sessionId: 's-1', callId, tool: 'slow_work', arguments: {}, deadline: Date.now() + 10_000, ...(progressTo ? { progressTo } : {}),
});

describe('tool progress, from a worker to the process that sent the call', () => {
  const nats = natsPerSuite();

  it('reaches the watcher of the call through the process\'s inbox, reports closer than a fifth of a second folded into the latest', async () => {
    const inbox = new ToolProgressInbox(nats.nc, names, silentLogger());
    const seen: ToolProgress[] = [];
    const unwatch = inbox.watch('call-1', (p) => seen.push(p));
    await nats.nc.flush();
    const report = progressReporterFor(nats.nc, names, request(inbox.subject), silentLogger());
    expect(report).toBeDefined();
    for (let i = 1; i <= 5; i++) report?.({ progress: i, total: 5, message: `step ${i}` });
    await eventually('the first and the last report', async () => seen.length === 2, 5_000);
    expect(seen).toEqual([
      { type: 'tool.progress', callId: 'call-1', progress: 1, total: 5, message: 'step 1' },
      { type: 'tool.progress', callId: 'call-1', progress: 5, total: 5, message: 'step 5' },
    ]);
    unwatch();
    inbox.stop();
  });

  it('drops reports for calls nobody watches and messages that are not reports', async () => {
    const inbox = new ToolProgressInbox(nats.nc, names, silentLogger());
    const seen: ToolProgress[] = [];
    inbox.watch('call-2', (p) => seen.push(p));
    await nats.nc.flush();
    nats.nc.publish(inbox.subject, 'not json');
    nats.nc.publish(inbox.subject, JSON.stringify({ type: 'tool.progress', callId: 'call-2', progress: 'half' }));
    nats.nc.publish(inbox.subject, JSON.stringify({ type: 'tool.progress', callId: 'someone-else', progress: 1 }));
    nats.nc.publish(inbox.subject, JSON.stringify({ type: 'tool.progress', callId: 'call-2', progress: 3 }));
    await eventually('the one good report', async () => seen.length === 1, 5_000);
    expect(seen).toEqual([{ type: 'tool.progress', callId: 'call-2', progress: 3 }]);
    inbox.stop();
  });

  it('reports nothing where the request asked for nothing, or named a subject outside the deployment\'s progress subjects', () => {
    expect(progressReporterFor(nats.nc, names, request(undefined), silentLogger())).toBeUndefined();
    expect(progressReporterFor(nats.nc, names, request('progress-test.sessions.s-1.controls'), silentLogger())).toBeUndefined();
    expect(progressReporterFor(nats.nc, names, request('other.progress.abc'), silentLogger())).toBeUndefined();
    expect(progressReporterFor(nats.nc, names, request('progress-test.progress.abc.def'), silentLogger())).toBeUndefined();
  });
});
