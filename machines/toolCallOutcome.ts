import * as z from 'zod';
import { ToolFailure } from '../tools/toolFailure.ts';
import { DelegatedSpending } from './delegation.ts';
import { RetryPolicy } from './retryPolicy.ts';

/** A tool call that passed validation and is ready to be sent to its pool. */
export const PlannedToolCall = z.object({
  /** Troupe's id for the call: unique, and the idempotency key on the worker. */
  callId: z.string(),
  /** The model's id for the call, which its answer must quote. */
  toolCallId: z.string(),
  name: z.string(),
  arguments: z.record(z.string(), z.unknown()),
  /** The tool's own retry policy, as its pool advertised it. */
  retry: RetryPolicy,
  /** Tools to try, in order, with the same arguments when this one is unavailable. */
  fallbacks: z.array(z.string()).default([]),
  /** A person must approve the call before it is sent. */
  requiresApproval: z.boolean().optional(),
  /** Set when a person approved it: sent with the call, so the worker can check. */
  approval: z.object({ by: z.string(), at: z.string() }).optional(),
  /** From the tool's advertisement: whether the call changes something, and whether it can be undone. */
  sideEffects: z.boolean().optional(),
  undoable: z.boolean().optional(),
});
export type PlannedToolCall = z.infer<typeof PlannedToolCall>;

/** A tool call the session refused before sending it (unknown tool, bad JSON, schema failure). */
export const RejectedToolCall = z.object({
  toolCallId: z.string(),
  name: z.string(),
  rawArguments: z.string(),
  failure: ToolFailure,
});
export type RejectedToolCall = z.infer<typeof RejectedToolCall>;

export const ToolCallTriage = z.object({
  accepted: z.array(PlannedToolCall),
  rejected: z.array(RejectedToolCall),
  /** Epoch milliseconds after which calls still waiting for approval are denied (set when any needs one). */
  approvalDeadline: z.number().optional(),
});
export type ToolCallTriage = z.infer<typeof ToolCallTriage>;

/** How a sent tool call ended. Failures are data: a tool call never throws into the session. */
export const ToolCallOutcome = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('ok'), callId: z.string(), result: z.unknown(), durationMs: z.number(), attempts: z.number().int().optional(),
    servedBy: z.string().optional(), compensation: z.unknown().optional(),
    /** What a specialist spent answering (delegations only), over every attempt. */
    spent: DelegatedSpending.optional(),
    /** Answered from the cache: the tool did not run. */
    cached: z.boolean().optional(),
  }),
  z.object({
    status: z.literal('error'), callId: z.string(), failure: ToolFailure, durationMs: z.number(), attempts: z.number().int().optional(),
    spent: DelegatedSpending.optional(),
  }),
]);
export type ToolCallOutcome = z.infer<typeof ToolCallOutcome>;

/** One attempt at a tool call, as the transport saw it. */
export const ToolCallAttempt = z.discriminatedUnion('status', [
  z.object({ status: z.literal('ok'), result: z.unknown(), durationMs: z.number(), compensation: z.unknown().optional(), spent: DelegatedSpending.optional() }),
  z.object({ status: z.literal('error'), failure: ToolFailure, durationMs: z.number(), spent: DelegatedSpending.optional() }),
]);
export type ToolCallAttempt = z.infer<typeof ToolCallAttempt>;
