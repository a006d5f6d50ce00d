import type { Tracer } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { guardrailsInPhases, runGuardrails, type Guardrail, type GuardrailDecision, type GuardrailModel } from '../../guardrails/defineGuardrail.ts';
import type { CheckGuardrailsInput, GuardrailCheck } from '../../machines/sessionProtocol.ts';
import { addUsage, noUsage, type Usage } from '../../machines/usage.ts';
import { costOfCall, priceOf } from '../../models/priceTable.ts';
import { GenAiAttribute, recordSpanFailure, startChatSpan, TroupeAttribute } from '../../observability/spans.ts';
import type { ModelEndpoint } from '../model/modelCall.ts';
import type { SessionStep } from './actorSystemHooks.ts';
import type { SessionEventPublisher } from './sessionEvents.ts';
import type { SessionTrace } from './sessionTrace.ts';

export interface GuardrailCheckerDependencies {
  guardrails: readonly Guardrail[];
  /** The phases a guardrail some phase names checks in (`guardrailPhasesOf` of the session's workflow); empty without one. */
  phaseScopes: ReadonlyMap<string, ReadonlySet<string>>;
  endpoint: ModelEndpoint;
  events: SessionEventPublisher;
  trace: SessionTrace;
  tracer: Tracer;
  logger: Logger;
}

/**
 * Runs the agent's guardrails for the session statechart (`checkGuardrails`): each item of a
 * point on its own, at once; every decision a `guardrail.decided` event and a `guardrail <name>`
 * span under the turn, a block or a rewrite a log line too. Events, spans and logs say what a
 * rewrite changed and why a check blocked, never the content. Checks that call a model (`model`)
 * reach it through the session's endpoint, and their cost is returned to the session.
 */
export function createGuardrailChecker(deps: GuardrailCheckerDependencies): SessionStep<CheckGuardrailsInput, GuardrailCheck> {
  return async ({ input, signal }) => {
    let usage: Usage = noUsage;
    const model = classifierFor(deps, input, (spent) => (usage = addUsage(usage, spent)));
    const guardrails = guardrailsInPhases(deps.guardrails, deps.phaseScopes, input.phases);
    const items = await Promise.all(input.items.map(async (item) => {
      const ran = await runGuardrails(guardrails, { point: input.point, content: item.content, sessionId: input.sessionId, ...(item.tool ? { tool: item.tool } : {}), signal, model });
      for (const decision of ran.decisions) report(deps, input, decision, item);
      return { id: item.id, content: ran.content, rewritten: ran.content !== item.content, ...(ran.blocked ? { blocked: ran.blocked } : {}) };
    }));
    return { items, usage };
  };
}

function report(deps: GuardrailCheckerDependencies, input: CheckGuardrailsInput, decision: GuardrailDecision, item: CheckGuardrailsInput['items'][number]): void {
  const callId = input.point === 'toolInput' || input.point === 'toolOutput' ? item.id : undefined;
  deps.events.publish({ type: 'guardrail.decided', turn: input.turn, ...decision, ...(item.tool ? { tool: item.tool } : {}), ...(callId ? { callId } : {}) });
  const ended = Date.now();
  const span = deps.tracer.startSpan(`guardrail ${decision.guardrail}`, {
    startTime: ended - decision.durationMs,
    attributes: {
      [TroupeAttribute.guardrail]: decision.guardrail, [TroupeAttribute.guardrailPoint]: decision.point, [TroupeAttribute.guardrailOutcome]: decision.outcome,
      ...(decision.detail ? { [TroupeAttribute.guardrailDetail]: decision.detail } : {}),
      ...(item.tool ? { [GenAiAttribute.toolName]: item.tool } : {}),
      [TroupeAttribute.turn]: input.turn,
    },
  }, deps.trace.turnContext(Math.max(1, input.turn)));
  if (decision.failed) recordSpanFailure(span, 'guardrail_failed', decision.detail ?? 'the check failed');
  span.end(ended);
  if (decision.outcome !== 'pass') {
    deps.logger.info({ turn: input.turn, guardrail: decision.guardrail, point: decision.point, outcome: decision.outcome, detail: decision.detail, tool: item.tool }, `guardrail ${decision.guardrail} ${decision.outcome === 'block' ? 'blocked' : 'rewrote'} at ${decision.point}`);
  }
}

/** A model a check may call, through the session's endpoint: one `chat` span, its cost added to the session's. */
function classifierFor(deps: GuardrailCheckerDependencies, input: CheckGuardrailsInput, spend: (usage: Usage) => void): GuardrailModel {
  const { endpoint } = deps;
  return {
    async complete(request) {
      const baseUrl = new URL(endpoint.client.baseURL);
      const span = startChatSpan(deps.tracer, deps.trace.turnContext(Math.max(1, input.turn)), {
        sessionId: input.sessionId, model: request.model, providerName: endpoint.providerName, serverAddress: baseUrl.hostname,
        serverPort: Number(baseUrl.port || (baseUrl.protocol === 'https:' ? 443 : 80)),
      });
      span.setAttribute(TroupeAttribute.contextPurpose, 'guardrail');
      try {
        const completion = await endpoint.client.chat.completions.create(
          { model: request.model, messages: request.messages, ...(request.maxTokens ? { max_tokens: request.maxTokens } : {}) },
          { ...(request.signal ? { signal: request.signal } : {}), maxRetries: 1 },
        );
        const tokens = { inputTokens: completion.usage?.prompt_tokens ?? 0, outputTokens: completion.usage?.completion_tokens ?? 0 };
        const costUsd = costOfCall(priceOf(completion.model ?? request.model, endpoint.prices) ?? priceOf(request.model, endpoint.prices), tokens);
        spend({ ...tokens, costUsd });
        span.setAttributes({ [GenAiAttribute.inputTokens]: tokens.inputTokens, [GenAiAttribute.outputTokens]: tokens.outputTokens, [TroupeAttribute.costUsd]: costUsd });
        return completion.choices[0]?.message.content ?? '';
      } catch (error) {
        recordSpanFailure(span, 'guardrail_model_failed', error instanceof Error ? error.message : String(error));
        throw error;
      } finally {
        span.end();
      }
    },
  };
}
