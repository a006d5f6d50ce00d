import { useEffect, useRef, useState } from 'preact/hooks';
import { SessionStreamMessage, type SessionDetail } from '../../consoleApi.ts';
import { readSession, sessionStreamPath } from './api.ts';
import { ConsoleRefusal, describeFailure } from './errors.ts';
import { useEventStream, type StreamState } from './eventStream.ts';

/** One `event` message of a session's stream: a session event (as a record: the page reads its fields defensively) and the state it was in. */
export interface StreamedEvent {
  event: Record<string, unknown>;
  stateId: string | null;
}

/** A `notice` message of the stream, shown until dismissed. */
export interface StreamNotice {
  id: number;
  level: 'info' | 'warning' | 'error';
  message: string;
}

/** One session as the page shows it. */
export interface SessionFeed {
  detail: SessionDetail | null;
  /** The console answered 404: there is no such session. */
  missing: boolean;
  error: string | null;
  /** In `seq` order, each once, however often the stream replays them. */
  events: StreamedEvent[];
  notices: StreamNotice[];
  dismissNotice: (id: number) => void;
  stream: StreamState;
}

const kinds = ['detail', 'event', 'notice'] as const;
const flushMs = 40;
const noticesKept = 5;

/**
 * One session: its detail read once and then from `/api/sessions/:id/stream`, with its events
 * and the stream's notices. Events are keyed by `seq`, as the stream replays them from the first
 * after every reconnect; they are applied in batches, so a replay of a long session renders once
 * rather than once per event. Mount it per session (key the component by id): nothing is reset
 * when the id changes.
 */
export function useSessionFeed(sessionId: string): SessionFeed {
  const [detail, setDetail] = useState<SessionDetail | null>(null);
  const [missing, setMissing] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [events, setEvents] = useState<StreamedEvent[]>([]);
  const [notices, setNotices] = useState<StreamNotice[]>([]);
  const known = useRef(new Map<string, StreamedEvent>());
  const flush = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const noticeIds = useRef(0);

  useEffect(() => {
    let live = true;
    readSession(sessionId).then(
      (first) => live && setDetail((current) => current ?? first),
      (failure: unknown) => {
        if (!live) return;
        if (failure instanceof ConsoleRefusal && failure.status === 404) setMissing(true);
        else setError(describeFailure(failure));
      },
    );
    return () => {
      live = false;
      clearTimeout(flush.current);
    };
  }, [sessionId]);

  const stream = useEventStream(missing ? null : sessionStreamPath(sessionId), SessionStreamMessage, kinds, (message) => {
    if (message.kind === 'detail') {
      setDetail(message.detail);
      setError(null);
    } else if (message.kind === 'event') {
      const seq = message.event.seq;
      known.current.set(typeof seq === 'number' ? `seq:${seq}` : `raw:${JSON.stringify(message.event)}`, { event: message.event, stateId: message.stateId });
      flush.current ??= setTimeout(() => {
        flush.current = undefined;
        setEvents([...known.current.values()].sort(bySeq));
      }, flushMs);
    } else {
      setNotices((current) => {
        if (current.some((notice) => notice.message === message.message && notice.level === message.level)) return current;
        return [...current, { id: ++noticeIds.current, level: message.level, message: message.message }].slice(-noticesKept);
      });
    }
  });

  const dismissNotice = (id: number) => setNotices((current) => current.filter((notice) => notice.id !== id));
  return { detail, missing, error, events, notices, dismissNotice, stream };
}

// Events without a seq (a server that sends none) keep their arrival order after the numbered ones.
function bySeq(a: StreamedEvent, b: StreamedEvent): number {
  const x = typeof a.event.seq === 'number' ? a.event.seq : Number.MAX_SAFE_INTEGER;
  const y = typeof b.event.seq === 'number' ? b.event.seq : Number.MAX_SAFE_INTEGER;
  return x - y;
}
