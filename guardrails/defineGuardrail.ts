import * as z from 'zod';

/**
 * A guardrail: a named check of what flows through a session at one of four points. `input` (the
 * task and every later user or operator message), `toolInput` (a call's arguments, validated,
 * before dispatch), `toolOutput` (a result, before the model sees it) and `output` (the final
 * answer, before it is returned). A check passes, blocks with a reason, or rewrites the content
 * and says what it changed.
 */

export const GuardrailPoint = z.enum(['input', 'toolInput', 'toolOutput', 'output']);
export type GuardrailPoint = z.infer<typeof GuardrailPoint>;

/** What a check decided. `changes` says what a rewrite changed (kinds and counts), never the content it removed. */
export type GuardrailVerdict =
  | { outcome: 'pass' }
  | { outcome: 'block'; reason: string }
  | { outcome: 'rewrite'; content: string; changes: string };

/** What a check is given: the content at its point, and where it is. */
export interface GuardrailInput {
  point: GuardrailPoint;
  content: string;
  sessionId: string;
  /** At `toolInput` and `toolOutput`: the tool. */
  tool?: string;
  /** Aborted when the check's deadline passes or the session stops: a check that calls a service passes it on. */
  signal: AbortSignal;
  /**
   * In a session: a model reached through the session's own endpoint (the `openai` client), for a
   * check that classifies with one. What it costs is the session's, under its budgets.
   */
  model?: GuardrailModel;
}

/** A model a check may call: one chat completion, its text returned. */
export interface GuardrailModel {
  complete(request: { model: string; messages: Array<{ role: 'system' | 'user' | 'assistant'; content: string }>; maxTokens?: number; signal?: AbortSignal }): Promise<string>;
}

export const GuardrailSpec = z.object({
  name: z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, 'lower case letters, digits, "-" and "_", starting with a letter'),
  at: z.array(GuardrailPoint).min(1, 'a guardrail checks at one point or more'),
  /** The longest the check may take (5 s). */
  timeoutMs: z.number().int().positive().max(120_000).default(5_000),
  /** What a check that throws or times out means: `block` (fail closed, the default) or `pass` (fail open). */
  onError: z.enum(['block', 'pass']).default('block'),
  check: z.custom<(input: GuardrailInput) => GuardrailVerdict | Promise<GuardrailVerdict>>((value) => typeof value === 'function', 'check must be a function'),
  /**
   * Applied to every text the session's telemetry carries (its events, and its spans' captured
   * content), whatever the checks decided: what must never leave in a trace or an event stream,
   * such as a credential a tool read, even on its way to being redacted from the answer.
   */
  scrub: z.custom<(text: string) => string>((value) => typeof value === 'function', 'scrub must be a function').optional(),
});
export type Guardrail = z.output<typeof GuardrailSpec>;

/** Thrown by {@link defineGuardrail} for a guardrail that cannot run. */
export class GuardrailDefinitionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Defines a guardrail, refusing one that cannot run with every problem named. */
export function defineGuardrail(spec: z.input<typeof GuardrailSpec>): Guardrail {
  const parsed = GuardrailSpec.safeParse(spec);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(guardrail)'}: ${issue.message}`).join('; ');
    throw new GuardrailDefinitionError(`Guardrail "${String((spec as { name?: unknown }).name)}" is not valid: ${problems}`);
  }
  return parsed.data;
}

/** One guardrail's decision, as the session records it (its event, its span). */
export const GuardrailDecision = z.object({
  guardrail: z.string(),
  point: GuardrailPoint,
  outcome: z.enum(['pass', 'block', 'rewrite']),
  /** Why it blocked, or what a rewrite changed; for a check that failed, why it failed and what that meant. */
  detail: z.string().optional(),
  /** The check threw or ran out of time, and `onError` decided. */
  failed: z.boolean().optional(),
  durationMs: z.number().nonnegative(),
});
export type GuardrailDecision = z.infer<typeof GuardrailDecision>;

/**
 * Runs the guardrails of `point` in order over `content`: each sees what the previous ones let
 * through (a rewrite feeds the next), the first block stops them. A check that throws, answers
 * something that is not a verdict, or outlives its deadline is decided by its `onError`.
 */
export async function runGuardrails(
  guardrails: readonly Guardrail[],
  input: Omit<GuardrailInput, 'signal'> & { signal?: AbortSignal },
  clock: { now(): number } = performance,
): Promise<{ content: string; blocked: GuardrailDecision | undefined; decisions: GuardrailDecision[] }> {
  let content = input.content;
  const decisions: GuardrailDecision[] = [];
  for (const guardrail of guardrails.filter((g) => g.at.includes(input.point))) {
    const started = clock.now();
    const decided = (verdict: Omit<GuardrailDecision, 'guardrail' | 'point' | 'durationMs'>): GuardrailDecision =>
      ({ guardrail: guardrail.name, point: input.point, durationMs: clock.now() - started, ...verdict });
    const deadline = AbortSignal.timeout(guardrail.timeoutMs);
    const signal = input.signal ? AbortSignal.any([input.signal, deadline]) : deadline;
    let verdict: GuardrailVerdict | undefined;
    let failure: string | undefined;
    try {
      verdict = await Promise.race([
        Promise.resolve(guardrail.check({ ...input, content, signal })),
        new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new GuardrailCutShort(deadline.aborted ? `it took longer than ${guardrail.timeoutMs} ms` : 'the session stopped')), { once: true })),
      ]);
      if (!isVerdict(verdict)) failure = `it answered ${JSON.stringify(verdict) ?? 'nothing'}, not pass, block or rewrite`;
    } catch (error) {
      failure = error instanceof GuardrailCutShort ? error.message : `it failed: ${error instanceof Error ? error.message : String(error)}`;
    }
    if (failure !== undefined) {
      const decision = decided({ outcome: guardrail.onError, failed: true, detail: `${failure}; ${guardrail.onError === 'block' ? 'blocked, as it fails closed' : 'passed, as it fails open'}` });
      decisions.push(decision);
      if (decision.outcome === 'block') return { content, blocked: decision, decisions };
      continue;
    }
    const v = verdict as GuardrailVerdict;
    if (v.outcome === 'block') {
      const decision = decided({ outcome: 'block', detail: v.reason });
      decisions.push(decision);
      return { content, blocked: decision, decisions };
    }
    if (v.outcome === 'rewrite') {
      content = v.content;
      decisions.push(decided({ outcome: 'rewrite', detail: v.changes }));
      continue;
    }
    decisions.push(decided({ outcome: 'pass' }));
  }
  return { content, blocked: undefined, decisions };
}

/** A check stopped by its deadline or by the session, not by its own failure. */
class GuardrailCutShort extends Error {}

function isVerdict(value: unknown): value is GuardrailVerdict {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return v.outcome === 'pass'
    || (v.outcome === 'block' && typeof v.reason === 'string')
    || (v.outcome === 'rewrite' && typeof v.content === 'string' && typeof v.changes === 'string');
}

/** The text its guardrails' `scrub`s leave, in order; undefined when none scrubs (nothing to pay for). */
export function telemetryScrubOf(guardrails: readonly Guardrail[]): ((text: string) => string) | undefined {
  const scrubs = guardrails.flatMap((guardrail) => (guardrail.scrub ? [guardrail.scrub] : []));
  return scrubs.length === 0 ? undefined : (text) => scrubs.reduce((scrubbed, scrub) => scrub(scrubbed), text);
}

/** `value` with every string in it scrubbed, keys and shape kept. */
export function scrubbedDeep<T>(value: T, scrub: (text: string) => string): T {
  if (typeof value === 'string') return scrub(value) as T;
  if (Array.isArray(value)) return value.map((item: unknown) => scrubbedDeep(item, scrub)) as T;
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, scrubbedDeep(inner, scrub)])) as T;
  return value;
}

/** The guardrails that check while the session is in `phases`: those no phase names, and those a phase of `phases` names (see `guardrailPhasesOf`). */
export function guardrailsInPhases(guardrails: readonly Guardrail[], scopes: ReadonlyMap<string, ReadonlySet<string>>, phases: readonly string[]): Guardrail[] {
  return guardrails.filter((guardrail) => {
    const scope = scopes.get(guardrail.name);
    return scope === undefined || phases.some((phase) => scope.has(phase));
  });
}
