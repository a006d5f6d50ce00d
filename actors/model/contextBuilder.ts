import type { ChatCompletionFunctionTool } from 'openai/resources/chat/completions';
import { assembleContext, type AssembledContext, type ContextRemoval, type ContextSummary } from '../../machines/contextAssembly.ts';
import type { ChatMessage } from '../../machines/conversation.ts';
import type { CallModelInput } from '../../machines/sessionProtocol.ts';
import { noUsage, type Usage } from '../../machines/usage.ts';
import { defaultModelTable, profileOf, type ModelTable } from '../../models/modelTable.ts';
import { costOfCall, priceOf } from '../../models/priceTable.ts';
import { tokenCounterFor } from '../../models/tokenCounter.ts';
import { troupeMetrics } from '../../observability/metrics.ts';
import { GenAiAttribute, recordSpanFailure, startChatSpan, TroupeAttribute } from '../../observability/spans.ts';
import type { ModelCallDependencies } from './modelCall.ts';

/** The request for one model, within its context budget. */
export interface PreparedRequest {
  messages: ChatMessage[];
  /** The request's size as counted before sending, without calibration. */
  countedInputTokens: number;
  exactCount: boolean;
  /** A summary written for this request, for the session to keep. */
  summary?: ContextSummary;
  /** What writing the summary cost: it counts toward the session's usage and budgets. */
  summaryUsage: Usage;
}

/** Even the system prompt, the task and the newest turn do not fit the model's window. */
export class ContextOverflowError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

const summaryInstructions = [
  'You summarise the earlier part of an AI agent\'s working session, so that the agent can go on without it.',
  'Keep what the agent will need: the goal, decisions made, facts and figures found (and where they came from), the tool calls made and what they returned in brief, what failed and why, and what is still open.',
  'Write plain, dense text. No preamble.',
].join('\n');

/** The turns to summarise as text for the summary model, tool results trimmed so the request fits. */
function transcriptOf(messages: ChatMessage[], maxChars: number): string {
  const lines = messages.map((m) => {
    switch (m.role) {
      case 'assistant':
        return `assistant: ${m.content ?? ''}${(m.toolCalls ?? []).map((c) => `\n  → ${c.name}(${c.arguments.slice(0, 500)})`).join('')}`;
      case 'tool':
        return `tool result: ${m.content.length > 1_000 ? `${m.content.slice(0, 1_000)}… (${m.content.length} characters in all)` : m.content}`;
      default:
        return `${m.role}: ${m.content}`;
    }
  });
  const text = lines.join('\n');
  // The oldest part goes first when the turns are too long even trimmed: the newest matter most.
  return text.length > maxChars ? `…${text.slice(text.length - maxChars)}` : text;
}

/**
 * Builds the request for `model` from the session's state within the model's context budget
 * (see `assembleContext`), writing a summary of older turns with a model call of its own when
 * dropping low-value content is not enough. Publishes what it assembled and what it removed, and
 * puts the breakdown on the turn's span.
 */
export async function prepareRequest(
  deps: ModelCallDependencies, input: CallModelInput, model: string, tools: ChatCompletionFunctionTool[], signal: AbortSignal,
): Promise<PreparedRequest> {
  const table: ModelTable = deps.models ?? defaultModelTable;
  const profile = profileOf(model, table);
  const count = tokenCounterFor(profile.tokenizer);
  const toolTokens = tools.length > 0 ? count(JSON.stringify(tools)) : 0;
  const assemble = (summary: ContextSummary | null, canSummarise: boolean): AssembledContext =>
    assembleContext({
      conversation: input.messages, summary, ledger: input.ledger, toolTokens, contextWindow: profile.contextWindow,
      settings: input.contextSettings, count, calibration: input.calibration, canSummarise,
    });
  let summary = input.summary;
  let assembled = assemble(summary, true);
  let summaryUsage = noUsage;
  const removed: ContextRemoval[] = [...assembled.removed];
  let written: ContextSummary | undefined;
  if (assembled.summarise) {
    const plan = assembled.summarise;
    try {
      const result = await writeSummary(deps, { ...input, model }, plan.messages, summary, signal);
      summaryUsage = result.usage;
      written = { text: result.text, throughIndex: plan.throughIndex, throughTurn: plan.throughTurn };
      summary = written;
      const turnsFrom = (input.summary?.throughTurn ?? 0) + 1;
      removed.push({
        kind: 'turns_summarised', turns: Array.from({ length: Math.max(0, plan.throughTurn - turnsFrom + 1) }, (_, i) => turnsFrom + i),
        tokens: plan.messages.reduce((n, m) => n + count(m.role === 'assistant' ? `${m.content ?? ''}${JSON.stringify(m.toolCalls ?? [])}` : m.content), 0),
        summaryTokens: count(result.text),
      });
    } catch (error) {
      if (signal.aborted) throw error;
      deps.logger.warn({ err: error, turn: input.turn }, 'could not write a summary of older turns; windowing the conversation instead');
    }
    assembled = assemble(summary, false);
    removed.push(...assembled.removed.filter((r) => r.kind !== 'tool_results_dropped'));
  }
  const { breakdown } = assembled;
  deps.events.publish({ type: 'context.assembled', turn: input.turn, model, contextWindow: profile.contextWindow, tokenizer: profile.tokenizer, breakdown });
  if (removed.length > 0) deps.events.publish({ type: 'context.compressed', turn: input.turn, removed });
  deps.trace.recordContext(input.turn, breakdown, removed);
  if (assembled.overflow) {
    throw new ContextOverflowError(
      `The request does not fit ${model}'s context window (${profile.contextWindow} tokens, ${breakdown.outputHeadroom} kept for the answer) even with older turns removed: the system prompt, the task, the tool definitions and the newest turn take ${breakdown.total}.`,
    );
  }
  return {
    messages: assembled.messages,
    countedInputTokens: Math.round(breakdown.total / input.calibration),
    exactCount: profile.tokenizer !== 'estimate',
    ...(written ? { summary: written } : {}),
    summaryUsage,
  };
}

/** One summary, written by the agent's summary model (or the turn's) in a call of its own. */
async function writeSummary(
  deps: ModelCallDependencies, input: CallModelInput, messages: ChatMessage[], previous: ContextSummary | null, signal: AbortSignal,
): Promise<{ text: string; usage: Usage }> {
  const model = input.contextSettings.summaryModel ?? input.model;
  const profile = profileOf(model, deps.models ?? defaultModelTable);
  const room = Math.max(1_000, (profile.contextWindow - input.contextSettings.summaryMaxTokens - 1_000) * 3);
  const request: ChatMessage[] = [
    { role: 'system', content: summaryInstructions },
    {
      role: 'user',
      content: `Summarise the earlier turns of this session for the agent, in at most ${input.contextSettings.summaryMaxTokens} tokens.${previous ? `\n\nThe summary so far (of turns 1 to ${previous.throughTurn}):\n${previous.text}` : ''}\n\nThe turns to add to it:\n${transcriptOf(messages, room)}`,
    },
  ];
  const endpoint = deps.endpoint;
  const baseUrl = new URL(endpoint.client.baseURL);
  const span = startChatSpan(deps.tracer, deps.trace.turnContext(input.turn), {
    sessionId: input.sessionId, model, providerName: endpoint.providerName, serverAddress: baseUrl.hostname,
    serverPort: Number(baseUrl.port || (baseUrl.protocol === 'https:' ? 443 : 80)),
  });
  span.setAttribute(TroupeAttribute.contextPurpose, 'summary');
  const started = performance.now();
  const attributes = { [GenAiAttribute.operationName]: 'chat', [GenAiAttribute.providerName]: endpoint.providerName, [GenAiAttribute.requestModel]: model };
  try {
    const completion = await endpoint.client.chat.completions.create(
      { model, messages: request.map((m) => ({ role: m.role as 'system' | 'user', content: (m as { content: string }).content })), max_tokens: input.contextSettings.summaryMaxTokens },
      { signal, maxRetries: 1 },
    );
    const text = completion.choices[0]?.message.content?.trim();
    if (!text) throw new Error('the summary model answered with no text');
    const usage = { inputTokens: completion.usage?.prompt_tokens ?? 0, outputTokens: completion.usage?.completion_tokens ?? 0 };
    const costUsd = costOfCall(priceOf(completion.model ?? model, endpoint.prices) ?? priceOf(model, endpoint.prices), usage);
    span.setAttributes({
      [GenAiAttribute.responseModel]: completion.model ?? model, [GenAiAttribute.inputTokens]: usage.inputTokens,
      [GenAiAttribute.outputTokens]: usage.outputTokens, [TroupeAttribute.costUsd]: costUsd,
    });
    const metrics = troupeMetrics();
    metrics.tokenUsage.record(usage.inputTokens, { ...attributes, [GenAiAttribute.tokenType]: 'input' });
    metrics.tokenUsage.record(usage.outputTokens, { ...attributes, [GenAiAttribute.tokenType]: 'output' });
    metrics.operationDuration.record((performance.now() - started) / 1000, attributes);
    if (costUsd > 0) metrics.cost.add(costUsd, { [GenAiAttribute.requestModel]: model, ...(deps.attribution ? { [GenAiAttribute.agentName]: deps.attribution.agent, [TroupeAttribute.tenant]: deps.attribution.tenant ?? 'none' } : {}) });
    deps.logger.info({ turn: input.turn, model, usage }, 'wrote a summary of older turns');
    return { text, usage: { ...usage, costUsd } };
  } catch (error) {
    recordSpanFailure(span, error instanceof Error ? error.constructor.name : 'Error', error instanceof Error ? error.message : String(error));
    throw error;
  } finally {
    span.end();
  }
}
