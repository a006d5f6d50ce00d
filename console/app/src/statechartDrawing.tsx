import { useState } from 'preact/hooks';
import { placeLabels } from './labelPlacement.ts';
import { anyState, labelLineHeight, labelSize, type StateShape, type TransitionShape } from './statechartLayout.ts';
import type { StatechartMarks } from './statechartMarks.ts';
import type { LaidOutStatechart } from './statechartSource.ts';
import { measureText } from './textMeasure.ts';
import { isEventless } from './transitionLabel.ts';

interface Props {
  chart: LaidOutStatechart;
  marks: StatechartMarks;
  /** What is drawn, for the figure's accessible name: `The session's statechart`. */
  name: string;
  /** The svg's test id, and the prefix of its markers' ids (two drawings share the page). */
  testId: string;
}

/**
 * A statechart as laid out, marked for one session: the active states, those it has been in, the
 * transitions it took, and one that waits for a person's approval. Labels the layout placed are
 * all shown; others would cover each other if all were shown on a large chart, so of those it
 * shows the ones leaving the active states, the waiting one and those of what the pointer is
 * over (every arrow keeps its events as a tooltip).
 */
export function StatechartDrawing({ chart, marks, name, testId }: Props) {
  const [hovered, setHovered] = useState<string | null>(null);
  const [fit, setFit] = useState(true);
  const { layout } = chart;
  const marker = (kind: string) => `${testId}-arrow${kind}`;
  const labelled = (t: TransitionShape) =>
    t.labels.length > 0 &&
    (t.labelBox !== null || marks.waiting.transitions.has(t.id) || hovered === t.id || hovered === t.source || hovered === t.target || (hovered === null && marks.active.has(t.source)));
  const labels = placeLabels(
    layout.transitions.filter(labelled).map((t) => {
      const lines = t.labelBox ? t.labels : [t.labels.join(', ')];
      const { width, height } = labelSize(lines, measureText);
      const box = t.labelBox ?? { x: t.labelAt.x - width / 2, y: t.labelAt.y - height - 1, width, height };
      return { id: t.id, lines, ...box, waiting: marks.waiting.transitions.has(t.id), taken: marks.taken.has(t.id) };
    }),
    layout.states.filter((state) => !state.container),
  );
  const arrowOf = (t: TransitionShape) => (marks.waiting.transitions.has(t.id) ? marker('-waiting') : marks.taken.has(t.id) ? marker('-taken') : marker(''));

  return (
    <figure class="statechart" aria-label={name}>
      <div class={fit ? 'statechart-frame fit' : 'statechart-frame actual'}>
        <svg
          data-testid={testId}
          viewBox={`-2 -2 ${layout.width + 4} ${layout.height + 4}`}
          width={fit ? '100%' : layout.width + 4}
          // Fit to the width, but never below two thirds of the actual size: narrower, it scrolls.
          style={fit ? { maxWidth: `${Math.round(layout.width * 1.2)}px`, minWidth: `${Math.round(layout.width * 0.66)}px` } : undefined}
          role="img"
          aria-label={`${name}; active: ${[...marks.active].join(', ') || 'none'}`}
          onMouseLeave={() => setHovered(null)}
        >
          <defs>
            {['', '-taken', '-waiting'].map((kind) => (
              <marker key={kind} id={marker(kind)} viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                <path d="M0,1 L9,5 L0,9 z" class={`arrowhead${kind === '' ? '' : ` ${kind.slice(1)}`}`} />
              </marker>
            ))}
          </defs>
          {layout.states.map((state) => (
            <StateNode
              key={state.id}
              state={state}
              active={marks.active.has(state.id)}
              visited={marks.visited.has(state.id)}
              waiting={marks.waiting.states.has(state.id)}
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
              <path d={initial.path} marker-end={`url(#${marker('')})`} />
            </g>
          ))}
          {layout.transitions.map((t) => (
            <g
              key={t.id}
              class={`transition${marks.taken.has(t.id) ? ' taken' : ''}${marks.waiting.transitions.has(t.id) ? ' waiting' : ''}${hovered === t.id ? ' hovered' : ''}`}
              data-transition={`${t.source} -> ${t.target}`}
              data-testid={marks.waiting.transitions.has(t.id) ? 'waiting-transition' : marks.taken.has(t.id) ? 'taken-transition' : undefined}
              onMouseEnter={() => setHovered(t.id)}
            >
              <title>{t.events.map((event) => (isEventless(event) ? '(eventless)' : event)).join('\n')}</title>
              <path d={t.path} class="hit" />
              <path d={t.path} class="line" marker-end={`url(#${arrowOf(t)})`} />
            </g>
          ))}
          {labels.map((label) => (
            <g key={label.id} class={`transition-label${label.waiting ? ' waiting' : label.taken ? ' taken' : ''}`} aria-hidden="true">
              <rect x={label.x} y={label.y} width={label.width} height={label.height} rx={3} />
              <text>
                {label.lines.map((line, i) => (
                  <tspan key={i} x={label.x + label.width / 2} y={label.y + 1 + labelLineHeight * (i + 0.5) + 0.5}>
                    {line}
                  </tspan>
                ))}
              </text>
            </g>
          ))}
        </svg>
      </div>
      <figcaption>
        <span class="legend active">active</span>
        <span class="legend visited">visited</span>
        {marks.taken.size > 0 && <span class="legend taken">taken</span>}
        {marks.waiting.transitions.size + marks.waiting.states.size > 0 && <span class="legend waiting">waits for approval</span>}
        {layout.states.some((state) => state.type === 'final') && <span class="legend final">final</span>}
        <span class="muted">Point at a state or an arrow for its events.</span>
        <button type="button" class="small" onClick={() => setFit(!fit)}>
          {fit ? 'Actual size' : 'Fit to width'}
        </button>
      </figcaption>
    </figure>
  );
}

function StateNode({ state, active, visited, waiting, onHover }: { state: StateShape; active: boolean; visited: boolean; waiting: boolean; onHover: (id: string) => void }) {
  const classes = [
    'state', state.type, state.container ? 'container' : 'leaf', state.root ? 'root' : '', active ? 'active' : '', visited && !active ? 'visited' : '', waiting ? 'waiting' : '',
  ]
    .filter(Boolean)
    .join(' ');
  return (
    <g
      class={classes}
      data-state-id={state.id}
      data-testid={active ? 'active-state' : visited ? 'visited-state' : undefined}
      onMouseEnter={state.root ? undefined : () => onHover(state.id)}
    >
      <title>{`${state.id} (${state.type})${active ? ', active' : visited ? ', visited' : ''}${waiting ? ', waits for approval to enter' : ''}`}</title>
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
