import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { ToolContext } from '../../tools/defineTool.ts';
import type { ToolProgress, ToolRequest } from '../../transport/messages.ts';
import type { WireNames } from '../../transport/subjects.ts';
import { encodeWireMessage } from '../../transport/wireMessage.ts';

// Reports closer together than this are folded into the next: a tool ticking per item must not flood the caller.
const minGapMs = 200;

/**
 * What a handler's `reportProgress` does for one call: publishes a {@link ToolProgress} to the
 * subject the request named, at most every {@link minGapMs} (a report in between waits, replaced by
 * any later one). Undefined when the caller asked for no progress, or named a subject outside the
 * deployment's progress subjects: a worker publishes nowhere a request merely tells it to.
 */
export function progressReporterFor(nc: NatsConnection, names: WireNames, request: ToolRequest, logger: Logger): ToolContext['reportProgress'] | undefined {
  const to = request.progressTo;
  if (to === undefined) return undefined;
  const prefix = names.subjects.toolProgress('');
  if (!to.startsWith(prefix) || !/^[A-Za-z0-9_-]+$/.test(to.slice(prefix.length))) {
    logger.warn({ progressTo: to }, 'the request names a progress subject outside the deployment\'s; its progress is not reported');
    return undefined;
  }
  let lastSentAt = 0;
  let waiting: ToolProgress | undefined;
  let timer: NodeJS.Timeout | undefined;
  const send = (report: ToolProgress) => {
    lastSentAt = Date.now();
    try {
      nc.publish(to, encodeWireMessage(report));
    } catch (error) {
      logger.warn({ err: error }, 'could not report the call\'s progress');
    }
  };
  return ({ progress, total, message }) => {
    if (!Number.isFinite(progress)) return;
    const report: ToolProgress = {
      type: 'tool.progress', callId: request.callId, progress,
      ...(total !== undefined && Number.isFinite(total) && total > 0 ? { total } : {}),
      ...(message !== undefined ? { message: message.slice(0, 1_000) } : {}),
    };
    const wait = lastSentAt + minGapMs - Date.now();
    if (wait <= 0 && !timer) return send(report);
    waiting = report;
    timer ??= setTimeout(() => {
      timer = undefined;
      if (waiting) send(waiting);
      waiting = undefined;
    }, Math.max(0, wait));
    timer.unref();
  };
}
