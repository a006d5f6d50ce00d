import { createHash } from 'node:crypto';
import * as z from 'zod';

/** Where a cached answer may be reused: within one session, or by every session of the same agent in this process. */
export const CacheScope = z.enum(['session', 'agent']);
export type CacheScope = z.infer<typeof CacheScope>;

const CacheRule = z.strictObject({
  scope: CacheScope.default('session'),
  ttlMs: z.number().int().positive().default(300_000),
});

/**
 * What an agent may answer from the cache instead of asking again: identical model requests (the
 * same model, messages and tools), and calls of tools without side effects with the same
 * arguments. Off unless set: a tool without side effects may still answer differently later.
 */
export const CachingSettings = z.strictObject({
  modelRequests: CacheRule.optional(),
  toolCalls: CacheRule.optional(),
});
export type CachingSettings = z.infer<typeof CachingSettings>;

/** A stable key for a value: the SHA-256 of its JSON. */
export function cacheKeyOf(parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/**
 * Answers kept for reuse, each for its time to live, the oldest evicted past `maxEntries`. One per
 * process, shared by its sessions; scopes are part of the keys.
 */
export class ResponseCache {
  readonly #entries = new Map<string, { value: unknown; expiresAt: number }>();
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(options: { maxEntries?: number; now?: () => number } = {}) {
    this.#maxEntries = options.maxEntries ?? 5_000;
    this.#now = options.now ?? Date.now;
  }

  get<T>(key: string): T | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value as T;
  }

  set(key: string, value: unknown, ttlMs: number): void {
    this.#entries.delete(key);
    this.#entries.set(key, { value, expiresAt: this.#now() + ttlMs });
    while (this.#entries.size > this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value as string);
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** The scope part of a key: the session, or the agent. */
export const scopeKey = (scope: CacheScope, ids: { sessionId: string; agent: string }): string =>
  scope === 'session' ? `session:${ids.sessionId}` : `agent:${ids.agent}`;
