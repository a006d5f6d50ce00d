import { useEffect, useRef, useState } from 'preact/hooks';
import type * as z from 'zod';
import { issueLines, streamRefusal, streamUrl } from './api.ts';

/** Where a stream's connection is: `lost` while the browser (or the page) retries. */
export type StreamLink = 'connecting' | 'open' | 'lost';

/** What the page shows about a stream's connection. */
export interface StreamState {
  link: StreamLink;
  /** True for a few seconds after a lost connection came back, so the page can say so. */
  restored: boolean;
  /** The latest message that did not match the contract, described; null when all did. */
  mismatch: string | null;
  /** Why the console refused the stream (its `ApiError` message), while it does; null otherwise. */
  refused: string | null;
}

const retryAfterCloseMs = 3_000;
const restoredShownMs = 4_000;

/**
 * Follows one of the console's Server-Sent Events streams while the component is mounted (a null
 * path follows nothing). Each message is parsed with `schema` and handed to `onMessage`; one
 * that does not match is reported in `mismatch`, never passed on. The console names each event
 * after its kind (`event: detail`), so a listener is added per kind, plus the unnamed `message`.
 *
 * EventSource reconnects on its own after a dropped connection; when the server refused instead
 * (the connection is closed for good), this finds out why and opens a new one after a pause. After a reconnect the
 * console sends its current state again, so `onMessage` must tolerate repeats.
 */
export function useEventStream<T>(path: string | null, schema: z.ZodType<T>, kinds: readonly string[], onMessage: (message: T) => void): StreamState {
  const [state, setState] = useState<StreamState>({ link: 'connecting', restored: false, mismatch: null, refused: null });
  const handler = useRef(onMessage);
  handler.current = onMessage;

  useEffect(() => {
    if (path === null) return;
    let source: EventSource | null = null;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let restoredTimer: ReturnType<typeof setTimeout> | undefined;
    let wasLost = false;
    let stopped = false;
    const receive = (event: MessageEvent<string>) => {
      let json: unknown;
      try {
        json = JSON.parse(event.data);
      } catch {
        setState((s) => ({ ...s, mismatch: `a "${event.type}" message of the stream is not JSON` }));
        return;
      }
      const parsed = schema.safeParse(json);
      if (parsed.success) handler.current(parsed.data);
      else setState((s) => ({ ...s, mismatch: `a "${event.type}" message of the stream does not match the console's API contract: ${issueLines(parsed.error).join('; ')}` }));
    };
    const open = () => {
      const current = new EventSource(streamUrl(path));
      source = current;
      current.onopen = () => {
        const restored = wasLost;
        wasLost = false;
        setState((s) => ({ ...s, link: 'open', restored, refused: null }));
        if (restored) {
          clearTimeout(restoredTimer);
          restoredTimer = setTimeout(() => setState((s) => ({ ...s, restored: false })), restoredShownMs);
        }
      };
      current.onerror = () => {
        wasLost = true;
        setState((s) => ({ ...s, link: 'lost', restored: false }));
        // CLOSED: the console answered, but not with a stream (401, 404, …); EventSource gives up.
        if (current.readyState === EventSource.CLOSED) {
          current.close();
          void streamRefusal(path).then((refused) => {
            if (!stopped) setState((s) => ({ ...s, refused }));
          });
          retry = setTimeout(open, retryAfterCloseMs);
        }
      };
      for (const kind of new Set([...kinds, 'message'])) current.addEventListener(kind, receive as EventListener);
    };
    open();
    return () => {
      stopped = true;
      clearTimeout(retry);
      clearTimeout(restoredTimer);
      source?.close();
    };
    // The schema and kinds are constants of each caller.
  }, [path]);

  return state;
}
