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

/** The longest `delay` a fault may ask for: the `openai` client's default request timeout. */
export const maxFaultDelayMs = 600_000;

// Every fault kind may be limited to some attempts and to one requested model.
const faultScope = {
  /**
   * Fault only the first N requests of each conversation that reach this step (a conversation is
   * its exact messages, so a retry is the same conversation); then the step answers normally.
   * By default every request is faulted.
   */
  times: z.int().positive().optional(),
  /** Fault only requests whose `model` is this one, so a fallback model is answered normally. */
  model: z.string().min(1).optional(),
};

/**
 * A failure a step injects instead of (or before) its normal answer, so that an agent's recovery
 * can be tested: an HTTP error, a delay, a dropped connection, malformed tool-call arguments, a
 * refusal, or an empty answer.
 */
export const ScriptFault = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('http_error'),
    status: z.int().min(400).max(599),
    /** Sent as `Retry-After` (whole seconds, rounded up) and `retry-after-ms` (exact). */
    retryAfterSeconds: z.number().nonnegative().optional(),
    /** The error message; defaults to one naming the script and step. */
    message: z.string().min(1).optional(),
    ...faultScope,
  }),
  /** Answers normally after `delayMs`; a streamed answer sends its headers, then waits before the first chunk. */
  z.strictObject({ kind: z.literal('delay'), delayMs: z.int().positive().max(maxFaultDelayMs), ...faultScope }),
  /** Destroys the connection without a response. */
  z.strictObject({ kind: z.literal('disconnect'), ...faultScope }),
  /** Replaces the arguments of every tool call of the step with the invalid JSON `{"broken": `. */
  z.strictObject({ kind: z.literal('malformed_tool_call'), ...faultScope }),
  /** Answers with `refusal` set to `message` (default "I can't help with that."), no content and no tool calls. */
  z.strictObject({ kind: z.literal('refusal'), message: z.string().min(1).optional(), ...faultScope }),
  /** Answers with no content and no tool calls. */
  z.strictObject({ kind: z.literal('empty'), ...faultScope }),
]);
export type ScriptFault = z.infer<typeof ScriptFault>;

/**
 * One assistant turn. `content` and string tool-call arguments may hold `{{tool:<id>[:<path>]}}`
 * templates, filled from the tool messages of the received conversation. A `fault` still needs
 * the normal answer: it is what the step plays once the fault's `times` are used up.
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
    fault: ScriptFault.optional(),
    /**
     * The exact tools (function names, in any order) the request must offer: any other set is
     * answered 400 `unexpected_tools`, naming both. How a trajectory checks, across processes,
     * what the agent offered its model at that step.
     */
    expectTools: z.array(z.string().min(1)).optional(),
  })
  .refine((step) => step.content !== undefined || (step.toolCalls?.length ?? 0) > 0, {
    message: 'a step needs "content" or at least one entry in "toolCalls"',
  })
  .refine((step) => step.fault?.kind !== 'malformed_tool_call' || (step.toolCalls?.length ?? 0) > 0, {
    message: 'a "malformed_tool_call" fault needs a step with at least one entry in "toolCalls"',
    path: ['fault', 'kind'],
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
