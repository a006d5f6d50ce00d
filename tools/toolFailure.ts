import * as z from 'zod';

/**
 * The closed set of failure codes that cross the wire between orchestrator, workers and model.
 * Anything a tool throws is turned into one of these by {@link toToolFailure}.
 */
export const ToolFailureCode = {
  /** The arguments broke the tool's schema; retrying the same call cannot help. */
  INVALID_INPUT: 'INVALID_INPUT',
  /** The model named a tool that no running pool serves. */
  UNKNOWN_TOOL: 'UNKNOWN_TOOL',
  /** The thing the call refers to does not exist (a file, a table). */
  NOT_FOUND: 'NOT_FOUND',
  /** The call is well formed but not allowed (a sandbox escape, a write to a read-only database). */
  FORBIDDEN: 'FORBIDDEN',
  /** The call ran past its deadline. */
  TIMEOUT: 'TIMEOUT',
  /** No worker could take the call (no responders, pool draining). */
  UNAVAILABLE: 'UNAVAILABLE',
  /** The tool failed in a way that is nobody's fault in particular. */
  INTERNAL: 'INTERNAL',
  /** A specialist the call delegated to ended without an answer (failed, out of budget, stuck, cancelled); `details` says how. */
  SPECIALIST_FAILED: 'SPECIALIST_FAILED',
  /**
   * An earlier attempt of this side-effecting call started its handler on a worker that died before
   * recording the outcome, and the tool cannot look up whether the effect happened: nobody knows,
   * so it is not run again and a person decides. `details` holds the evidence.
   */
  IN_DOUBT: 'IN_DOUBT',
} as const;
export type ToolFailureCode = (typeof ToolFailureCode)[keyof typeof ToolFailureCode];

/**
 * `details.reason` of a `TIMEOUT` whose call waited for an earlier attempt of itself (its claim held
 * by a worker still running it, or one that died holding it) instead of running: about one call,
 * not the pool, so it never counts against the tool's circuit.
 */
export const claimHeldReason = 'claim_held';

const retryableByDefault: ReadonlySet<ToolFailureCode> = new Set([
  ToolFailureCode.TIMEOUT,
  ToolFailureCode.UNAVAILABLE,
  ToolFailureCode.INTERNAL,
]);

/** One schema problem, shaped like a zod issue so the model sees the field and the rule. */
export const ValidationIssue = z.object({
  path: z.string(),
  code: z.string(),
  message: z.string(),
});
export type ValidationIssue = z.infer<typeof ValidationIssue>;

/** A failed tool call as it travels on the wire and as the model reads it. */
export const ToolFailure = z.object({
  code: z.enum(Object.values(ToolFailureCode) as [ToolFailureCode, ...ToolFailureCode[]]),
  message: z.string(),
  retryable: z.boolean(),
  issues: z.array(ValidationIssue).optional(),
  /** Structured facts about the failure for the model to act on (a specialist's status, stop reason, partial answer). */
  details: z.record(z.string(), z.unknown()).optional(),
});
export type ToolFailure = z.infer<typeof ToolFailure>;

/**
 * Thrown by tool handlers to fail with a specific code and a message written for the model.
 * Anything else a handler throws becomes `INTERNAL`.
 */
export class ToolError extends Error {
  readonly code: ToolFailureCode;
  readonly retryable: boolean;
  readonly issues: ValidationIssue[] | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ToolFailureCode,
    message: string,
    options: { retryable?: boolean; issues?: ValidationIssue[]; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? retryableByDefault.has(code);
    this.issues = options.issues;
    this.details = options.details;
  }
}

/** Builds a failure with the default retryability of its code. */
export function toolFailure(code: ToolFailureCode, message: string, issues?: ValidationIssue[]): ToolFailure {
  return issues === undefined
    ? { code, message, retryable: retryableByDefault.has(code) }
    : { code, message, retryable: retryableByDefault.has(code), issues };
}

/** Turns anything thrown at a tool boundary into the wire failure; never throws itself. */
export function toToolFailure(error: unknown): ToolFailure {
  if (error instanceof ToolError) {
    const failure: ToolFailure = { code: error.code, message: error.message, retryable: error.retryable };
    if (error.issues) failure.issues = error.issues;
    if (error.details) failure.details = error.details;
    return failure;
  }
  const message = error instanceof Error ? error.message : String(error);
  return toolFailure(ToolFailureCode.INTERNAL, `The tool failed unexpectedly: ${message}`);
}
