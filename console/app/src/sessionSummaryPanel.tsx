import type { SessionDetail } from '../../consoleApi.ts';
import { age, count, fullDate, usd } from './format.ts';
import { useNow } from './now.ts';
import { SessionStatus } from './sessionStatus.tsx';

/** What the session's checkpoint says: where it is, what it has used, what it was asked, how it ended. */
export function SessionSummaryPanel({ detail }: { detail: SessionDetail }) {
  const { summary } = detail;
  const now = useNow();
  const ended = summary.status === 'ended';
  return (
    <section class="summary" aria-labelledby="summary-title" data-testid="session-summary">
      <h2 id="summary-title" class="visually-hidden">
        Summary
      </h2>
      <dl>
        <dt>Status</dt>
        <dd>
          <SessionStatus summary={summary} />
        </dd>
        <dt>State</dt>
        <dd>
          <code class="state-path" data-testid="session-state">
            {summary.state}
          </code>
        </dd>
        {detail.workflow && (
          <>
            <dt>Phase</dt>
            <dd data-testid="session-phase">{detail.workflow.active.join(' › ') || '—'}</dd>
          </>
        )}
        {summary.outcome !== null && (
          <>
            <dt>Outcome</dt>
            <dd data-testid="session-outcome">{summary.outcome}</dd>
          </>
        )}
        <dt>Agent</dt>
        <dd>{summary.agent}</dd>
        <dt>Tenant</dt>
        <dd>{summary.tenant ?? <span class="muted">—</span>}</dd>
        <dt>Turn</dt>
        <dd>{summary.turn}</dd>
        <dt>Tool calls</dt>
        <dd>{summary.toolCalls}</dd>
        <dt>Tokens</dt>
        <dd>
          {count(summary.inputTokens)} in / {count(summary.outputTokens)} out
        </dd>
        <dt>Cost</dt>
        <dd data-testid="session-cost">{usd(summary.costUsd)}</dd>
        <dt>Started</dt>
        <dd title={fullDate(summary.startedAt)}>{age(now - summary.startedAt)} ago</dd>
        <dt>Updated</dt>
        <dd>{fullDate(summary.updatedAt)}</dd>
        {detail.takenOverBy !== null && (
          <>
            <dt>Taken over by</dt>
            <dd data-testid="taken-over-by">{detail.takenOverBy}</dd>
          </>
        )}
        {detail.traceUrl !== null && (
          <>
            <dt>Trace</dt>
            <dd>
              <a href={detail.traceUrl} target="_blank" rel="noreferrer" data-testid="trace-link">
                trace in Jaeger
              </a>
            </dd>
          </>
        )}
      </dl>
      <h3>Task</h3>
      <p class="task-text" data-testid="session-task">
        {summary.task}
      </p>
      {ended && (detail.output !== null || detail.stopReason !== null) && (
        <>
          <h3>{detail.output !== null ? 'Output' : 'Why it stopped'}</h3>
          {detail.stopReason !== null && <p class="muted">stop reason: {detail.stopReason}</p>}
          {detail.output !== null && (
            <div class="model-text" data-testid="session-output">
              {detail.output}
            </div>
          )}
        </>
      )}
    </section>
  );
}
