import { ConsoleHeader } from './consoleHeader.tsx';
import { useConsoleHealth } from './consoleHealth.ts';
import { ErrorBoundary } from './errorBoundary.tsx';
import { useOperatorName } from './operatorName.ts';
import { PoolsPage } from './poolsPage.tsx';
import { sessionsHref, useRoute } from './route.ts';
import { SessionPage } from './sessionPage.tsx';
import { SessionsPage } from './sessionsPage.tsx';
import { useSessionsFeed } from './sessionsFeed.ts';

/** The console: the header, and the page the hash names. */
export function App() {
  const route = useRoute();
  const { health, error: healthError, unauthorized } = useConsoleHealth();
  const sessions = useSessionsFeed();
  const [operator, setOperator] = useOperatorName();
  // The stream's report is newer than the health poll's, when there is one.
  const nats = sessions.nats ?? health?.nats ?? null;
  const pageKey = route.page === 'session' ? `session:${route.sessionId}` : route.page;

  return (
    <>
      <ConsoleHeader route={route} health={health} healthError={healthError} unauthorized={unauthorized} nats={nats} operator={operator} onOperatorChange={setOperator} />
      <main>
        <ErrorBoundary key={pageKey} what="This page">
          {route.page === 'sessions' && <SessionsPage feed={sessions} />}
          {route.page === 'session' && <SessionPage key={route.sessionId} sessionId={route.sessionId} health={health} operator={operator} />}
          {route.page === 'pools' && <PoolsPage />}
          {route.page === 'unknown' && (
            <p class="empty">
              Nothing here ({route.hash}). <a href={sessionsHref}>Back to the sessions</a>
            </p>
          )}
        </ErrorBoundary>
      </main>
    </>
  );
}
