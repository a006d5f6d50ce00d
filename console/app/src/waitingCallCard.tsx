import { useState } from 'preact/hooks';
import type { WaitingCall } from '../../consoleApi.ts';
import type { Act } from './controlAction.ts';
import { prettyJson } from './format.ts';

interface Props {
  call: WaitingCall;
  canApprove: boolean;
  canDeny: boolean;
  busy: boolean;
  act: Act;
}

/** One call waiting for a person: what it would do and why it needs approval, with Approve and Deny (an optional reason). */
export function WaitingCallCard({ call, canApprove, canDeny, busy, act }: Props) {
  const [reason, setReason] = useState('');
  const reasonId = `deny-reason-${call.callId}`;
  return (
    <article class="waiting-call" data-testid="waiting-call" data-call-id={call.callId}>
      <header>
        <code class="tool">{call.tool}</code> <span class="muted">waits for approval</span>
      </header>
      <p class="reason">{call.reason}</p>
      <pre class="arguments" aria-label={`arguments of ${call.tool}`}>
        {prettyJson(call.arguments)}
      </pre>
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
