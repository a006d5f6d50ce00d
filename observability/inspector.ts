import { createWebSocketInspector, type StatelyInspectionEvent } from '@statelyai/inspect';
import { createInspectorServer } from '@statelyai/inspect/server';
import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';

/** The live statecharts of one process, relayed to the Stately inspector. */
export interface StatechartInspector {
  /** Pass as `inspect` to orchestrators and specialist pools: every session, tool call and breaker is seen. */
  readonly inspect: (event: InspectionEvent) => void;
  /** Open this in a browser: a page embedding the Stately inspector, fed from this process. */
  readonly url: string;
  stop(): void;
}

/**
 * Serves the `@statelyai/inspect` relay on `port` (a page on `http://localhost:<port>` that embeds
 * https://stately.ai/inspect, and a WebSocket the process's actors report to). What people and
 * models wrote (tasks, messages, tool arguments and results) is left out of what it sends unless
 * `captureContent` is set: it may hold personal data. States, events, counts and ids are kept.
 * The relay listens on every interface: run it where only operators can reach the port.
 */
export function startInspector(options: { port: number; logger: Logger; captureContent?: boolean }): StatechartInspector {
  const server = createInspectorServer({ port: options.port, autoOpen: false });
  const inspector = createWebSocketInspector({
    url: `ws://127.0.0.1:${options.port}`,
    // Runs in the library's own timer, where a throw would end the process: it must not throw.
    ...(options.captureContent ? {} : { serialize: (event: StatelyInspectionEvent) => hideContent(event) as StatelyInspectionEvent }),
  });
  const url = `http://localhost:${options.port}`;
  options.logger.info({ url }, `statechart inspector: open ${url} in a browser`);
  return {
    inspect: (event) => {
      try {
        inspector.inspect.next?.(event);
      } catch (error) {
        // Watching must never break what is watched.
        options.logger.warn({ err: error }, 'the statechart inspector failed on an event');
      }
    },
    url,
    stop() {
      inspector.stop();
      server.stop();
    },
  };
}

// Fields that carry what people and models wrote; everything else (states, ids, counts, usage) is kept.
const contentKeys: ReadonlySet<string> = new Set([
  'conversation', 'messages', 'task', 'instructions', 'content', 'refusal', 'arguments', 'rawArguments', 'result', 'answer',
  'instruction', 'pendingInstructions', 'manualCalls', 'compensation', 'output', 'summary', 'text', 'partialAnswer', 'detail',
]);
const hidden = '(hidden: set TROUPE_CAPTURE_CONTENT=1 to see it)';

/** A copy of `value` with content fields replaced; never throws, never descends past a sane depth. */
export function hideContent(value: unknown, depth = 0): unknown {
  if (depth > 12 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => hideContent(item, depth + 1));
  const copy: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    if (contentKeys.has(key) && inner !== null && inner !== undefined && key !== 'definition') {
      copy[key] = Array.isArray(inner) ? `(${inner.length} items ${hidden})` : hidden;
    } else copy[key] = hideContent(inner, depth + 1);
  }
  return copy;
}

