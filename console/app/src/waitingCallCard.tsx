import { useState } from 'preact/hooks';
import type { WaitingCall } from '../../consoleApi.ts';
import type { Act } from './controlAction.ts';
import { isRecord, textOf } from './eventFields.ts';
import { prettyJson } from './format.ts';

interface Props {
  call: WaitingCall;
  canApprove: boolean;
  canDeny: boolean;
  busy: boolean;
  act: Act;
}

/** The workflow's exit the model chose, when that is what waits (`next_phase` with `{ to, reason }`). */
function exitOf(call: WaitingCall): { to: string; reason: string } | null {
  if (call.tool !== 'next_phase' || !isRecord(call.arguments)) return null;
  const to = textOf(call.arguments, 'to');
  return to === undefined ? null : { to, reason: textOf(call.arguments, 'reason') ?? '' };
}

/**
 * One call waiting for a person, or the move to another phase of the workflow that the model
 * chose: what it would do and why it needs approval, with Approve and Deny (an optional reason).
 */
export function WaitingCallCard({ call, canApprove, canDeny, busy, act }: Props) {
  const [reason, setReason] = useState('');
  const reasonId = `deny-reason-${call.callId}`;
  const exit = exitOf(call);
  return (
    <article class={`waiting-call${exit ? ' phase-exit' : ''}`} data-testid="waiting-call" data-call-id={call.callId}>
      <header>
        <code class="tool">{call.tool}</code>
        {exit && (
          <>
            {' '}→ phase <strong data-testid="waiting-exit-to">{exit.to}</strong>
          </>
        )}{' '}
        <span class="muted">waits for approval</span>
      </header>
      <p class="reason">{call.reason}</p>
      {exit ? (
        <blockquote class="exit-reason" aria-label="the model's reason">
          {exit.reason}
        </blockquote>
      ) : (
        <pre class="arguments" aria-label={`arguments of ${call.tool}`}>
          {prettyJson(call.arguments)}
        </pre>
      )}
      <div class="decision">
        {canApprove && (
          <button type="button" class="primary" disabled={busy} data-testid="approve-button" onClick={() => act('approve', { callIds: [call.callId] }, `approve ${call.tool}`)}>
            Approve
          </button>
        )}
        {canDeny && (
          <>
            <label for={reasonId} class="visually-hidden">
              Reason to deny {call.tool} (optional)
            </label>
            <input id={reasonId} type="text" value={reason} placeholder="reason (optional)" data-testid="deny-reason" onInput={(event) => setReason(event.currentTarget.value)} />
            <button
              type="button"
              class="danger"
              disabled={busy}
              data-testid="deny-button"
              onClick={() => act('deny', { callIds: [call.callId], ...(reason.trim() ? { reason: reason.trim() } : {}) }, `deny ${call.tool}`)}
            >
              Deny
            </button>
          </>
        )}
      </div>
    </article>
  );
}
