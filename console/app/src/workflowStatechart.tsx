import { useEffect, useMemo, useState } from 'preact/hooks';
import type { SessionWorkflow } from '../../consoleApi.ts';
import { describeFailure } from './errors.ts';
import { phaseMoveText } from './phaseMoveText.ts';
import { StatechartDrawing } from './statechartDrawing.tsx';
import { loadWorkflowChart, type LaidOutStatechart } from './statechartSource.ts';
import { workflowMarks } from './workflowMarks.ts';

interface Props {
  workflow: SessionWorkflow;
  agent: string;
}

/**
 * The agent's workflow for one session, drawn like the loop's statechart: its phases, the current
 * ones lit, the phases visited and the moves taken marked, the exit waiting for a person's
 * approval dashed; beside it, the path as a list, each move with what made it.
 */
export function WorkflowStatechart({ workflow, agent }: Props) {
  const [chart, setChart] = useState<LaidOutStatechart | null>(null);
  const [error, setError] = useState<string | null>(null);
  const graphKey = JSON.stringify(workflow.graph);
  useEffect(() => {
    let live = true;
    loadWorkflowChart(workflow.graph).then(
      (loaded) => live && setChart(loaded),
      (failure: unknown) => live && setError(describeFailure(failure)),
    );
    return () => {
      live = false;
    };
  }, [graphKey]);
  const marks = useMemo(() => (chart ? workflowMarks(chart.graph, chart.layout.transitions, workflow) : null), [chart, JSON.stringify(workflow)]);

  const current = workflow.active.join(' › ') || 'none';
  return (
    <section class="workflow" aria-labelledby="workflow-title" data-testid="workflow">
      <div class="section-title">
        <h2 id="workflow-title">
          Workflow of <code>{agent}</code>
        </h2>
        <span>
          <span class="muted">in phase</span> <strong data-testid="workflow-phase">{current}</strong>
        </span>
        {workflow.pendingExit && (
          <span class="badge approval" data-testid="workflow-waiting">
            move to {workflow.pendingExit.to} waits for approval
          </span>
        )}
      </div>
      <div class="workflow-columns">
        {error !== null ? (
          <p class="banner error" role="alert">
            The workflow could not be drawn: {error}
          </p>
        ) : !chart || !marks ? (
          <p class="empty">Drawing the workflow…</p>
        ) : (
          <StatechartDrawing chart={chart} marks={marks} name={`The workflow of ${agent}`} testId="workflow-statechart" />
        )}
        <PhasePath workflow={workflow} />
      </div>
    </section>
  );
}

/** The phases the session went through, in order: where it started, each move and why, and the move that waits. */
function PhasePath({ workflow }: { workflow: SessionWorkflow }) {
  const start = workflow.path[0]?.from ?? workflow.active;
  return (
    <ol class="phase-path" aria-label="The path through the workflow" data-testid="phase-path">
      <li class="phase-move start">
        <span class="muted">started in</span> <strong>{start.join(' › ') || '?'}</strong>
      </li>
      {workflow.path.map((move, index) => {
        const text = phaseMoveText(move);
        return (
          <li key={index} class={`phase-move ${move.trigger}`} data-testid="phase-move">
            <span class="muted">turn {move.turn}</span> <strong>{text.route}</strong>
            <div class="why">
              {text.why}
              {text.reason && <q>{text.reason}</q>}
            </div>
          </li>
        );
      })}
      {workflow.pendingExit && (
        <li class="phase-move waiting" data-testid="phase-move-waiting">
          <span class="badge approval">waits</span> <strong>{`${workflow.active.join(' › ')} → ${workflow.pendingExit.to}`}</strong>
          <div class="why">
            the model's choice, for a person to approve
            <q>{workflow.pendingExit.reason}</q>
          </div>
        </li>
      )}
    </ol>
  );
}
