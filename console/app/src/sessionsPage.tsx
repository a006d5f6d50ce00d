import { useState } from 'preact/hooks';
import type { SessionSummary } from '../../consoleApi.ts';
import { age, count, usd } from './format.ts';
import { useNow } from './now.ts';
import { sessionHref } from './route.ts';
import type { SessionsFeed } from './sessionsFeed.ts';
import { SessionStatus } from './sessionStatus.tsx';
import { StreamBanner } from './streamBanner.tsx';

const statuses = ['running', 'parked', 'ended'] as const;

/** `#/`: every session the console can read, live, newest first, filtered by status and agent. */
export function SessionsPage({ feed }: { feed: SessionsFeed }) {
  const [status, setStatus] = useState('');
  const [agent, setAgent] = useState('');
  const now = useNow();
  const sessions = feed.list?.sessions ?? [];
  const agents = [...new Set(sessions.map((session) => session.agent))].sort();
  const shown = sessions
    .filter((session) => (status === '' || session.status === status) && (agent === '' || session.agent === agent))
    .sort((a, b) => b.startedAt - a.startedAt);

  return (
    <section class="sessions-page">
      <div class="page-title">
        <h1>Sessions</h1>
        {feed.list && (
          <span class="muted">
            {shown.length === sessions.length ? `${sessions.length}` : `${shown.length} of ${sessions.length}`} session{sessions.length === 1 ? '' : 's'}
          </span>
        )}
        <div class="filters">
          <label>
            Status
            <select value={status} data-testid="status-filter" onChange={(event) => setStatus(event.currentTarget.value)}>
              <option value="">all</option>
              {statuses.map((s) => (
                <option value={s}>{s}</option>
              ))}
            </select>
          </label>
          <label>
            Agent
            <select value={agent} data-testid="agent-filter" onChange={(event) => setAgent(event.currentTarget.value)}>
              <option value="">all</option>
              {agents.map((a) => (
                <option value={a}>{a}</option>
              ))}
            </select>
          </label>
        </div>
      </div>
      <StreamBanner stream={feed.stream} />
      {feed.error !== null && (
        <p class="banner error" role="alert">
          {feed.error}
        </p>
      )}
      {feed.list === null ? (
        feed.error === null && <p class="empty">Loading sessions…</p>
      ) : sessions.length === 0 ? (
        <p class="empty">No sessions yet.</p>
      ) : (
        <div class="table-scroll">
          <table class="sessions">
            <thead>
              <tr>
                <th scope="col">Session</th>
                <th scope="col">Agent</th>
                <th scope="col">Tenant</th>
                <th scope="col">Status</th>
                <th scope="col">State</th>
                <th scope="col" class="number">Turn</th>
                <th scope="col" class="number">Tool calls</th>
                <th scope="col" class="number">Tokens in / out</th>
                <th scope="col" class="number">Cost</th>
                <th scope="col" class="number">Age</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((session) => (
                <SessionRow key={session.sessionId} session={session} now={now} />
              ))}
            </tbody>
          </table>
          {shown.length === 0 && <p class="empty">No session matches these filters.</p>}
        </div>
      )}
      {feed.list && feed.list.unreadable.length > 0 && (
        <section class="unreadable">
          <h2>Checkpoints that could not be read</h2>
          <ul>
            {feed.list.unreadable.map((entry) => (
              <li key={entry.sessionId} data-testid="unreadable-checkpoint">
                <code>{entry.sessionId}</code>: {entry.error}
              </li>
            ))}
          </ul>
        </section>
      )}
    </section>
  );
}

function SessionRow({ session, now }: { session: SessionSummary; now: number }) {
  const href = sessionHref(session.sessionId);
  const open = () => {
    location.hash = href;
  };
  return (
    <tr
      class="link-row"
      tabIndex={0}
      data-testid="session-row"
      data-session-id={session.sessionId}
      aria-label={`session ${session.sessionId}, ${session.agent}, ${session.status}`}
      onClick={open}
      onKeyDown={(event) => {
        if (event.key === 'Enter') open();
      }}
    >
      <td>
        {/* The row is the keyboard stop; the link is for middle-click and copying the address. */}
        <a href={href} tabIndex={-1} class="session-id">
          {session.sessionId}
        </a>
      </td>
      <td>{session.agent}</td>
      <td>{session.tenant ?? <span class="muted">—</span>}</td>
      <td>
        <SessionStatus summary={session} />
      </td>
      <td>
        <code class="state-path">{session.state}</code>
      </td>
      <td class="number">{session.turn}</td>
      <td class="number">{session.toolCalls}</td>
      <td class="number">
        {count(session.inputTokens)} / {count(session.outputTokens)}
      </td>
      <td class="number">{usd(session.costUsd)}</td>
      <td class="number" title={new Date(session.startedAt).toLocaleString()}>
        {age(now - session.startedAt)}
      </td>
    </tr>
  );
}
