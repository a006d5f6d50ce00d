import * as z from 'zod';
import { Budgets } from '../machines/budgets.ts';
import { RoutingPolicy } from '../machines/modelRouting.ts';
import { ContextSettings } from '../machines/contextAssembly.ts';
import { CachingSettings } from '../actors/model/responseCache.ts';
import { RecoverySettings } from '../machines/recovery.ts';
import { RetryPolicy } from '../machines/retryPolicy.ts';
import { formatIssuePath } from '../tools/validation.ts';
import { toolPatternWithin, workflowProblems } from '../machines/workflowValidation.ts';
import { WorkflowDefinition } from '../machines/workflowDefinition.ts';
import { GuardrailSpec, type Guardrail } from '../guardrails/defineGuardrail.ts';

export const AgentDefinition = z.object({
  /** Names the agent in spans (`invoke_agent {name}`), events and start requests. */
  name: z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, 'use lower case letters, digits, "-" and "_", starting with a letter'),
  /**
   * What the agent does, written for another agent's model: a specialist's `delegate_<name>` tool
   * shows it. The first line of the instructions when absent.
   */
  description: z.string().trim().min(1).optional(),
  /** The system prompt. */
  instructions: z.string().trim().min(1, 'an agent needs instructions'),
  /** The model; the orchestrator's default (`TROUPE_MODEL`) when absent. With `routing`, the model of turns no rule matches. */
  model: z.string().min(1).optional(),
  /** How the agent spends its model's context window: output headroom, turns kept in full, the summary model. */
  context: ContextSettings.default(ContextSettings.parse({})),
  /** Answers reused instead of asked again: identical model requests, calls of tools without side effects. Off by default. */
  caching: CachingSettings.default({}),
  /** Picks the model per turn by rules over what the session knows (turn kind, tool calls, failures, budget left). */
  routing: RoutingPolicy.optional(),
  /**
   * How many levels of specialists below this agent's sessions may be delegated to: 0 forbids
   * delegation, 1 lets its specialists work but not delegate further. A specialist's own limit
   * is lowered to what its parent has left, so agents cannot delegate in circles.
   */
  maxDelegationDepth: z.number().int().min(0).max(10).default(2),
  /** Models to fall back to, in order, when the model keeps failing at the API or keeps producing malformed output. */
  fallbackModels: z.array(z.string().min(1)).default([]),
  budgets: Budgets.default(Budgets.parse({})),
  /** Retries of a failed model call (429 honouring Retry-After, 5xx, connection errors, timeouts) before falling back. */
  modelRetry: RetryPolicy.default(RetryPolicy.parse({ maxAttempts: 3, initialDelayMs: 500, maxDelayMs: 20_000 })),
  recovery: RecoverySettings.default(RecoverySettings.parse({})),
  /**
   * The tools the agent may call: exact names or `<domain>_*`. Absent means every tool the running
   * pools serve.
   */
  tools: z.array(z.string().regex(/^[a-z0-9_]+\*?$/, 'a tool name, or a domain prefix ending in *')).optional(),
  /**
   * The agent's work as phases, each with its own tools, instructions and exits, enforced by the
   * session (see the README's "Workflows"). Checked here: every problem names its phase.
   */
  workflow: WorkflowDefinition.optional(),
  /**
   * Checks of what flows through the agent's sessions, in order, at the points each names (see
   * the README's "Guardrails"): made with `defineGuardrail`, or the built-ins (`piiGuardrail`, …).
   */
  guardrails: z.array(z.custom<Guardrail>((value) => GuardrailSpec.safeParse(value).success, 'a guardrail made with defineGuardrail')).default([]),
  /**
   * When the input guardrails check people's words: `before` the model reads them (the default), or
   * `beside` the model call, racing it: a pass costs no latency, a block cancels the call, a rewrite
   * cancels it and asks again. Beside, the model's provider sees the input before the checks decide:
   * for checks that block (moderation), not for masking.
   */
  inputChecks: z.enum(['before', 'beside']).default('before'),
}).superRefine((agent, context) => {
  const names = agent.guardrails.map((guardrail) => guardrail.name);
  for (const name of new Set(names.filter((name, i) => names.indexOf(name) !== i))) {
    context.addIssue({ code: 'custom', path: ['guardrails'], message: `two guardrails are named "${name}": events and spans name each one` });
  }
  if (!agent.workflow) return;
  for (const problem of workflowProblems(agent.workflow, agent.tools, names)) context.addIssue({ code: 'custom', path: ['workflow'], message: problem });
});
export type AgentDefinition = z.infer<typeof AgentDefinition>;
export type AgentSpec = z.input<typeof AgentDefinition>;

/** Thrown by {@link defineAgent} for a definition that cannot run. */
export class AgentDefinitionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * Defines an agent: its prompt, model, budgets and tools. Defaults fill what is left out; a
 * definition that breaks a rule is refused here, at start-up, with every problem named.
 */
export function defineAgent(spec: AgentSpec): AgentDefinition {
  const parsed = AgentDefinition.safeParse(spec);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${formatIssuePath(i.path)}: ${i.message}`).join('; ');
    throw new AgentDefinitionError(`Agent "${String(spec.name)}" is not valid: ${problems}`);
  }
  return parsed.data;
}

/** Specialists are served as `delegate_<name>`, an OpenAI function name: no "-" in their names. */
export const specialistNamePattern = /^[a-z][a-z0-9_]{0,54}$/;

/** The tool through which other agents delegate to `agent`. */
export const delegateToolName = (agentName: string) => `delegate_${agentName}`;

/** What `agent` says about itself to the models that may delegate to it. */
export const agentDescription = (agent: AgentDefinition): string => agent.description ?? agent.instructions.split('\n')[0] ?? agent.name;

/** Whether `agent` may call the tool named `tool`. */
export function agentAllowsTool(agent: AgentDefinition, tool: string): boolean {
  return !agent.tools || toolPatternWithin(tool, agent.tools);
}
