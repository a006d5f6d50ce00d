import { useState } from 'preact/hooks';
import type { Act } from './controlAction.ts';

/** Cancel, confirmed on the page (not `window.confirm`, which blocks the tab and cannot be tested): the session stops for good. */
export function CancelControl({ busy, act }: { busy: boolean; act: Act }) {
  const [confirming, setConfirming] = useState(false);
  const [reason, setReason] = useState('');
  if (!confirming) {
    return (
      <button type="button" class="danger" disabled={busy} data-testid="cancel-button" onClick={() => setConfirming(true)}>
        Cancel session…
      </button>
    );
  }
  const confirm = async () => {
    const response = await act('cancel', reason.trim() ? { reason: reason.trim() } : {}, 'cancel');
    if (response) {
      setConfirming(false);
      setReason('');
    }
  };
  return (
    <div class="confirm" role="group" aria-labelledby="cancel-question" data-testid="cancel-confirmation">
      <p id="cancel-question">
        <strong>Cancel this session?</strong> It stops for good; calls in flight are abandoned.
      </p>
      <label>
        Reason <span class="muted">(optional)</span>
        <input type="text" value={reason} data-testid="cancel-reason" onInput={(event) => setReason(event.currentTarget.value)} />
      </label>
      <div class="buttons">
        <button type="button" class="danger" disabled={busy} data-testid="confirm-cancel-button" onClick={confirm}>
          Cancel the session
        </button>
        <button type="button" disabled={busy} data-testid="keep-running-button" onClick={() => setConfirming(false)}>
          Keep it running
        </button>
      </div>
    </div>
  );
}
