import { useMemo } from 'preact/hooks';
import { CostChart } from './costChart.tsx';
import { describeEvent } from './eventDescription.tsx';
import { textOf } from './eventFields.ts';
import { clock, count, fullDate, plural, usd } from './format.ts';
import type { StreamedEvent } from './sessionFeed.ts';
import { buildTimeline, entryCount, type TimelineEntry, type TurnGroup } from './timelineModel.ts';

/** The session's events, grouped by turn, each turn with its tokens and cost; a specialist's events nested under the call that delegated to it. */
export function TimelineView({ events }: { events: readonly StreamedEvent[] }) {
  const groups = useMemo(() => buildTimeline(events), [events]);
  return (
    <section class="timeline" aria-labelledby="timeline-title">
      <div class="section-title">
        <h2 id="timeline-title">Timeline</h2>
        <span class="muted">{plural(events.length, 'event')}</span>
        <CostChart groups={groups} />
      </div>
      {groups.length === 0 && <p class="empty">No events yet.</p>}
      {groups.map((group, index) => (
        <TurnSection key={group.key} group={group} last={index === groups.length - 1} />
      ))}
    </section>
  );
}

function TurnSection({ group, last }: { group: TurnGroup; last: boolean }) {
  const delegated = group.delegatedUsage.costUsd > 0 || group.delegatedUsage.inputTokens > 0;
  return (
    <details class="turn" open={last || group.entries.length <= 12} data-testid="turn" data-turn={group.turn ?? undefined}>
      <summary>
        <span class="turn-name">{group.turn === null ? 'Start' : `Turn ${group.turn}`}</span>
        <span class="muted">{plural(entryCount(group.entries), 'event')}</span>
        {(group.usage.inputTokens > 0 || delegated) && (
          <span class="figures">
            {count(group.usage.inputTokens + group.delegatedUsage.inputTokens)} in / {count(group.usage.outputTokens + group.delegatedUsage.outputTokens)} out ·{' '}
            {usd(group.usage.costUsd + group.delegatedUsage.costUsd)}
            {delegated && <span class="muted"> (specialists {usd(group.delegatedUsage.costUsd)})</span>}
          </span>
        )}
      </summary>
      <ol class="events">
        {group.entries.map((entry) => (
          <EntryItem key={entry.key} entry={entry} />
        ))}
      </ol>
    </details>
  );
}

function EntryItem({ entry }: { entry: TimelineEntry }) {
  const { headline, tone, body } = describeEvent(entry.event);
  const type = textOf(entry.event, 'type') ?? 'unknown';
  return (
    <li
      class={`event ${tone}${entry.specialist ? ' specialist' : ''}`}
      data-testid="timeline-event"
      data-event-type={entry.specialist ? 'specialist.event' : type}
      data-inner-type={entry.specialist ? type : undefined}
    >
      <div class="event-line">
        <time dateTime={textOf(entry.event, 'at')} title={fullDate(textOf(entry.event, 'at'))}>
          {clock(textOf(entry.event, 'at'))}
        </time>
        <span class="event-type">
          {entry.specialist && <span class="agent">{entry.specialist.agent} › </span>}
          {type}
        </span>
        <span class="headline">{headline}</span>
      </div>
      {body && <div class="event-body">{body}</div>}
      {entry.delegated.length > 0 && (
        <ol class="events delegated" aria-label={`events of the ${entry.delegated[0]!.specialist?.agent ?? 'specialist'} session this call delegated to`}>
          {entry.delegated.map((child) => (
            <EntryItem key={child.key} entry={child} />
          ))}
        </ol>
      )}
    </li>
  );
}
