import type { ComponentChildren } from 'preact';
import { booleanOf, isRecord, listOf, numberOf, recordOf, textOf, usageOf, type EventRecord } from './eventFields.ts';
import { count, duration, oneLine, plural, usd } from './format.ts';
import { Payload } from './payload.tsx';
import { phaseMoveText } from './phaseMoveText.ts';

/** How a timeline entry reads: its headline, its colour, and what unfolds below it. */
export interface EventDescription {
  headline: ComponentChildren;
  tone: 'plain' | 'ok' | 'warning' | 'error' | 'quiet';
  body?: ComponentChildren;
}

type Describe = (event: EventRecord) => EventDescription;

const failureText = (failure: unknown): string => {
  if (!isRecord(failure)) return '';
  const code = textOf(failure, 'code');
  const message = textOf(failure, 'message') ?? '';
  return code ? `${code}: ${message}` : message;
};

const usageText = (event: EventRecord, key = 'usage') => {
  const usage = usageOf(event, key);
  return usage ? `${count(usage.inputTokens)} in / ${count(usage.outputTokens)} out · ${usd(usage.costUsd)}` : '';
};

const T = ({ children }: { children: ComponentChildren }) => <code class="tool">{children}</code>;

/** The phase a waiting `next_phase` (the workflow's exit the model chose) would move to. */
const exitTarget = (call: EventRecord) => (textOf(call, 'tool') === 'next_phase' ? textOf(recordOf(call, 'arguments') ?? {}, 'to') : undefined);

/**
 * One renderer per session event type, reading the fields transport/sessionEventMessages.ts
 * defines. A type without one is shown by `describeEvent` as its type and JSON: never dropped.
 */
const describers: Record<string, Describe> = {
  'session.started': (e) => ({
    headline: (
      <>
        Started <strong>{textOf(e, 'agent')}</strong> on <code>{textOf(e, 'model')}</code>
        {textOf(e, 'tenant') && <> for tenant {textOf(e, 'tenant')}</>}
        {textOf(e, 'user') && <> (user {textOf(e, 'user')})</>}
        {listOf(e, 'phases').length > 0 && (
          <>
            {' '}in phase <strong>{listOf(e, 'phases').join(' › ')}</strong> of its workflow
          </>
        )}
      </>
    ),
    tone: 'plain',
    body: <p class="task-text">{textOf(e, 'task')}</p>,
  }),
  'turn.started': (e) => ({ headline: <>Turn {numberOf(e, 'turn')} started</>, tone: 'quiet' }),
  'model.routed': (e) => ({
    headline: (
      <>
        Routed to <code>{textOf(e, 'model')}</code>
        {textOf(e, 'rule') ? <> by rule {textOf(e, 'rule')}</> : <> (default)</>}: {textOf(e, 'reason')}
      </>
    ),
    tone: 'quiet',
  }),
  'context.assembled': (e) => {
    const breakdown = recordOf(e, 'breakdown') ?? {};
    // `total` is everything sent; `limit` the window minus the room kept for the answer.
    const total = numberOf(breakdown, 'total');
    const limit = numberOf(breakdown, 'limit') ?? numberOf(e, 'contextWindow');
    return {
      headline: (
        <>
          Context assembled{total !== undefined && <>: {count(total)}{limit !== undefined && <> of {count(limit)}</>} tokens</>} for <code>{textOf(e, 'model')}</code>
        </>
      ),
      tone: 'quiet',
      body: <Payload label="breakdown" value={breakdown} />,
    };
  },
  'context.compressed': (e) => ({
    headline: <>Context compressed: {listOf(e, 'removed').map((r) => (isRecord(r) ? `${textOf(r, 'kind')} (${count(numberOf(r, 'tokens') ?? 0)} tokens)` : '')).join(', ')}</>,
    tone: 'quiet',
  }),
  'model.responded': (e) => {
    const calls = listOf(e, 'toolCalls').filter(isRecord);
    const content = textOf(e, 'content');
    return {
      headline: (
        <>
          <code>{textOf(e, 'model')}</code> answered{calls.length > 0 && <> with {calls.length} tool call{calls.length === 1 ? '' : 's'}</>}
          {booleanOf(e, 'cached') && <span class="badge">cached, saved {usd(numberOf(e, 'savedUsd') ?? 0)}</span>}
          <span class="figures">
            {usageText(e)} · {duration(numberOf(e, 'durationMs') ?? 0)}
          </span>
        </>
      ),
      tone: 'plain',
      body: (
        <>
          {content && <div class="model-text">{content}</div>}
          {calls.length > 0 && (
            <ul class="call-list">
              {calls.map((call) => (
                <li key={textOf(call, 'id')}>
                  <T>{textOf(call, 'name')}</T> <code class="muted">{oneLine(textOf(call, 'arguments') ?? '', 140)}</code>
                </li>
              ))}
            </ul>
          )}
        </>
      ),
    };
  },
  'model.retrying': (e) => ({
    headline: (
      <>
        Retrying <code>{textOf(e, 'model')}</code>, attempt {numberOf(e, 'attempt')} in {duration(numberOf(e, 'delayMs') ?? 0)}
        {booleanOf(e, 'retryAfter') && ' (Retry-After)'}: {textOf(e, 'error')}
      </>
    ),
    tone: 'warning',
  }),
  'model.fallback': (e) => ({
    headline: (
      <>
        Model fallback <code>{textOf(e, 'from')}</code> → <code>{textOf(e, 'to')}</code>: {textOf(e, 'error')}
      </>
    ),
    tone: 'warning',
  }),
  'session.model_switched': (e) => ({
    headline: (
      <>
        Model switched <code>{textOf(e, 'from')}</code> → <code>{textOf(e, 'to')}</code>: {textOf(e, 'reason')}
      </>
    ),
    tone: 'warning',
  }),
  'tool.call.started': (e) => ({
    headline: (
      <>
        Called <T>{textOf(e, 'tool')}</T>
      </>
    ),
    tone: 'plain',
    body: <Payload label="arguments" value={e.arguments} />,
  }),
  'tool.call.finished': (e) => {
    const ok = textOf(e, 'status') === 'ok';
    const servedBy = textOf(e, 'servedBy');
    return {
      headline: (
        <>
          <T>{textOf(e, 'tool')}</T> {ok ? 'answered' : <>failed: {failureText(e.failure)}</>}
          {servedBy && servedBy !== textOf(e, 'tool') && <> (served by <T>{servedBy}</T>)</>}
          {booleanOf(e, 'cached') && <span class="badge">cached</span>}
          {booleanOf(e, 'summarised') && <span class="badge">summarised</span>}
          <span class="figures">
            {duration(numberOf(e, 'durationMs') ?? 0)}
            {(numberOf(e, 'attempts') ?? 1) > 1 && ` · ${numberOf(e, 'attempts')} attempts`}
          </span>
        </>
      ),
      tone: ok ? 'ok' : 'error',
      body: ok ? <Payload label="result" value={e.result} /> : <Payload label="failure" value={e.failure} />,
    };
  },
  'tool.call.rejected': (e) => ({
    headline: (
      <>
        <T>{textOf(e, 'tool')}</T> rejected: {failureText(e.failure)}
      </>
    ),
    tone: 'error',
    body: <Payload label="failure" value={e.failure} />,
  }),
  'tool.call.retrying': (e) => ({
    headline: (
      <>
        Retrying <T>{textOf(e, 'tool')}</T>, attempt {numberOf(e, 'attempt')} in {duration(numberOf(e, 'delayMs') ?? 0)}: {failureText(e.failure)}
      </>
    ),
    tone: 'warning',
  }),
  'tool.call.fallback': (e) => ({
    headline: (
      <>
        Fallback <T>{textOf(e, 'from')}</T> → <T>{textOf(e, 'to')}</T>: {failureText(e.failure)}
      </>
    ),
    tone: 'warning',
  }),
  'tool.call.progress': (e) => ({
    headline: (
      <>
        <T>{textOf(e, 'tool')}</T> progress {numberOf(e, 'progress')}
        {numberOf(e, 'total') !== undefined && ` of ${numberOf(e, 'total')}`}
        {textOf(e, 'message') && `: ${textOf(e, 'message')}`}
      </>
    ),
    tone: 'quiet',
  }),
  'tool.call.in_doubt': (e) => ({
    headline: (
      <>
        <T>{textOf(e, 'tool')}</T> is in doubt: its worker died before recording what happened
      </>
    ),
    tone: 'error',
    body: (
      <>
        <Payload label="arguments" value={e.arguments} />
        <Payload label="evidence" value={e.evidence} open />
      </>
    ),
  }),
  'tool.breaker.changed': (e) => ({
    headline: (
      <>
        Circuit of <T>{textOf(e, 'tool')}</T> {textOf(e, 'from')} → <strong>{textOf(e, 'to')}</strong>
      </>
    ),
    tone: textOf(e, 'to') === 'closed' ? 'ok' : 'warning',
  }),
  'session.repair': (e) => ({
    headline: (
      <>
        Repair ({numberOf(e, 'consecutive')} in a row): {textOf(e, 'reason')}
      </>
    ),
    tone: 'warning',
  }),
  'loop.detected': (e) => ({
    headline: (
      <>
        Loop detected, {textOf(e, 'action')}: {textOf(e, 'description')}
      </>
    ),
    tone: 'warning',
    body: <Payload label="evidence" value={e.evidence} />,
  }),
  'guardrail.decided': (e) => {
    const outcome = textOf(e, 'outcome');
    return {
      headline: (
        <>
          Guardrail <strong>{textOf(e, 'guardrail')}</strong> at {textOf(e, 'point')}
          {typeof e.tool === 'string' && <> (<T>{e.tool}</T>)</>}: {outcome === 'block' ? 'blocked' : outcome === 'rewrite' ? 'rewrote' : 'passed'}
          {typeof e.detail === 'string' && <span> — {e.detail}</span>}
        </>
      ),
      tone: outcome === 'block' ? 'error' : outcome === 'rewrite' || e.failed === true ? 'warning' : 'ok',
    };
  },
  'workflow.transitioned': (e) => {
    const { route, why, reason } = phaseMoveText(e);
    return {
      headline: (
        <>
          Phase <strong>{route}</strong>
          <span>— {why}</span>
          {reason && <q>{reason}</q>}
        </>
      ),
      tone: 'ok',
    };
  },
  'approval.requested': (e) => {
    const calls = listOf(e, 'calls').filter(isRecord);
    return {
      headline: (
        <>
          Approval requested for {calls.map((call, i) => (
            <>
              {i > 0 && ', '}
              <T>{textOf(call, 'tool')}</T>
              {exitTarget(call) && <> → phase <strong>{exitTarget(call)}</strong></>}
            </>
          ))}
          <span class="figures">expires {new Date(textOf(e, 'expiresAt') ?? '').toLocaleTimeString('en-GB')}</span>
        </>
      ),
      tone: 'warning',
      body: calls.map((call) => <Payload key={textOf(call, 'callId')} label={`${textOf(call, 'tool')} arguments`} value={call.arguments} />),
    };
  },
  'approval.decided': (e) => {
    const decision = textOf(e, 'decision');
    return {
      headline: (
        <>
          <strong>{decision}</strong> by {textOf(e, 'by')}
          {listOf(e, 'callIds').length > 0 && <span class="muted"> ({listOf(e, 'callIds').join(', ')})</span>}
          {textOf(e, 'reason') && `: ${textOf(e, 'reason')}`}
        </>
      ),
      tone: decision === 'approved' ? 'ok' : 'error',
    };
  },
  'control.applied': (e) => ({
    headline: (
      <>
        Control <strong>{textOf(e, 'control')}</strong> {booleanOf(e, 'accepted') ? 'applied' : 'refused'}
        {textOf(e, 'reason') && `: ${textOf(e, 'reason')}`}
      </>
    ),
    tone: booleanOf(e, 'accepted') ? 'ok' : 'error',
  }),
  'session.interrupted': (e) => ({ headline: <>Interrupted after turn {numberOf(e, 'turn')}</>, tone: 'warning' }),
  'session.redirected': (e) => ({ headline: <>Redirected: {textOf(e, 'instruction')}</>, tone: 'warning' }),
  'session.rolled_back': (e) => {
    const steps = listOf(e, 'steps').filter(isRecord);
    return {
      headline: (
        <>
          Rolled back to turn {numberOf(e, 'toTurn')} by {textOf(e, 'by')}: {steps.length} call{steps.length === 1 ? '' : 's'}
        </>
      ),
      tone: 'warning',
      body: (
        <ul class="call-list">
          {steps.map((step) => (
            <li key={textOf(step, 'callId')}>
              turn {numberOf(step, 'turn')} <T>{textOf(step, 'tool')}</T> {textOf(step, 'action')}
              {textOf(step, 'result') && ` → ${textOf(step, 'result')}`}
              {textOf(step, 'message') && `: ${textOf(step, 'message')}`}
            </li>
          ))}
        </ul>
      ),
    };
  },
  'session.taken_over': (e) => ({ headline: <>Taken over by {textOf(e, 'by')}</>, tone: 'warning' }),
  'session.handed_back': (e) => ({
    headline: (
      <>
        Handed back by {textOf(e, 'by')}
        {textOf(e, 'instruction') && `: ${textOf(e, 'instruction')}`}
      </>
    ),
    tone: 'ok',
  }),
  'session.resumed': (e) => {
    const resent = listOf(e, 'resentToolCalls').filter(isRecord);
    return {
      headline: (
        <>
          Resumed by <code>{textOf(e, 'owner')}</code> in <code>{textOf(e, 'state')}</code>
          {resent.length > 0 && <>, re-sent {resent.map((call) => textOf(call, 'tool')).join(', ')}</>}
        </>
      ),
      tone: 'warning',
    };
  },
  'session.finished': (e) => {
    const status = textOf(e, 'status');
    const delegated = recordOf(e, 'delegated');
    return {
      headline: (
        <>
          Finished: <strong>{status}</strong> ({textOf(e, 'stopReason')}
          {textOf(e, 'budget') && `, budget ${textOf(e, 'budget')}`})
          <span class="figures">
            {plural(numberOf(e, 'steps') ?? 0, 'step')} · {plural(numberOf(e, 'toolCalls') ?? 0, 'tool call')} · {usageText(e)} · {duration(numberOf(e, 'durationMs') ?? 0)}
          </span>
        </>
      ),
      tone: status === 'completed' ? 'ok' : status === 'failed' || status === 'cancelled' || status === 'blocked' ? 'error' : 'warning',
      body: (
        <>
          {textOf(e, 'error') && <p class="error-text">{textOf(e, 'error')}</p>}
          {textOf(e, 'output') && <div class="model-text">{textOf(e, 'output')}</div>}
          {delegated && <p class="muted">specialists: {usageText(delegated)}</p>}
        </>
      ),
    };
  },
};

/** How to show one session event; an unknown type as itself and its JSON. */
export function describeEvent(event: EventRecord): EventDescription {
  const type = textOf(event, 'type') ?? '(no type)';
  const describe = describers[type];
  if (describe) {
    try {
      return describe(event);
    } catch {
      // A malformed event of a known type is shown like an unknown one rather than breaking the timeline.
    }
  }
  return { headline: <code>{type}</code>, tone: 'plain', body: <Payload label="event" value={withoutBase(event)} /> };
}

function withoutBase(event: EventRecord): EventRecord {
  const { sessionId: _sessionId, seq: _seq, at: _at, type: _type, ...rest } = event;
  return rest;
}
