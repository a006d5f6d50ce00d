import type { Tracer } from '@opentelemetry/api';
import { APIConnectionError, APIError, APIUserAbortError } from 'openai';
import type OpenAI from 'openai';
import type { ChatCompletionFunctionTool, ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import type { Logger } from 'pino';
import type { SessionStep } from '../session/actorSystemHooks.ts';
import type { ChatMessage, ModelResponse, ModelToolCall } from '../../machines/conversation.ts';
import type { CallModelInput } from '../../machines/session.ts';
import type { PhaseToolOffer } from '../../machines/sessionProtocol.ts';
import { backoffDelayMs, withJitter, type RetryPolicy } from '../../machines/retryPolicy.ts';
import { addUsage, type Usage } from '../../machines/usage.ts';
import { costOfCall, priceOf, type PriceTable } from '../../models/priceTable.ts';
import type { ModelTable } from '../../models/modelTable.ts';
import { ContextOverflowError, prepareRequest, type PreparedRequest } from './contextBuilder.ts';
import { answerFromCache } from './cachedModelAnswer.ts';
import { ToolCallDeltas } from './toolCallDeltas.ts';
import { cacheKeyOf, type ResponseCache } from './responseCache.ts';
import { ContextSettings } from '../../machines/contextAssembly.ts';
import { troupeMetrics } from '../../observability/metrics.ts';
import { GenAiAttribute, recordSpanFailure, startChatSpan, TroupeAttribute } from '../../observability/spans.ts';
import type { SessionEventPublisher } from '../session/sessionEvents.ts';
import type { SessionTrace } from '../session/sessionTrace.ts';

/** An OpenAI-compatible endpoint and what Troupe needs to know about it. */
export interface ModelEndpoint {
  client: OpenAI;
  /** `gen_ai.provider.name` on model spans: `openai`, or your endpoint's name (`vllm`, `ollama`, …). */
  providerName: string;
  prices: PriceTable;
  /**
   * Per attempt: `requestMs` for the whole streamed answer, `idleMs` between two chunks. A stream
   * that stalls is aborted and retried like a timeout (the client's own timeout stops at the headers).
   */
  timeouts?: { requestMs?: number; idleMs?: number };
}

/** An attempt that took too long or went quiet mid-stream; retried like a timeout. */
export class ModelStallError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A failed attempt that had already streamed tokens: the provider bills them, so the session counts them. */
class PartialAttemptError extends Error {
  readonly partialUsage: { inputTokens: number; outputTokens: number };
  constructor(cause: unknown, partialUsage: { inputTokens: number; outputTokens: number }) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = new.target.name;
    this.partialUsage = partialUsage;
  }
}

export interface ModelCallDependencies {
  endpoint: ModelEndpoint;
  /** The tools this session's agent may call right now, within what its workflow's phase offers, as function definitions. */
  tools: (offer: PhaseToolOffer | null) => ChatCompletionFunctionTool[];
  trace: SessionTrace;
  events: SessionEventPublisher;
  tracer: Tracer;
  logger: Logger;
  /** The session's usage before this call, for the running totals in events. */
  usageSoFar: () => Usage;
  /** Troupe owns model retries (the openai client's own are turned off per request, so they never multiply). */
  retry: RetryPolicy;
  random?: () => number;
  /** Whom the spend is for: attributes of the cost metric. */
  attribution?: { agent: string; tenant: string | null };
  /** Context windows and tokenizers per model; the defaults when absent. */
  models?: ModelTable;
  /** Identical requests (model, messages, tools) answered from here within the scope and time. */
  cache?: { store: ResponseCache; ttlMs: number; scope: string };
  /** Record the messages sent and received on the `chat` span (`gen_ai.input.messages`, `gen_ai.output.messages`); off by default. */
  captureContent?: boolean;
  /** Applied to the content captured on spans (see `Guardrail.scrub`). */
  scrub?: (text: string) => string;
}

/** Every model in the chain failed; the message says what the last one said. */
export class ModelUnavailableError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = new.target.name;
  }
}

// Longer than this and waiting is worse than trying the next model.
const maxRetryAfterMs = 60_000;

interface FailureVerdict {
  retryable: boolean;
  /** The wait the endpoint asked for (Retry-After), when it did. */
  retryAfterMs?: number;
  reason: string;
}

/** Whether a failed model call is worth retrying on the same model, and after how long. */
export function judgeModelFailure(error: unknown): FailureVerdict {
  if (error instanceof PartialAttemptError) return judgeModelFailure(error.cause);
  if (error instanceof ModelStallError) return { retryable: true, reason: error.message };
  if (error instanceof APIConnectionError) return { retryable: true, reason: `connection failed: ${error.message}` };
  if (error instanceof APIError && typeof error.status === 'number') {
    // The client's message already starts with the status ("429 Rate limit…") when the body had one.
    const reason = error.message.startsWith(String(error.status)) ? `HTTP ${error.message}` : `HTTP ${error.status}: ${error.message}`;
    const retryable = error.status === 408 || error.status === 409 || error.status === 429 || error.status >= 500;
    const headers = error.headers;
    const ms = Number(headers?.get('retry-after-ms'));
    const seconds = headers?.get('retry-after');
    let retryAfterMs = Number.isFinite(ms) && ms >= 0 && headers?.get('retry-after-ms') ? ms : undefined;
    if (retryAfterMs === undefined && seconds) {
      const asNumber = Number(seconds);
      retryAfterMs = Number.isFinite(asNumber) ? asNumber * 1000 : Math.max(0, Date.parse(seconds) - Date.now());
    }
    if (retryAfterMs !== undefined && (!Number.isFinite(retryAfterMs) || retryAfterMs > maxRetryAfterMs)) {
      return { retryable: false, reason: `${reason} (asked to wait ${Math.round((retryAfterMs ?? 0) / 1000)} s)` };
    }
    return retryAfterMs === undefined ? { retryable, reason } : { retryable, retryAfterMs, reason };
  }
  return { retryable: false, reason: error instanceof Error ? error.message : String(error) };
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

/** Maps the session's provider-neutral conversation to the Chat Completions wire format. */
export function toChatCompletionMessages(messages: ChatMessage[]): ChatCompletionMessageParam[] {
  return messages.map((message): ChatCompletionMessageParam => {
    switch (message.role) {
      case 'system':
      case 'user':
        return { role: message.role, content: message.content };
      case 'assistant':
        return message.toolCalls && message.toolCalls.length > 0
          ? {
              role: 'assistant',
              content: message.content,
              tool_calls: message.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })),
            }
          : { role: 'assistant', content: message.content ?? '' };
      case 'tool':
        return { role: 'tool', tool_call_id: message.toolCallId, content: message.content };
    }
  });
}

// For endpoints that do not report usage while streaming: about four characters a token.
const estimateTokens = (text: string) => Math.ceil(text.length / 4);

const warnedUnpriced = new Set<string>();

/**
 * The session's `callModel` actor: one streamed chat completion, its tool calls accumulated from
 * the deltas (by `ToolCallDeltas`: none merged or dropped, with or without an `index`), usage and
 * cost recorded on the `chat {model}` span and in a `model.responded` event. A failure rejects
 * (the statechart decides what happens next); aborting the actor aborts the HTTP request.
 */
export function createModelCaller(deps: ModelCallDependencies): SessionStep<CallModelInput, ModelResponse> {
  const random = deps.random ?? Math.random;
  return async ({ input: given, signal }) => {
    // A call restored from an older checkpoint has no context fields in its input: the defaults stand in.
    const input: CallModelInput = {
      ...given, summary: given.summary ?? null, ledger: given.ledger ?? [], calibration: given.calibration ?? 1,
      contextSettings: given.contextSettings ?? ContextSettings.parse({}),
    };
    const models = [input.model, ...input.fallbackModels];
    let last: FailureVerdict | undefined;
    let lastError: unknown;
    // Tokens of attempts that failed after streaming: billed by the provider, so counted here.
    let lost = { inputTokens: 0, outputTokens: 0, costUsd: 0 };
    for (const [index, model] of models.entries()) {
      if (index > 0) {
        const from = models[index - 1] as string;
        deps.events.publish({ type: 'model.fallback', turn: input.turn, from, to: model, error: last?.reason ?? 'failed' });
        deps.trace.addEvent('model.fallback', { from, to: model });
        deps.logger.warn({ from, to: model, turn: input.turn }, 'falling back to the next model');
      }
      // Each model has its own window: the request is assembled for it (once, whatever the retries).
      let prepared: PreparedRequest;
      const tools = deps.tools(input.offer);
      try {
        prepared = await prepareRequest(deps, input, model, tools, signal);
      } catch (error) {
        if (signal.aborted || !(error instanceof ContextOverflowError)) throw error;
        lastError = error;
        last = { retryable: false, reason: error.message };
        continue;
      }
      lost = addUsage(lost, prepared.summaryUsage);
      const cacheKey = deps.cache ? cacheKeyOf([deps.cache.scope, model, prepared.messages, tools]) : undefined;
      const reused = cacheKey ? deps.cache?.store.get<ModelResponse>(cacheKey) : undefined;
      if (reused) return answerFromCache(deps, input, reused, prepared, lost);
      for (let attempt = 1; attempt <= deps.retry.maxAttempts; attempt++) {
        try {
          const called = await callOnce(deps, { ...input, model, messages: prepared.messages }, signal);
          const response: ModelResponse = {
            ...called,
            context: { countedInputTokens: prepared.countedInputTokens, reportedInputTokens: called.usage.inputTokens, exactCount: prepared.exactCount, ...(prepared.summary ? { summary: prepared.summary } : {}) },
          };
          // Only whole answers are reused: not one cut off by the output limit, a filter or a dropped stream.
          if (cacheKey && (response.finishReason === 'stop' || response.finishReason === 'tool_calls')) deps.cache?.store.set(cacheKey, called, deps.cache.ttlMs);
          if (lost.inputTokens + lost.outputTokens === 0) return response;
          return {
            ...response,
            usage: { inputTokens: response.usage.inputTokens + lost.inputTokens, outputTokens: response.usage.outputTokens + lost.outputTokens },
            costUsd: response.costUsd + lost.costUsd,
          };
        } catch (error) {
          if (signal.aborted || error instanceof APIUserAbortError) throw error;
          if (error instanceof PartialAttemptError) {
            const price = priceOf(model, deps.endpoint.prices);
            lost = addUsage(lost, { ...error.partialUsage, costUsd: costOfCall(price, error.partialUsage) });
          }
          lastError = error;
          last = judgeModelFailure(error);
          if (!last.retryable || attempt === deps.retry.maxAttempts) break;
          const delayMs = last.retryAfterMs ?? withJitter(backoffDelayMs(deps.retry, attempt), random());
          deps.events.publish({
            type: 'model.retrying', turn: input.turn, model, attempt: attempt + 1, delayMs, error: last.reason, retryAfter: last.retryAfterMs !== undefined,
          });
          deps.trace.addEvent('model.retry', { 'gen_ai.request.model': model, 'troupe.retry.attempt': attempt + 1, 'troupe.retry.delay_ms': delayMs });
          troupeMetrics().modelRetries.add(1, { [GenAiAttribute.requestModel]: model, [GenAiAttribute.errorType]: last.reason.split(':')[0] ?? 'error' });
          deps.logger.info({ model, attempt: attempt + 1, delayMs, reason: last.reason }, 'retrying model call');
          await abortableSleep(delayMs, signal);
        }
      }
    }
    throw new ModelUnavailableError(
      `${models.length > 1 ? `Every model (${models.join(', ')}) failed` : `The model ${input.model} failed`}: ${last?.reason ?? 'unknown error'}`,
      { cause: lastError },
    );
  };
}

const captured = (deps: Pick<ModelCallDependencies, 'scrub'>, text: string) => (deps.scrub ? deps.scrub(text) : text);

/** One streamed chat completion on one model: its own `chat {model}` span, no retries. */
async function callOnce(deps: ModelCallDependencies, input: CallModelInput, signal: AbortSignal): Promise<ModelResponse> {
    const { endpoint } = deps;
    const baseUrl = new URL(endpoint.client.baseURL);
    const span = startChatSpan(deps.tracer, deps.trace.turnContext(input.turn), {
      sessionId: input.sessionId,
      model: input.model,
      providerName: endpoint.providerName,
      serverAddress: baseUrl.hostname,
      serverPort: Number(baseUrl.port || (baseUrl.protocol === 'https:' ? 443 : 80)),
    });
    const started = performance.now();
    const metricAttributes = {
      [GenAiAttribute.operationName]: 'chat', [GenAiAttribute.providerName]: endpoint.providerName, [GenAiAttribute.requestModel]: input.model,
    };
    if (input.offer) {
      span.setAttribute(TroupeAttribute.workflowState, input.offer.phases.join(' › '));
      deps.trace.recordPhases(input.turn, input.offer.phases);
    }
    if (deps.captureContent) span.setAttribute(GenAiAttribute.inputMessages, captured(deps, JSON.stringify(toChatCompletionMessages(input.messages))));
    // This attempt's own abort: the session's signal, or one of its two stall timers.
    const attempt = new AbortController();
    const forward = () => attempt.abort(signal.reason);
    signal.addEventListener('abort', forward, { once: true });
    let stalled: string | undefined;
    const stall = (why: string) => () => {
      stalled = why;
      attempt.abort(new ModelStallError(why));
    };
    const requestMs = endpoint.timeouts?.requestMs ?? 180_000;
    const idleMs = endpoint.timeouts?.idleMs ?? 60_000;
    const overall = setTimeout(stall(`${input.model} did not finish its answer within ${requestMs} ms`), requestMs);
    let idle = setTimeout(stall(`${input.model} sent nothing for ${idleMs} ms`), idleMs);
    let streamed = false;
    let content = '';
    const calls = new ToolCallDeltas();
    try {
      const tools = deps.tools(input.offer);
      const stream = await endpoint.client.chat.completions.create(
        {
          model: input.model,
          messages: toChatCompletionMessages(input.messages),
          ...(tools.length > 0 ? { tools } : {}),
          stream: true,
          stream_options: { include_usage: true },
        },
        // Troupe's retry loop is the only one: retries in the client too would multiply.
        { signal: attempt.signal, maxRetries: 0, timeout: requestMs },
      );
      let refusal = '';
      let responseModel = input.model;
      let responseId: string | undefined;
      let finishReason: string | null = null;
      let reported: { prompt_tokens: number; completion_tokens: number } | undefined;
      for await (const chunk of stream) {
        streamed = true;
        clearTimeout(idle);
        idle = setTimeout(stall(`${input.model} sent nothing for ${idleMs} ms`), idleMs);
        responseModel = chunk.model || responseModel;
        responseId ??= chunk.id;
        if (chunk.usage) reported = chunk.usage;
        const choice = chunk.choices[0];
        if (!choice) continue;
        if (choice.delta.content) content += choice.delta.content;
        if (choice.delta.refusal) refusal += choice.delta.refusal;
        for (const delta of choice.delta.tool_calls ?? []) calls.add(delta);
        if (choice.finish_reason) finishReason = choice.finish_reason;
      }
      // An aborted stream can end quietly instead of throwing: what it produced is not an answer.
      if (stalled) throw new ModelStallError(stalled);
      if (signal.aborted) throw signal.reason;
      const toolCalls: ModelToolCall[] = calls.toolCalls(input.turn);
      const text = content !== '' ? content : null;
      const usage = reported
        ? { inputTokens: reported.prompt_tokens, outputTokens: reported.completion_tokens }
        : {
            inputTokens: estimateTokens(JSON.stringify(input.messages)),
            outputTokens: estimateTokens((text ?? '') + JSON.stringify(toolCalls)),
          };
      if (!reported) deps.logger.warn({ model: responseModel }, 'the endpoint reported no usage; tokens are estimated');
      const price = priceOf(responseModel, endpoint.prices) ?? priceOf(input.model, endpoint.prices);
      if (!price && !warnedUnpriced.has(input.model)) {
        warnedUnpriced.add(input.model);
        deps.logger.warn({ model: input.model }, 'no price known for this model: its cost counts as 0 (set TROUPE_PRICES)');
      }
      const response: ModelResponse = {
        model: responseModel,
        content: text,
        refusal: refusal !== '' ? refusal : null,
        toolCalls,
        finishReason,
        usage,
        costUsd: costOfCall(price, usage),
      };
      span.setAttributes({
        [GenAiAttribute.responseModel]: responseModel,
        [GenAiAttribute.finishReasons]: [finishReason ?? 'unknown'],
        [GenAiAttribute.inputTokens]: usage.inputTokens,
        [GenAiAttribute.outputTokens]: usage.outputTokens,
        [TroupeAttribute.costUsd]: response.costUsd,
      });
      if (responseId) span.setAttribute(GenAiAttribute.responseId, responseId);
      if (deps.captureContent) {
        span.setAttribute(GenAiAttribute.outputMessages, captured(deps, JSON.stringify([{ role: 'assistant', content: text, tool_calls: toolCalls, finish_reason: finishReason }])));
      }
      const recorded = troupeMetrics();
      const withResponse = { ...metricAttributes, [GenAiAttribute.responseModel]: responseModel };
      recorded.tokenUsage.record(usage.inputTokens, { ...withResponse, [GenAiAttribute.tokenType]: 'input' });
      recorded.tokenUsage.record(usage.outputTokens, { ...withResponse, [GenAiAttribute.tokenType]: 'output' });
      recorded.operationDuration.record((performance.now() - started) / 1000, withResponse);
      if (response.costUsd > 0) {
        recorded.cost.add(response.costUsd, {
          [GenAiAttribute.requestModel]: input.model,
          ...(deps.attribution ? { [GenAiAttribute.agentName]: deps.attribution.agent, [TroupeAttribute.tenant]: deps.attribution.tenant ?? 'none' } : {}),
        });
      }
      deps.events.publish({
        type: 'model.responded',
        turn: input.turn,
        model: responseModel,
        content: text,
        toolCalls,
        finishReason,
        usage: { ...usage, costUsd: response.costUsd },
        totals: addUsage(deps.usageSoFar(), { ...usage, costUsd: response.costUsd }),
        durationMs: Number((performance.now() - started).toFixed(3)),
      });
      return response;
    } catch (caught) {
      const error = stalled && !signal.aborted ? new ModelStallError(stalled) : caught;
      const message = error instanceof Error ? error.message : String(error);
      recordSpanFailure(span, error instanceof Error ? error.constructor.name : 'Error', message);
      troupeMetrics().operationDuration.record((performance.now() - started) / 1000, { ...metricAttributes, [GenAiAttribute.errorType]: error instanceof Error ? error.constructor.name : 'Error' });
      deps.logger.warn({ err: error, turn: input.turn, model: input.model }, 'model call failed');
      if (streamed && !signal.aborted) {
        throw new PartialAttemptError(error, {
          inputTokens: estimateTokens(JSON.stringify(input.messages)),
          outputTokens: estimateTokens(content + JSON.stringify(calls.toolCalls(input.turn))),
        });
      }
      throw error;
    } finally {
      clearTimeout(overall);
      clearTimeout(idle);
      signal.removeEventListener('abort', forward);
      span.end();
    }
}
