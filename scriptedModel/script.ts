import * as z from 'zod';

/**
 * The JSON format of a scripted-model trajectory. Objects are strict so that a misspelt key
 * (`tool_calls`, `finish_reason`) is reported when the file is loaded instead of silently
 * changing what the script plays.
 */

/** One tool call a step asks for. A string `arguments` is sent verbatim, so scripts can send malformed JSON. */
export const ScriptToolCall = z.strictObject({
  /** Defaults to `call_<step>_<index>`. */
  id: z.string().min(1).optional(),
  name: z.string().min(1),
  arguments: z.union([z.record(z.string(), z.unknown()), z.string()]),
});
export type ScriptToolCall = z.infer<typeof ScriptToolCall>;

/** The finish reasons a step may report; OpenAI's, minus the deprecated `function_call`. */
export const FinishReason = z.enum(['stop', 'tool_calls', 'length', 'content_filter']);
export type FinishReason = z.infer<typeof FinishReason>;

/** Token counts a step reports instead of the ceil(chars / 4) estimate. */
export const ScriptUsage = z.strictObject({
  promptTokens: z.int().nonnegative(),
  completionTokens: z.int().nonnegative(),
});
export type ScriptUsage = z.infer<typeof ScriptUsage>;

/**
 * One assistant turn. `content` and string tool-call arguments may hold `{{tool:<id>[:<path>]}}`
 * templates, filled from the tool messages of the received conversation.
 */
export const ScriptStep = z
  .strictObject({
    content: z.string().optional(),
    toolCalls: z.array(ScriptToolCall).optional(),
    /** Defaults to `tool_calls` when the step has tool calls, else `stop`. */
    finishReason: FinishReason.optional(),
    usage: ScriptUsage.optional(),
    /** The model the response reports; defaults to the requested one. */
    model: z.string().min(1).optional(),
  })
  .refine((step) => step.content !== undefined || (step.toolCalls?.length ?? 0) > 0, {
    message: 'a step needs "content" or at least one entry in "toolCalls"',
  });
export type ScriptStep = z.infer<typeof ScriptStep>;

/**
 * A whole script: chosen when the first user message includes `match.userIncludes`
 * (case-insensitive); step k answers the request whose conversation already has k assistant messages.
 */
export const Script = z.strictObject({
  name: z.string().min(1),
  description: z.string().optional(),
  match: z.strictObject({ userIncludes: z.string().min(1) }),
  steps: z.array(ScriptStep).min(1),
});
export type Script = z.infer<typeof Script>;
