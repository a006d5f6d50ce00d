/**
 * Reads a session event's fields without trusting their shape: the console passes events through
 * as records (the page does not bundle the runtime's event schemas), and an event of a newer
 * runtime may lack a field or carry another. Each reader answers undefined for anything else.
 */
export type EventRecord = Record<string, unknown>;

export const textOf = (event: EventRecord, key: string): string | undefined => (typeof event[key] === 'string' ? event[key] : undefined);
export const numberOf = (event: EventRecord, key: string): number | undefined => (typeof event[key] === 'number' ? event[key] : undefined);
export const booleanOf = (event: EventRecord, key: string): boolean | undefined => (typeof event[key] === 'boolean' ? event[key] : undefined);
export const listOf = (event: EventRecord, key: string): unknown[] => (Array.isArray(event[key]) ? event[key] : []);

/** A nested object field; undefined for anything else (arrays included). */
export function recordOf(event: EventRecord, key: string): EventRecord | undefined {
  const value = event[key];
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as EventRecord) : undefined;
}

/** A plain object (not null, not an array). */
export const isRecord = (value: unknown): value is EventRecord => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Tokens and cost, as a `Usage` of the runtime. */
export interface UsageFigures {
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/** Nothing used: where sums of `UsageFigures` start. */
export const noUsage: UsageFigures = { inputTokens: 0, outputTokens: 0, costUsd: 0 };

/** A `usage`-shaped field (`model.responded`'s `usage`, `session.finished`'s), zeros for what is missing. */
export function usageOf(event: EventRecord, key = 'usage'): UsageFigures | undefined {
  const usage = recordOf(event, key);
  if (!usage) return undefined;
  return { inputTokens: numberOf(usage, 'inputTokens') ?? 0, outputTokens: numberOf(usage, 'outputTokens') ?? 0, costUsd: numberOf(usage, 'costUsd') ?? 0 };
}

/** The sum of two `UsageFigures`. */
export function addUsage(a: UsageFigures, b: UsageFigures): UsageFigures {
  return { inputTokens: a.inputTokens + b.inputTokens, outputTokens: a.outputTokens + b.outputTokens, costUsd: a.costUsd + b.costUsd };
}
