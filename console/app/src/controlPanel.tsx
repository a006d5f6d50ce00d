import type { SessionDetail } from '../../consoleApi.ts';
import { CancelControl } from './cancelControl.tsx';
import { useControlAction } from './controlAction.ts';
import { ActionsByYou, ControlResultLine } from './controlResultLine.tsx';
import { ManualCallControl } from './manualCallControl.tsx';
import { useState } from 'preact/hooks';
import { RollbackControl, RollbackResult, type RollbackDone } from './rollbackControl.tsx';
import { TextControl } from './textControl.tsx';
import { WaitingCallCard } from './waitingCallCard.tsx';

/** The controls that are a button (and Cancel's confirmation), in one row. */
const buttonControls = ['interrupt', 'resume', 'takeover', 'cancel'] as const;

interface Props {
  sessionId: string;
  detail: SessionDetail;
  readOnly: boolean;
  operator: string;
}

/**
 * What the operator can do to the session now: only the controls `detail.controls` lists (the
 * server refuses the others), none on a read-only console. Every outcome goes to the status line
 * and the "actions by you" list.
 */
export function ControlPanel({ sessionId, detail, readOnly, operator }: Props) {
  const { act, busy, latest, log } = useControlAction(sessionId, operator);
  const [rolledBack, setRolledBack] = useState<RollbackDone | null>(null);
  const offers = new Set(detail.controls);
  const isBusy = busy !== null;
  const ok = (response: unknown) => response !== null;

  if (readOnly) {
    return (
      <section class="controls" aria-labelledby="controls-title">
        <h2 id="controls-title">Controls</h2>
        <p class="muted" data-testid="read-only-note">
          This console is read-only: controls are off.
        </p>
      </section>
    );
  }

  return (
    <section class="controls" aria-labelledby="controls-title">
      <h2 id="controls-title">Controls</h2>
      {(offers.has('approve') || offers.has('deny')) &&
        detail.waiting.map((call) => (
          <WaitingCallCard key={call.callId} call={call} canApprove={offers.has('approve')} canDeny={offers.has('deny')} busy={isBusy} act={act} />
        ))}
      {detail.waiting.length === 0 && (offers.has('approve') || offers.has('deny')) && (
        <div class="buttons">
          {offers.has('approve') && (
            <button type="button" class="primary" disabled={isBusy} onClick={() => act('approve', {}, 'approve the waiting calls')}>
              Approve the waiting calls
            </button>
          )}
          {offers.has('deny') && (
            <button type="button" class="danger" disabled={isBusy} onClick={() => act('deny', {}, 'deny the waiting calls')}>
              Deny the waiting calls
            </button>
          )}
        </div>
      )}
      <ControlResultLine entry={latest} />
      <div class="buttons" hidden={!buttonControls.some((control) => offers.has(control))}>
        {offers.has('interrupt') && (
          <button type="button" disabled={isBusy} data-testid="interrupt-button" onClick={() => act('interrupt', {}, 'interrupt')}>
            Interrupt
          </button>
        )}
        {offers.has('resume') && (
          <button type="button" class="primary" disabled={isBusy} data-testid="resume-button" onClick={() => act('resume', {}, 'resume')}>
            Resume
          </button>
        )}
        {offers.has('takeover') && (
          <button type="button" disabled={isBusy} data-testid="takeover-button" onClick={() => act('takeover', {}, 'take over')}>
            Take over
          </button>
        )}
        {offers.has('cancel') && <CancelControl busy={isBusy} act={act} />}
      </div>
      {offers.has('answer') && (
        <TextControl label="Answer the escalation" action="Send the answer" testId="answer" busy={isBusy} onSubmit={async (answer) => ok(await act('answer', { answer }, 'answer'))} />
      )}
      {offers.has('redirect') && (
        <TextControl
          label="Redirect with a new instruction"
          action="Redirect"
          testId="redirect"
          busy={isBusy}
          onSubmit={async (instruction) => ok(await act('redirect', { instruction }, `redirect: ${instruction.trim().slice(0, 60)}`))}
        />
      )}
      {offers.has('call') && <ManualCallControl busy={isBusy} act={act} />}
      {offers.has('handback') && (
        <TextControl
          label="Hand back, with an instruction"
          action="Hand back"
          testId="handback"
          optional
          busy={isBusy}
          onSubmit={async (instruction) => ok(await act('handback', instruction.trim() ? { instruction } : {}, 'hand back'))}
        />
      )}
      {offers.has('rollback') && <RollbackControl currentTurn={detail.summary.turn} busy={isBusy} act={act} onRolledBack={setRolledBack} />}
      {rolledBack && <RollbackResult done={rolledBack} />}
      {offers.size === 0 && <p class="muted">No control applies now.</p>}
      <ActionsByYou log={log} />
    </section>
  );
}
