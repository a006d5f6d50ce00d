import { useState } from 'preact/hooks';
import type { ControlResponse } from '../../consoleApi.ts';
import type { Act } from './controlAction.ts';

type Plan = NonNullable<ControlResponse['plan']>;

const actionText: Record<Plan[number]['action'], string> = { undo: 'undo', cannot_undo: 'cannot be undone', nothing_to_undo: 'nothing to undo' };

/**
 * Roll back to the end of turn N in two steps: the plan first (a dry run: which calls would be
 * undone, which cannot be), then Confirm carries it out and shows what it did.
 */
export function RollbackControl({ currentTurn, busy, act, onRolledBack }: { currentTurn: number; busy: boolean; act: Act; onRolledBack: (done: RollbackDone | null) => void }) {
  const [toTurn, setToTurn] = useState(String(Math.max(0, currentTurn - 1)));
  const [plan, setPlan] = useState<{ toTurn: number; steps: Plan } | null>(null);
  const turn = Number(toTurn);
  const valid = toTurn.trim() !== '' && Number.isInteger(turn) && turn >= 0;

  const preview = async (event: Event) => {
    event.preventDefault();
    onRolledBack(null);
    const response = await act('rollback', { toTurn: turn, dryRun: true }, `plan a rollback to turn ${turn}`);
    setPlan(response && response.accepted ? { toTurn: turn, steps: response.plan ?? [] } : null);
  };
  const confirm = async () => {
    if (!plan) return;
    const response = await act('rollback', { toTurn: plan.toTurn, dryRun: false }, `roll back to turn ${plan.toTurn}`);
    if (response) {
      onRolledBack(response.accepted ? { toTurn: plan.toTurn, steps: response.plan ?? [] } : null);
      setPlan(null);
    }
  };

  return (
    <div class="control rollback">
      <form class="inline-form" onSubmit={preview}>
        <label>
          Roll back to the end of turn
          <input type="number" min={0} max={currentTurn} step={1} value={toTurn} data-testid="rollback-turn" onInput={(event) => { setToTurn(event.currentTarget.value); setPlan(null); }} />
        </label>
        <button type="submit" disabled={busy || !valid} data-testid="rollback-plan-button">
          Show the plan
        </button>
      </form>
      {plan && (
        <div class="plan" data-testid="rollback-plan">
          <PlanTable steps={plan.steps} caption={`To roll back to turn ${plan.toTurn}:`} />
          <div class="buttons">
            <button type="button" class="danger" disabled={busy} data-testid="rollback-confirm-button" onClick={confirm}>
              Confirm the rollback
            </button>
            <button type="button" disabled={busy} onClick={() => setPlan(null)}>
              Never mind
            </button>
          </div>
        </div>
      )}
    </div>
  );
}

/** What a rollback did. Kept by the panel: the rollback control itself goes while the session rolls back. */
export type RollbackDone = { toTurn: number; steps: Plan };

export function RollbackResult({ done }: { done: RollbackDone }) {
  return (
    <div class="plan" data-testid="rollback-result">
      <PlanTable steps={done.steps} caption={`Rolled back to turn ${done.toTurn}:`} />
    </div>
  );
}

function PlanTable({ steps, caption }: { steps: Plan; caption: string }) {
  if (steps.length === 0) return <p>{caption} no calls to undo.</p>;
  return (
    <table class="compact">
      <caption>{caption}</caption>
      <thead>
        <tr>
          <th scope="col">Turn</th>
          <th scope="col">Tool</th>
          <th scope="col">Action</th>
          <th scope="col">Result</th>
        </tr>
      </thead>
      <tbody>
        {steps.map((step, i) => (
          <tr key={i} data-testid="rollback-step" class={step.action}>
            <td>{step.turn}</td>
            <td>
              <code class="tool">{step.tool}</code>
            </td>
            <td>{actionText[step.action]}</td>
            <td>
              {step.result ?? ''}
              {step.message && <span class="muted"> {step.message}</span>}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
