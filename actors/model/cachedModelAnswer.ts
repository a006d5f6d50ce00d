import type { CallModelInput } from '../../machines/sessionProtocol.ts';
import type { ModelResponse } from '../../machines/conversation.ts';
import { addUsage, type Usage } from '../../machines/usage.ts';
import type { PreparedRequest } from './contextBuilder.ts';
import type { ModelCallDependencies } from './modelCall.ts';

/**
 * A response reused from the cache: nothing is sent and nothing spent (beyond a summary written
 * for the request); the event and the turn's span say so, with what the original cost.
 */
export function answerFromCache(deps: ModelCallDependencies, input: CallModelInput, reused: ModelResponse, prepared: PreparedRequest, spent: Usage): ModelResponse {
  const usage = { inputTokens: spent.inputTokens, outputTokens: spent.outputTokens };
  deps.events.publish({
    type: 'model.responded', turn: input.turn, model: reused.model, content: reused.content, toolCalls: reused.toolCalls, finishReason: reused.finishReason,
    usage: { ...usage, costUsd: spent.costUsd }, totals: addUsage(deps.usageSoFar(), spent), durationMs: 0, cached: true, savedUsd: reused.costUsd,
  });
  deps.trace.addEvent('model.cache_hit', { 'gen_ai.request.model': input.model, 'troupe.cache.saved_usd': reused.costUsd });
  deps.logger.info({ turn: input.turn, model: reused.model, savedUsd: reused.costUsd }, 'model request answered from the cache');
  return {
    ...reused, usage, costUsd: spent.costUsd, cached: true, savedUsd: reused.costUsd,
    context: { countedInputTokens: prepared.countedInputTokens, exactCount: prepared.exactCount, ...(prepared.summary ? { summary: prepared.summary } : {}) },
  };
}
