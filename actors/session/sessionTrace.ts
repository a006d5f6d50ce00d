import { trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { RoutingDecision } from '../../machines/modelRouting.ts';
import type { ContextBreakdown, ContextRemoval } from '../../machines/contextAssembly.ts';
import type { SessionResult } from '../../machines/sessionOutcome.ts';
import { GenAiAttribute, recordSpanFailure, startSessionSpan, startTurnSpan, TroupeAttribute, type SessionSpanAttributes } from '../../observability/spans.ts';

/**
 * The spans of one session: the `invoke_agent` span and one span per turn. Statechart events carry
 * no trace context, so the model and tool-call actors ask this object for their turn's context.
 * It owns every span it starts and ends them all in {@link end}.
 */
export class SessionTrace {
  readonly #tracer: Tracer;
  readonly #sessionId: string;
  readonly #attributes: SessionSpanAttributes;
  #sessionSpan: Span;
  #sessionContext: Context;
  #turn: { number: number; span: Span; context: Context; costUsd: number } | undefined;
  #ended = false;

  constructor(tracer: Tracer, parent: Context, attributes: SessionSpanAttributes) {
    this.#tracer = tracer;
    this.#sessionId = attributes.sessionId;
    this.#attributes = attributes;
    this.#sessionSpan = startSessionSpan(tracer, parent, attributes);
    this.#sessionContext = trace.setSpan(parent, this.#sessionSpan);
  }

  get traceId(): string {
    return this.#sessionSpan.spanContext().traceId;
  }

  get sessionContext(): Context {
    return this.#sessionContext;
  }

  /** The context of turn `turn`, starting its span (and ending the previous turn's) on first use. */
  turnContext(turn: number): Context {
    if (this.#turn?.number === turn) return this.#turn.context;
    this.#turn?.span.end();
    const span = startTurnSpan(this.#tracer, this.#sessionContext, { sessionId: this.#sessionId, turn });
    this.#turn = { number: turn, span, context: trace.setSpan(this.#sessionContext, span), costUsd: 0 };
    return this.#turn.context;
  }

  /**
   * A parked session resumed: its earlier spans are ended (and exported), so the resumed part gets
   * a new `invoke_agent` span, a child of the first, in the same trace.
   */
  resume(): void {
    this.#ended = false;
    this.#turn = undefined;
    this.#sessionSpan = startSessionSpan(this.#tracer, this.#sessionContext, this.#attributes);
    this.#sessionSpan.addEvent('session.resumed');
    this.#sessionContext = trace.setSpan(this.#sessionContext, this.#sessionSpan);
  }

  /** Puts how the turn's model was chosen on the turn's span (attributes and an event), so traces show why. */
  recordRouting(decision: RoutingDecision): void {
    this.turnContext(decision.turn);
    const span = this.#turn?.span;
    span?.setAttributes({
      [TroupeAttribute.routedModel]: decision.model,
      [TroupeAttribute.routingRule]: decision.rule ?? '(default)',
      [TroupeAttribute.routingReason]: decision.reason,
    });
    span?.addEvent('model.routed', { model: decision.model, rule: decision.rule ?? '(default)', reason: decision.reason });
  }

  /** Puts the workflow's active phases on the turn's span (`troupe.workflow.state`). */
  recordPhases(turn: number, phases: readonly string[]): void {
    this.turnContext(turn);
    this.#turn?.span.setAttribute(TroupeAttribute.workflowState, phases.join(' › '));
  }

  /** Puts the turn's context breakdown (tokens by part) and what compression removed on its span. */
  recordContext(turn: number, breakdown: ContextBreakdown, removed: ContextRemoval[]): void {
    this.turnContext(turn);
    const span = this.#turn?.span;
    if (!span) return;
    span.setAttributes(Object.fromEntries(Object.entries(breakdown).map(([part, tokens]) => [`troupe.context.${part === 'outputHeadroom' ? 'output_headroom' : part}_tokens`, tokens])));
    for (const removal of removed) {
      span.addEvent('context.compressed', { kind: removal.kind, turns: removal.turns.join(','), tokens: removal.tokens });
    }
  }

  /** Adds to the turn's cost (`troupe.cost_usd` on its span): its model call and what its specialists spent. */
  addTurnCost(turn: number, usd: number): void {
    if (turn < 1) return;
    this.turnContext(turn);
    if (!this.#turn) return;
    this.#turn.costUsd += usd;
    this.#turn.span.setAttribute(TroupeAttribute.costUsd, Number(this.#turn.costUsd.toFixed(8)));
  }

  /** Adds an event to the session's own span: for what belongs to no one turn, or to one whose span may have ended. */
  addSessionEvent(name: string, attributes: Record<string, string | number | boolean>): void {
    this.#sessionSpan.addEvent(name, attributes);
  }

  /** Adds an event to the current turn's span, or the session's before the first turn. */
  addEvent(name: string, attributes: Record<string, string | number | boolean>): void {
    (this.#turn?.span ?? this.#sessionSpan).addEvent(name, attributes);
  }

  /**
   * Ends the session's spans with its outcome. Called at each stop (a final state, or parked as
   * escalated); after a parked stop the spans are already ended, so a later end (say, a cancel of
   * the parked session) opens a resumed span to carry the outcome instead of losing it.
   */
  end(result: SessionResult): void {
    if (this.#ended) this.resume();
    this.#ended = true;
    this.#turn?.span.end();
    this.#turn = undefined;
    const span = this.#sessionSpan;
    const { outcome } = result;
    span.setAttributes({
      [TroupeAttribute.sessionStatus]: outcome.status,
      [TroupeAttribute.stopReason]: outcome.stopReason,
      [TroupeAttribute.steps]: result.steps,
      [TroupeAttribute.toolCalls]: result.toolCalls,
      [TroupeAttribute.costUsd]: result.usage.costUsd,
      [GenAiAttribute.inputTokens]: result.usage.inputTokens,
      [GenAiAttribute.outputTokens]: result.usage.outputTokens,
    });
    if (outcome.status === 'budget_exhausted') span.addEvent('budget.exhausted', { budget: outcome.budget });
    if (outcome.status === 'failed') recordSpanFailure(span, 'session_failed', outcome.error);
    span.end();
  }
}
