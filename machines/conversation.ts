import * as z from 'zod';
import { ContextSummary } from './contextAssembly.ts';

/** A tool call exactly as the model asked for it: the arguments are the model's raw JSON text. */
export const ModelToolCall = z.object({
  id: z.string(),
  name: z.string(),
  arguments: z.string(),
});
export type ModelToolCall = z.infer<typeof ModelToolCall>;

/**
 * One message of the conversation a session keeps. Provider-neutral: the model actor maps it to
 * the wire format of the endpoint it talks to.
 */
export const ChatMessage = z.discriminatedUnion('role', [
  z.object({ role: z.literal('system'), content: z.string() }),
  z.object({ role: z.literal('user'), content: z.string() }),
  z.object({
    role: z.literal('assistant'),
    content: z.string().nullable(),
    toolCalls: z.array(ModelToolCall).optional(),
  }),
  z.object({ role: z.literal('tool'), toolCallId: z.string(), content: z.string() }),
]);
export type ChatMessage = z.infer<typeof ChatMessage>;

/** What one model call produced, with what it cost. */
export const ModelResponse = z.object({
  /** The model that answered, as the endpoint reported it. */
  model: z.string(),
  content: z.string().nullable(),
  /** The model declined (OpenAI's `refusal`); kept apart from content so it is never taken for an answer. */
  refusal: z.string().nullable().default(null),
  toolCalls: z.array(ModelToolCall),
  finishReason: z.string().nullable(),
  usage: z.object({ inputTokens: z.number().int().nonnegative(), outputTokens: z.number().int().nonnegative() }),
  costUsd: z.number().nonnegative(),
  /** How the request was assembled: what the session keeps from it (a new summary) and what corrects its token counts. */
  context: z.object({
    /** The request's size as counted before sending, without calibration: the reported input tokens correct the count. */
    countedInputTokens: z.number().int().nonnegative(),
    /** The input tokens the model reported for this request alone (the session's usage may add a summary's). */
    reportedInputTokens: z.number().int().nonnegative().optional(),
    /** Counted with the model's own tokenizer (not the estimate). */
    exactCount: z.boolean(),
    summary: ContextSummary.optional(),
  }).optional(),
  /** Answered from the cache: nothing was spent. */
  cached: z.boolean().optional(),
  /** What the cached answer cost when it was first asked for: what the cache saved. */
  savedUsd: z.number().nonnegative().optional(),
});
export type ModelResponse = z.infer<typeof ModelResponse>;
