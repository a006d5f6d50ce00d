import type { ChatCompletion, ChatCompletionChunk } from 'openai/resources/chat/completions';
import { toolContentsOf, type ChatRequest } from './chatRequest.ts';
import type { FinishReason, ScriptFault, ScriptStep } from './script.ts';
import { renderArguments, renderTemplates, type TemplateResult } from './templates.ts';

/**
 * Pure translation of a chosen script step into OpenAI chat-completion wire objects. Nothing
 * here does I/O or reads the clock: the server passes the id and timestamp in.
 */

/** A step with its templates filled and its defaults applied: exactly what the response will say. */
export interface ScriptedTurn {
  readonly model: string;
  readonly content: string | null;
  /** Set only by a `refusal` fault; the turn then has no content and no tool calls. */
  readonly refusal: string | null;
  readonly toolCalls: ReadonlyArray<{ id: string; name: string; arguments: string }>;
  readonly finishReason: FinishReason;
  readonly usage: { promptTokens: number; completionTokens: number };
}

/** The identity every object of one response shares. */
export interface CompletionEnvelope {
  /** `chatcmpl-…`; see {@link newCompletionId}. */
  readonly id: string;
  /** Unix seconds. */
  readonly created: number;
}

/** The faults that change what a response says, rather than how the HTTP exchange goes. */
export type TurnFault = Extract<ScriptFault, { kind: 'malformed_tool_call' | 'refusal' | 'empty' }>;

/** The arguments a `malformed_tool_call` fault sends: JSON cut off after the first key. */
export const malformedArguments = '{"broken": ';

/** What a `refusal` fault says when it sets no `message`. */
export const defaultRefusal = "I can't help with that.";

/** A fresh `chatcmpl-<random>` id. */
export function newCompletionId(): string {
  return `chatcmpl-${crypto.randomUUID().replaceAll('-', '').slice(0, 24)}`;
}

/**
 * Fills the step's templates from the request's tool messages and applies the defaults: tool-call
 * ids `call_<step>_<index>`, finish reason `tool_calls` or `stop`, the requested model, and usage
 * estimated as ceil(chars / 4) of the request messages and of the output. Fails with the message
 * of the first template reference that cannot be resolved (checked even when a `fault` replaces
 * the output, so a broken script is reported on the first request). A `fault` reshapes the turn:
 * `malformed_tool_call` replaces every tool call's arguments with {@link malformedArguments};
 * `refusal` and `empty` drop the content and tool calls and finish with `stop`, `refusal` setting
 * the refusal text.
 */
export function resolveTurn(request: ChatRequest, step: ScriptStep, stepIndex: number, fault?: TurnFault): TemplateResult<ScriptedTurn> {
  const toolContents = toolContentsOf(request.messages);
  let content: string | null = null;
  if (step.content !== undefined) {
    const rendered = renderTemplates(step.content, toolContents);
    if (!rendered.ok) return rendered;
    content = rendered.value;
  }
  const toolCalls: Array<{ id: string; name: string; arguments: string }> = [];
  for (const [index, call] of (step.toolCalls ?? []).entries()) {
    const rendered = renderArguments(call.arguments, toolContents);
    if (!rendered.ok) return rendered;
    toolCalls.push({ id: call.id ?? `call_${stepIndex}_${index}`, name: call.name, arguments: rendered.value });
  }
  let refusal: string | null = null;
  let finishReason = step.finishReason;
  if (fault?.kind === 'malformed_tool_call') {
    for (const call of toolCalls) call.arguments = malformedArguments;
  } else if (fault?.kind === 'refusal' || fault?.kind === 'empty') {
    content = null;
    toolCalls.length = 0;
    if (fault.kind === 'refusal') refusal = fault.message ?? defaultRefusal;
    finishReason = 'stop';
  }
  const outputChars = (content ?? refusal ?? '').length + toolCalls.reduce((sum, c) => sum + c.name.length + c.arguments.length, 0);
  return {
    ok: true,
    value: {
      model: step.model ?? request.model,
      content,
      refusal,
      toolCalls,
      finishReason: finishReason ?? (toolCalls.length > 0 ? 'tool_calls' : 'stop'),
      usage: step.usage ?? { promptTokens: estimateTokens(JSON.stringify(request.messages).length), completionTokens: estimateTokens(outputChars) },
    },
  };
}

/** The non-streaming `chat.completion` object for a turn. */
export function toChatCompletion(turn: ScriptedTurn, envelope: CompletionEnvelope): ChatCompletion {
  return {
    id: envelope.id,
    object: 'chat.completion',
    created: envelope.created,
    model: turn.model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: turn.content,
          refusal: turn.refusal,
          ...(turn.toolCalls.length > 0
            ? { tool_calls: turn.toolCalls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.arguments } })) }
            : {}),
        },
        logprobs: null,
        finish_reason: turn.finishReason,
      },
    ],
    usage: usageOf(turn),
  };
}

/**
 * The `chat.completion.chunk` objects of a streamed turn, in order: the role (with the first
 * piece of content), the rest of the content in several deltas (a refusal likewise, in `refusal`
 * deltas after a first delta with `content: null`), each tool call's header (id,
 * name, empty arguments) followed by its arguments in 2-3 fragments, the finish reason, and, when
 * `includeUsage`, a last chunk with no choices and the usage (earlier chunks then carry
 * `usage: null`, as OpenAI's do).
 */
export function toChatCompletionChunks(turn: ScriptedTurn, envelope: CompletionEnvelope, options: { includeUsage: boolean }): ChatCompletionChunk[] {
  const chunks: ChatCompletionChunk[] = [];
  const push = (delta: ChatCompletionChunk.Choice.Delta, finishReason: FinishReason | null = null) => {
    chunks.push({
      id: envelope.id,
      object: 'chat.completion.chunk',
      created: envelope.created,
      model: turn.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
      ...(options.includeUsage ? { usage: null } : {}),
    });
  };
  if (turn.refusal !== null) {
    const [firstPiece = '', ...restPieces] = splitText(turn.refusal, contentPieceCount(turn.refusal));
    push({ role: 'assistant', content: null, refusal: firstPiece });
    for (const piece of restPieces) push({ refusal: piece });
  } else {
    const pieces = turn.content === null ? [] : turn.content === '' ? [''] : splitText(turn.content, contentPieceCount(turn.content));
    const [firstPiece = null, ...restPieces] = pieces;
    push({ role: 'assistant', content: firstPiece });
    for (const piece of restPieces) push({ content: piece });
  }
  for (const [index, call] of turn.toolCalls.entries()) {
    push({ tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }] });
    for (const fragment of splitText(call.arguments, argumentPieceCount(call.arguments))) {
      push({ tool_calls: [{ index, function: { arguments: fragment } }] });
    }
  }
  push({}, turn.finishReason);
  if (options.includeUsage) {
    chunks.push({ id: envelope.id, object: 'chat.completion.chunk', created: envelope.created, model: turn.model, choices: [], usage: usageOf(turn) });
  }
  return chunks;
}

function usageOf(turn: ScriptedTurn) {
  const { promptTokens, completionTokens } = turn.usage;
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

// Enough deltas that a client which keeps only the last one is caught, without one per character.
function contentPieceCount(text: string): number {
  return Math.min(12, Math.max(2, Math.ceil(text.length / 20)));
}

// Two or three fragments: enough that a client which does not concatenate by index breaks.
function argumentPieceCount(text: string): number {
  return text.length < 12 ? 2 : 3;
}

/**
 * Splits into at most `count` non-empty pieces of near-equal length, never inside a surrogate
 * pair (a split emoji would be invalid UTF-16 in each JSON chunk).
 */
export function splitText(text: string, count: number): string[] {
  const chars = Array.from(text);
  const pieces = Math.max(1, Math.min(count, chars.length));
  const size = Math.ceil(chars.length / pieces);
  const result: string[] = [];
  for (let i = 0; i < chars.length; i += size) result.push(chars.slice(i, i + size).join(''));
  return result;
}
