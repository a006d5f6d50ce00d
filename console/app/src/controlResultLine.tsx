import type { ControlLogEntry } from './controlAction.ts';
import { clock } from './format.ts';

const outcomeText: Record<ControlLogEntry['outcome'], string> = {
  applied: 'applied',
  refused: 'refused',
  recorded: "recorded: the session's next host applies it",
  failed: 'failed',
};

/** The latest action's outcome (from this page view), announced to screen readers as it changes. */
export function ControlResultLine({ entry }: { entry: ControlLogEntry | null }) {
  if (!entry) return null;
  return (
    <p class={`control-result ${entry.outcome}`} role="status" data-testid="control-result" data-outcome={entry.outcome}>
      <strong>{entry.what}</strong>: {outcomeText[entry.outcome]}
      {entry.reason !== null && entry.reason !== '' && <> ({entry.reason})</>}
    </p>
  );
}

/** Every action taken from this page on the session, with who did it. */
export function ActionsByYou({ log }: { log: readonly ControlLogEntry[] }) {
  if (log.length === 0) return null;
  return (
    <section class="actions-by-you" aria-labelledby="actions-title">
      <h3 id="actions-title">Actions by you</h3>
      <ol>
        {log.map((entry) => (
          <li key={`${entry.at}:${entry.control}`} data-testid="action-log-entry" class={entry.outcome}>
            <time>{clock(entry.at)}</time> <strong>{entry.what}</strong> by {entry.by}: {entry.outcome}
            {entry.reason !== null && entry.reason !== '' && <span class="muted"> ({entry.reason})</span>}
          </li>
        ))}
      </ol>
    </section>
  );
}
