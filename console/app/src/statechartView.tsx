import { useEffect, useMemo, useState } from 'preact/hooks';
import { describeFailure } from './errors.ts';
import { placeLabels } from './labelPlacement.ts';
import { anyState, type StateShape, type TransitionShape } from './statechartLayout.ts';
import { statechartMarks } from './statechartMarks.ts';
import { loadStatechart, type LaidOutStatechart } from './statechartSource.ts';
import { measureText } from './textMeasure.ts';
import { isEventless } from './transitionLabel.ts';

// Labels are set at 11px against the states' 12px (styles.css).
const labelScale = 11 / 12;
const labelHeight = 15;

interface Props {
  activeStateIds: readonly string[];
  /** The states the session has been in, in order (the `stateId` of its events). */
  path: readonly string[];
}

/**
 * The session's statechart, drawn once from `/api/statechart` and re-marked as the session moves:
 * the active states, those it has been in, and the transitions it took. Arrow labels would cover
 * each other if all were shown, so the drawing shows those leaving the active states and those of
 * what the pointer is over; every arrow keeps its events as a tooltip.
 */
export function StatechartView({ activeStateIds, path }: Props) {
  const [chart, setChart] = useState<LaidOutStatechart | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [hovered, setHovered] = useState<string | null>(null);
  const [fit, setFit] = useState(true);
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
  const { layout } = chart;
  const activeSources = new Set<string>();
  for (const state of layout.states) if (marks.active.has(state.id)) activeSources.add(state.id);
  const labelled = (t: TransitionShape) =>
    t.labels.length > 0 && (hovered === t.id || hovered === t.source || hovered === t.target || (hovered === null && activeSources.has(t.source)));
  const labels = placeLabels(
    layout.transitions.filter(labelled).map((t) => {
      const text = t.labels.join(', ');
      const width = measureText(text) * labelScale + 8;
      return { id: t.id, text, x: t.labelAt.x - width / 2, y: t.labelAt.y - labelHeight - 1, width, height: labelHeight };
    }),
    layout.states.filter((state) => !state.container),
  );

  return (
    <figure class="statechart">
      <div class={fit ? 'statechart-frame fit' : 'statechart-frame actual'}>
        <svg
          data-testid="statechart"
          viewBox={`-2 -2 ${layout.width + 4} ${layout.height + 4}`}
          width={fit ? '100%' : layout.width + 4}
          // Fit to the width, but never below two thirds of the actual size: narrower, it scrolls.
          style={fit ? { maxWidth: `${Math.round(layout.width * 1.2)}px`, minWidth: `${Math.round(layout.width * 0.66)}px` } : undefined}
          role="img"
          aria-label={`The session's statechart; active: ${[...marks.active].join(', ') || 'none'}`}
          onMouseLeave={() => setHovered(null)}
        >
          <defs>
            <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M0,1 L9,5 L0,9 z" class="arrowhead" />
            </marker>
            <marker id="arrow-taken" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M0,1 L9,5 L0,9 z" class="arrowhead taken" />
            </marker>
          </defs>
          {layout.states.map((state) => (
            <StateNode
              key={state.id}
              state={state}
              active={marks.active.has(state.id)}
              visited={marks.visited.has(state.id)}
              onHover={setHovered}
            />
          ))}
          {layout.anyState && (
            <g class="state any-state" onMouseEnter={() => setHovered(anyState)}>
              <title>Transitions any state takes</title>
              <rect x={layout.anyState.x} y={layout.anyState.y} width={layout.anyState.width} height={layout.anyState.height} rx={15} />
              <text x={layout.anyState.x + layout.anyState.width / 2} y={layout.anyState.y + layout.anyState.height / 2} class="state-key">
                any state
              </text>
            </g>
          )}
          {layout.initials.map((initial) => (
            <g key={initial.parent} class="initial">
              <circle cx={initial.x} cy={initial.y} r={4} />
              <path d={initial.path} marker-end="url(#arrow)" />
            </g>
          ))}
          {layout.transitions.map((t) => (
            <g
              key={t.id}
              class={`transition${marks.taken.has(t.id) ? ' taken' : ''}${hovered === t.id ? ' hovered' : ''}`}
              data-transition={`${t.source} -> ${t.target}`}
              onMouseEnter={() => setHovered(t.id)}
            >
              <title>{t.events.map((event) => (isEventless(event) ? '(eventless)' : event)).join('\n')}</title>
              <path d={t.path} class="hit" />
              <path d={t.path} class="line" marker-end={marks.taken.has(t.id) ? 'url(#arrow-taken)' : 'url(#arrow)'} />
            </g>
          ))}
          {labels.map((label) => (
            <g key={label.id} class="transition-label" aria-hidden="true">
              <rect x={label.x} y={label.y} width={label.width} height={label.height} rx={3} />
              <text x={label.x + label.width / 2} y={label.y + label.height / 2 + 0.5}>
                {label.text}
              </text>
            </g>
          ))}
        </svg>
      </div>
      <figcaption>
        <span class="legend active">active</span>
        <span class="legend visited">visited</span>
        <span class="legend final">final</span>
        <span class="muted">Point at a state or an arrow for its events.</span>
        <button type="button" class="small" onClick={() => setFit(!fit)}>
          {fit ? 'Actual size' : 'Fit to width'}
        </button>
      </figcaption>
    </figure>
  );
}

function StateNode({ state, active, visited, onHover }: { state: StateShape; active: boolean; visited: boolean; onHover: (id: string) => void }) {
  const classes = ['state', state.type, state.container ? 'container' : 'leaf', state.root ? 'root' : '', active ? 'active' : '', visited && !active ? 'visited' : '']
    .filter(Boolean)
    .join(' ');
  return (
    <g
      class={classes}
      data-state-id={state.id}
      data-testid={active ? 'active-state' : undefined}
      onMouseEnter={state.root ? undefined : () => onHover(state.id)}
    >
      <title>{`${state.id} (${state.type})${active ? ', active' : visited ? ', visited' : ''}`}</title>
      <rect x={state.x} y={state.y} width={state.width} height={state.height} rx={state.container ? 8 : 6} />
      {state.type === 'final' && <rect class="inner" x={state.x + 3} y={state.y + 3} width={state.width - 6} height={state.height - 6} rx={4} />}
      {state.container ? (
        <text x={state.x + 10} y={state.y + 18} class="container-key">
          {state.type === 'parallel' ? `${state.key} (parallel)` : state.key}
        </text>
      ) : (
        <text x={state.x + state.width / 2} y={state.y + state.height / 2} class="state-key">
          {state.type === 'history' ? `H ${state.key}` : state.key}
        </text>
      )}
    </g>
  );
}
