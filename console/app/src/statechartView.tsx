import { useEffect, useMemo, useState } from 'preact/hooks';
import { describeFailure } from './errors.ts';
import { StatechartDrawing } from './statechartDrawing.tsx';
import { statechartMarks } from './statechartMarks.ts';
import { loadStatechart, type LaidOutStatechart } from './statechartSource.ts';

interface Props {
  activeStateIds: readonly string[];
  /** The states the session has been in, in order (the `stateId` of its events). */
  path: readonly string[];
}

/**
 * The session's statechart (the agent loop every session runs), drawn once from `/api/statechart`
 * and re-marked as the session moves: the active states, those it has been in, and the
 * transitions it took.
 */
export function StatechartView({ activeStateIds, path }: Props) {
  const [chart, setChart] = useState<LaidOutStatechart | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    loadStatechart().then(
      (loaded) => live && setChart(loaded),
      (failure: unknown) => live && setError(describeFailure(failure)),
    );
    return () => {
      live = false;
    };
  }, []);

  const marks = useMemo(
    () => (chart ? statechartMarks(chart.graph, chart.layout.transitions, activeStateIds, path) : null),
    [chart, activeStateIds.join('\n'), path.join('\n')],
  );

  if (error !== null) return <p class="banner error" role="alert">The statechart could not be drawn: {error}</p>;
  if (!chart || !marks) return <p class="empty">Drawing the statechart…</p>;
  return <StatechartDrawing chart={chart} marks={marks} name="The session's statechart" testId="statechart" />;
}
