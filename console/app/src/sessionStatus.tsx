import type { SessionSummary } from '../../consoleApi.ts';

/**
 * A session's status as a coloured tag: where its checkpoint is, and how it ended once it has.
 * `repeat` marks a second showing on the same page, which carries no test ids (one per page).
 */
export function SessionStatus({ summary, repeat = false }: { summary: Pick<SessionSummary, 'status' | 'outcome' | 'waitingForApproval'>; repeat?: boolean }) {
  return (
    <span class="status-cell">
      <span class={`status ${summary.status} ${summary.outcome ?? ''}`} data-testid={repeat ? undefined : 'session-status'}>
        {summary.status === 'ended' && summary.outcome !== null ? summary.outcome : summary.status}
      </span>
      {summary.waitingForApproval > 0 && (
        <span class="badge approval" data-testid={repeat ? undefined : 'approval-badge'} title="calls waiting for a person's decision">
          waiting for approval{summary.waitingForApproval > 1 ? ` (${summary.waitingForApproval})` : ''}
        </span>
      )}
    </span>
  );
}
