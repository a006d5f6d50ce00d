import { usd } from './format.ts';
import type { TurnGroup } from './timelineModel.ts';

const width = 280;
const height = 64;
const pad = { left: 4, right: 4, top: 6, bottom: 6 };

/** The session's cumulative model cost, one point per turn group: where the money went, at a glance. */
export function CostChart({ groups }: { groups: readonly TurnGroup[] }) {
  const points = groups.filter((group) => group.turn !== null || group.cumulativeCostUsd > 0);
  if (points.length < 2) return null;
  const max = Math.max(...points.map((group) => group.cumulativeCostUsd), 1e-9);
  const x = (i: number) => pad.left + (i * (width - pad.left - pad.right)) / (points.length - 1);
  const y = (cost: number) => height - pad.bottom - (cost / max) * (height - pad.top - pad.bottom);
  const line = points.map((group, i) => `${i === 0 ? 'M' : 'L'}${x(i).toFixed(1)},${y(group.cumulativeCostUsd).toFixed(1)}`).join(' ');
  const last = points.at(-1)!;
  return (
    <figure class="cost-chart" data-testid="cost-chart">
      <svg viewBox={`0 0 ${width} ${height}`} width={width} height={height} role="img" aria-label={`Cumulative cost by turn, ${usd(last.cumulativeCostUsd)} in all`}>
        <path d={`${line} L${x(points.length - 1)},${height - pad.bottom} L${x(0)},${height - pad.bottom} z`} class="area" />
        <path d={line} class="line" />
        {points.map((group, i) => (
          <circle key={group.key} cx={x(i)} cy={y(group.cumulativeCostUsd)} r={2.5}>
            <title>{`${group.turn === null ? 'start' : `turn ${group.turn}`}: ${usd(group.cumulativeCostUsd)} so far`}</title>
          </circle>
        ))}
      </svg>
      <figcaption>
        cost by turn: <strong>{usd(last.cumulativeCostUsd)}</strong>
      </figcaption>
    </figure>
  );
}
