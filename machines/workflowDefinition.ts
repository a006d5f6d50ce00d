import * as z from 'zod';

/**
 * An agent's work declared as phases: each with the tools the model may use in it, its
 * instructions, and how it may be left. Plain data (agents are loaded from modules and checked
 * again), shaped like an XState state config so that nested and parallel phases mean what they
 * mean in XState. Phase names are unique across the whole workflow, so a transition names its
 * target plainly wherever it is.
 */

/** What the session's ledger must show, counted since the phase was entered, for a guarded transition to fire. */
export const LedgerGuard = z.discriminatedUnion('type', [
  /** At least `atLeast` failed calls (of `tool`, or of any tool). */
  z.object({ type: z.literal('failedCalls'), atLeast: z.number().int().positive(), tool: z.string().min(1).optional() }).strict(),
  /** At least `atLeast` (1) successful calls of `tool`. */
  z.object({ type: z.literal('succeededCalls'), tool: z.string().min(1), atLeast: z.number().int().positive().default(1) }).strict(),
  /** At least `atLeast` model turns spent in the phase. */
  z.object({ type: z.literal('turnsInPhase'), atLeast: z.number().int().positive() }).strict(),
]);
export type LedgerGuard = z.infer<typeof LedgerGuard>;

const phaseName = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'a phase name: lower case letters, digits and "_", starting with a letter');

/** One way out of a phase: its target, and what else must hold. */
const TransitionObject = z.object({
  target: phaseName,
  guard: LedgerGuard.optional(),
  /** The session parks until a person approves this transition (denied, it stays in the phase). */
  requiresApproval: z.boolean().optional(),
  /** Shown to the model beside the exit it may choose, and to people. */
  description: z.string().trim().min(1).optional(),
}).strict();

/** A transition: its target's name alone, or with a guard, an approval, a description. */
export const PhaseTransition = z.union([phaseName.transform((target): z.output<typeof TransitionObject> => ({ target })), TransitionObject]);
export type PhaseTransition = z.output<typeof PhaseTransition>;

const transitions = z.union([PhaseTransition.transform((t) => [t]), z.array(PhaseTransition).min(1)]);

/** The events a phase's transitions fire on: the model's choice, or a tool call succeeding (`tool.<name>`). */
export const nextPhaseTrigger = 'next_phase';
const triggerPattern = /^(next_phase|tool\.[a-z0-9_]+)$/;

export const PhaseConfig = z.object({
  /** Its child phases run at once (XState's parallel state): the model is offered what all their active phases offer. */
  type: z.literal('parallel').optional(),
  /** The child phase entered first (not for parallel phases). */
  initial: phaseName.optional(),
  // A getter: the schema refers to itself (zod's way to a recursive type inferred once).
  get states() {
    return z.record(phaseName, PhaseConfig).optional();
  },
  /** Added to the system prompt while the session is in this phase (outer phases' first). */
  instructions: z.string().trim().min(1).optional(),
  /** The only tools the model is offered and may call here: exact names or `<domain>_*`. The innermost phase that says wins. */
  tools: z.array(z.string().regex(/^[a-z0-9_]+\*?$/, 'a tool name, or a domain prefix ending in *')).optional(),
  /** The model for turns in this phase, over the agent's and its routing. */
  model: z.string().min(1).optional(),
  /** Limits of this phase alone, counted from entering it. */
  budgets: z.object({
    maxSteps: z.number().int().positive().optional(),
    maxCostUsd: z.number().positive().optional(),
  }).strict().optional(),
  /**
   * The agent's guardrails, by name, that check only while the session is in this phase (or a
   * phase inside it); a guardrail no phase names checks in every phase.
   */
  guardrails: z.array(z.string().min(1)).optional(),
  /** A final answer is accepted here; elsewhere the model is told to move on first. */
  answer: z.boolean().optional(),
  on: z.record(z.string(), transitions).superRefine((on, context) => {
    for (const key of Object.keys(on)) {
      if (!triggerPattern.test(key)) context.addIssue({ code: 'custom', path: [key], message: `"${key}" is not a trigger: next_phase (the model chooses) or tool.<tool name> (that call succeeded)` });
    }
  }).optional(),
  /** Checked after every turn: each needs a guard over the ledger (e.g. three failed queries → escalate). */
  always: z.array(PhaseTransition).optional(),
}).strict();
export type PhaseConfig = z.output<typeof PhaseConfig>;

/** A workflow: the top level is a phase whose children are the phases the session goes through. */
export const WorkflowDefinition = z.object({
  initial: phaseName,
  states: z.record(phaseName, PhaseConfig).refine((states) => Object.keys(states).length > 0, 'a workflow needs at least one phase'),
}).strict();
export type WorkflowDefinition = z.output<typeof WorkflowDefinition>;
export type WorkflowSpec = z.input<typeof WorkflowDefinition>;
