import * as z from 'zod';
import type { Context } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { DelegatedSpending, Delegation } from '../machines/delegation.ts';
import { RetryPolicy, type RetryPolicyInput } from '../machines/retryPolicy.ts';
import { maxTimerDelayMs, maxTimerDelayText } from '../machines/timerDelay.ts';

/** What a handler gets besides its arguments. */
export interface ToolContext {
  /** Aborted when the call's deadline passes; pass it to any IO. (A draining worker lets calls in flight finish.) */
  readonly signal: AbortSignal;
  /** Unique per call and stable across retries: the idempotency key. */
  readonly callId: string;
  readonly sessionId: string;
  /** Epoch milliseconds after which nobody waits for this call's result. */
  readonly deadline: number;
  readonly logger: Logger;
  /** The trace context of the worker's `execute_tool` span: spans the handler starts belong under it. */
  readonly trace: Context;
  /** Set when the call delegates to a specialist: its session id, depth and the most it may spend. */
  readonly delegation?: Delegation;
  /**
   * For side-effecting calls: the claim's fencing token, larger for every later owner of the same
   * call. A store the handler writes to can refuse a write carrying a smaller token than one it
   * already saw, so a worker that comes back late cannot overwrite what the new owner did.
   */
  readonly fencingToken?: number;
  /** Reports model spending made on the call's behalf (a specialist's session); it travels back with the reply. */
  reportSpending(spent: DelegatedSpending): void;
  /**
   * Reports how far the call has got (`progress`, out of `total` when known, with a short
   * `message`): the session shows it as a `tool.call.progress` event. Reports closer together than
   * a fifth of a second are dropped, the last one excepted; a caller that asked for none gets none.
   * Optional so that a context made by hand (a tool's own tests) need not have it.
   */
  reportProgress?(progress: { progress: number; total?: number; message?: string }): void;
}

/** What a tool's `reconcile` answers about a call whose worker died while it ran. */
export const notDone = 'not_done' as const;

/**
 * Settles a call left in doubt (its handler started on a worker that died before recording the
 * outcome): look the effect up and return the call's result when it happened, or `'not_done'` when
 * it did not (the call then runs). Throwing leaves the call in doubt.
 */
export type ToolReconciler<Input, Output> = (input: Input, context: ToolContext) => Promise<Output | typeof notDone> | Output | typeof notDone;

export interface ToolSpec<Input extends z.ZodType, Output extends z.ZodType> {
  /** `<domain>_<action>`, lower case: also the OpenAI function name and the NATS endpoint name. */
  name: string;
  /** Written for the model: what the tool does and when to use it. */
  description: string;
  input: Input;
  /**
   * The input's JSON Schema as it was written, when the tool's schema comes from elsewhere (an MCP
   * server's): advertised as it is to the model and the orchestrators instead of `input` written
   * back, which may lose what zod cannot say. The worker still checks `input`.
   */
  inputJsonSchema?: Record<string, unknown>;
  output: Output;
  handler: (input: z.output<Input>, context: ToolContext) => Promise<z.input<Output>> | z.input<Output>;
  /** True when the tool changes something outside the worker (a file written, a message sent). */
  sideEffects?: boolean;
  /** How long one attempt may run; the orchestrator sends this as the attempt's deadline. At most 2^31−1 ms (a timer's limit). */
  timeoutMs?: number;
  /** How the orchestrator retries retryable failures (timeouts, unavailable pools, internal errors). */
  retry?: RetryPolicyInput;
  /** Tools to try instead, in order, with the same arguments, when this one is unavailable. */
  fallbacks?: string[];
  /**
   * A person must approve each call before it runs; the worker refuses a call that does not carry
   * the approval. Deployments may require approval for more tools (the orchestrator's policy).
   */
  requiresApproval?: boolean;
  /**
   * How to undo a call: `capture` runs just before the handler and returns what undoing will need
   * (say, a file's previous contents), kept in the session's ledger; `undo` puts things back from it.
   * A side-effecting tool without one cannot be rolled back, and rollbacks say so.
   */
  compensation?: ToolCompensation<z.output<Input>>;
  /**
   * For side-effecting tools: how to find out whether a call whose worker died mid-call took effect
   * (say, by looking the order up by `callId`). Without it such a call ends `IN_DOUBT` and its
   * session goes to a person.
   */
  reconcile?: ToolReconciler<z.output<Input>, z.input<Output>>;
}

export interface ToolCompensation<Input> {
  capture: (input: Input, context: ToolContext) => Promise<unknown> | unknown;
  undo: (captured: unknown, context: ToolContext) => Promise<void> | void;
}

/** A tool as workers serve it; build it with {@link defineTool}. */
export interface ToolDefinition<Input extends z.ZodType = z.ZodType, Output extends z.ZodType = z.ZodType>
  extends Required<Omit<ToolSpec<Input, Output>, 'handler' | 'retry' | 'compensation' | 'reconcile' | 'inputJsonSchema'>> {
  readonly inputJsonSchema: Record<string, unknown> | undefined;
  readonly compensation: ToolCompensation<z.output<Input>> | undefined;
  readonly reconcile: ToolReconciler<z.output<Input>, z.input<Output>> | undefined;
  readonly domain: string;
  readonly retry: RetryPolicy;
  readonly handler: ToolSpec<Input, Output>['handler'];
}

/** Thrown at definition time for a tool that could never be served or called. */
export class ToolDefinitionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

// OpenAI function names allow [A-Za-z0-9_-]{1,64}; the domain prefix is what routes a call to its pool.
const toolNamePattern = /^([a-z][a-z0-9]*)_[a-z0-9_]+$/;
export const defaultToolTimeoutMs = 30_000;

/**
 * Defines a tool once: its zod schemas are the single source of truth for the JSON Schema the
 * model sees, the orchestrator's check before sending and the worker's check before running.
 *
 * @example
 * const add = defineTool({
 *   name: 'calc_add',
 *   description: 'Adds two numbers.',
 *   input: z.object({ a: z.number(), b: z.number() }),
 *   output: z.object({ sum: z.number() }),
 *   handler: ({ a, b }) => ({ sum: a + b }),
 * });
 */
export function defineTool<Input extends z.ZodType, Output extends z.ZodType>(
  spec: ToolSpec<Input, Output>,
): ToolDefinition<Input, Output> {
  const match = toolNamePattern.exec(spec.name);
  if (!match || spec.name.length > 64) {
    throw new ToolDefinitionError(
      `Tool name "${spec.name}" must look like <domain>_<action> (lower case letters, digits, underscores; at most 64 characters).`,
    );
  }
  if (spec.description.trim() === '') {
    throw new ToolDefinitionError(`Tool "${spec.name}" needs a description: it is what the model reads.`);
  }
  if (!(spec.input instanceof z.ZodObject)) {
    throw new ToolDefinitionError(`Tool "${spec.name}" must take an object (z.object) as input: models send named arguments.`);
  }
  const timeoutMs = spec.timeoutMs ?? defaultToolTimeoutMs;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    throw new ToolDefinitionError(`Tool "${spec.name}" has timeoutMs ${timeoutMs}; it must be a positive integer.`);
  }
  // Worker and orchestrator arm timers with it: a longer one would fire at once.
  if (timeoutMs > maxTimerDelayMs) {
    throw new ToolDefinitionError(`Tool "${spec.name}" has timeoutMs ${timeoutMs}; it must be at most ${maxTimerDelayText}.`);
  }
  const retry = RetryPolicy.safeParse(spec.retry ?? {});
  if (!retry.success) {
    throw new ToolDefinitionError(`Tool "${spec.name}" has an invalid retry policy: ${retry.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  for (const fallback of spec.fallbacks ?? []) {
    if (!toolNamePattern.test(fallback) || fallback === spec.name) {
      throw new ToolDefinitionError(`Tool "${spec.name}" names "${fallback}" as a fallback; a fallback must be another tool's name.`);
    }
  }
  // Only a side effect can be in doubt: a read-only call is simply run again.
  if (spec.reconcile && !spec.sideEffects) {
    throw new ToolDefinitionError(`Tool "${spec.name}" has reconcile but no side effects; reconcile settles side-effecting calls whose worker died, so set sideEffects: true or drop it.`);
  }
  return {
    name: spec.name,
    domain: match[1] as string,
    retry: retry.data,
    fallbacks: spec.fallbacks ?? [],
    requiresApproval: spec.requiresApproval ?? false,
    compensation: spec.compensation,
    reconcile: spec.reconcile,
    description: spec.description,
    input: spec.input,
    inputJsonSchema: spec.inputJsonSchema,
    output: spec.output,
    handler: spec.handler,
    sideEffects: spec.sideEffects ?? false,
    timeoutMs,
  };
}

/** The JSON Schema a model and a remote validator see for a tool's input. */
export function toolInputJsonSchema(tool: Pick<ToolDefinition, 'input'> & { inputJsonSchema?: Record<string, unknown> | undefined }): Record<string, unknown> {
  if (tool.inputJsonSchema !== undefined) {
    const { $schema: _dialect, ...written } = tool.inputJsonSchema;
    return written;
  }
  const schema = z.toJSONSchema(tool.input, { target: 'draft-07', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete schema.$schema;
  return schema;
}
