import { useMemo } from 'preact/hooks';
import type { ConsoleHealth } from '../../consoleApi.ts';
import { ControlPanel } from './controlPanel.tsx';
import { ErrorBoundary } from './errorBoundary.tsx';
import { sessionsHref } from './route.ts';
import { useSessionFeed } from './sessionFeed.ts';
import { SessionStatus } from './sessionStatus.tsx';
import { SessionSummaryPanel } from './sessionSummaryPanel.tsx';
import { StatechartView } from './statechartView.tsx';
import { StreamBanner } from './streamBanner.tsx';
import { TimelineView } from './timelineView.tsx';
import { WorkflowStatechart } from './workflowStatechart.tsx';

interface Props {
  sessionId: string;
  health: ConsoleHealth | null;
  operator: string;
}

/** `#/sessions/<id>`: one session live: its statechart (and its agent's workflow, when it has one), its timeline, its summary and the controls that apply. */
export function SessionPage({ sessionId, health, operator }: Props) {
  const feed = useSessionFeed(sessionId);
  const path = useMemo(() => feed.events.map((e) => e.stateId).filter((id): id is string => id !== null), [feed.events]);

  if (feed.missing) {
    return (
      <section class="not-found" data-testid="session-not-found">
        <h1>No session {sessionId}</h1>
        <p>
          The console has no checkpoint for it: the id may be mistyped, or the session was removed. <a href={sessionsHref}>Back to the sessions</a>
        </p>
      </section>
    );
  }

  const { detail } = feed;
  return (
    <section class="session-page" data-session-id={sessionId}>
      <div class="page-title">
        <a href={sessionsHref} class="back">
          ← Sessions
        </a>
        <h1>
          Session <code>{sessionId}</code>
        </h1>
        {detail && <SessionStatus summary={detail.summary} repeat />}
        {detail && <span class="muted">{detail.summary.agent}</span>}
      </div>
      <StreamBanner stream={feed.stream} />
      {feed.error !== null && (
        <p class="banner error" role="alert" data-testid="session-error">
          {feed.error}
        </p>
      )}
      {feed.notices.map((notice) => (
        <p key={notice.id} class={`banner ${notice.level}`} role={notice.level === 'error' ? 'alert' : 'status'} data-testid="notice" data-level={notice.level}>
          {notice.message}
          <button type="button" class="dismiss" aria-label="Dismiss" onClick={() => feed.dismissNotice(notice.id)}>
            ×
          </button>
        </p>
      ))}
      {!detail && feed.error === null && <p class="empty">Loading the session…</p>}
      {detail && (
        <>
          <ErrorBoundary what="The statechart">
            <StatechartView activeStateIds={detail.activeStateIds} path={path} />
          </ErrorBoundary>
          {detail.workflow && (
            <ErrorBoundary what="The workflow">
              <WorkflowStatechart workflow={detail.workflow} agent={detail.summary.agent} />
            </ErrorBoundary>
          )}
          <div class="session-columns">
            <div class="main-column">
              <ErrorBoundary what="The timeline">
                <TimelineView events={feed.events} />
              </ErrorBoundary>
            </div>
            <aside class="side-column">
              <ErrorBoundary what="The controls">
                <ControlPanel sessionId={sessionId} detail={detail} readOnly={health?.readOnly ?? false} operator={operator} />
              </ErrorBoundary>
              <ErrorBoundary what="The summary">
                <SessionSummaryPanel detail={detail} />
              </ErrorBoundary>
            </aside>
          </div>
        </>
      )}
    </section>
  );
}
