import { useEffect, useState } from 'preact/hooks';
import { SessionsStreamMessage, type NatsLinkState, type SessionList } from '../../consoleApi.ts';
import { readSessions, sessionsStreamPath } from './api.ts';
import { describeFailure } from './errors.ts';
import { useEventStream, type StreamState } from './eventStream.ts';

/** The sessions list as the page shows it. */
export interface SessionsFeed {
  /** Null until the first answer. */
  list: SessionList | null;
  error: string | null;
  /** The NATS link as the stream last reported it; null before it has. */
  nats: NatsLinkState | null;
  stream: StreamState;
}

const kinds = ['sessions', 'changes', 'nats'] as const;

/**
 * The sessions list, read once and then kept current by `/api/sessions/stream` (the whole list,
 * then the rows that change). Held by the app for as long as the page is open: the header's NATS state
 * comes from the same stream.
 */
export function useSessionsFeed(): SessionsFeed {
  const [list, setList] = useState<SessionList | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [nats, setNats] = useState<NatsLinkState | null>(null);
  useEffect(() => {
    let live = true;
    readSessions().then(
      // The stream may have answered first; its list is the newer one.
      (first) => live && setList((current) => current ?? first),
      (failure: unknown) => live && setError(describeFailure(failure)),
    );
    return () => {
      live = false;
    };
  }, []);
  const stream = useEventStream(sessionsStreamPath, SessionsStreamMessage, kinds, (message) => {
    if (message.kind === 'sessions') {
      setList(message.list);
      setError(null);
    } else if (message.kind === 'changes') {
      // Only the rows that changed come after the first list; without a list yet, wait for it.
      setList((current) => (current ? applyChanges(current, message) : current));
    } else {
      setNats(message.state);
    }
  });
  return { list, error, nats, stream };
}

/** The list with `changes` applied: changed rows replaced or added, removed ones dropped, newest first. */
export function applyChanges(list: SessionList, changes: { upserted: SessionList['sessions']; removed: string[]; unreadable: SessionList['unreadable'] }): SessionList {
  const rows = new Map(list.sessions.map((row) => [row.sessionId, row]));
  for (const id of changes.removed) rows.delete(id);
  for (const row of changes.upserted) rows.set(row.sessionId, row);
  return { sessions: [...rows.values()].sort((a, b) => b.updatedAt.localeCompare(a.updatedAt)), unreadable: changes.unreadable };
}
