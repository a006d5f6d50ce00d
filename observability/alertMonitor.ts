import * as z from 'zod';
import type { AlertBody } from '../transport/messages.ts';

const ErrorRateThreshold = z.strictObject({
  /** The share of failed calls (0 to 1, exclusive of 0) at which the alert is raised. */
  threshold: z.number().gt(0).max(1),
  /** Fewer calls than this in the window never alert: one failure out of one is not a trend. */
  minCalls: z.number().int().positive().default(5),
  windowMs: z.number().int().positive().default(60_000),
});

/** When to raise an alert; every threshold is optional, and none is set by default. */
export const AlertThresholds = z.strictObject({
  /** Error rate of one tool's calls over a sliding window. */
  toolErrorRate: ErrorRateThreshold.optional(),
  /** Error rate of all calls to one pool (tool domain) over a sliding window. */
  poolErrorRate: ErrorRateThreshold.optional(),
  /** One session's spend in USD (its specialists' included). */
  sessionSpendUsd: z.number().positive().optional(),
  /** One tenant's spend in USD over a sliding window (sessions without a tenant count as `none`). */
  tenantSpendUsd: z.strictObject({ threshold: z.number().positive(), windowMs: z.number().int().positive().default(3_600_000) }).optional(),
});
export type AlertThresholds = z.infer<typeof AlertThresholds>;

interface Sample {
  at: number;
  value: number;
}

/**
 * Watches what this process sees (tool-call outcomes, spend) against the thresholds and calls
 * `raise` when one is crossed: once on the way up, and again only after the value has gone back
 * under. Windows slide; time comes from `now`, so tests drive it without waiting.
 */
export class AlertMonitor {
  readonly #thresholds: AlertThresholds;
  readonly #raise: (alert: AlertBody) => void;
  readonly #now: () => number;
  readonly #windows = new Map<string, Sample[]>();
  readonly #raised = new Set<string>();

  constructor(options: { thresholds: AlertThresholds; raise: (alert: AlertBody) => void; now?: () => number }) {
    this.#thresholds = options.thresholds;
    this.#raise = options.raise;
    this.#now = options.now ?? Date.now;
  }

  /** One tool call's outcome, as the dispatching session saw it end (after its retries). */
  recordToolCall(call: { tool: string; pool: string; ok: boolean }): void {
    const failed = call.ok ? 0 : 1;
    if (this.#thresholds.toolErrorRate) this.#errorRate('tool_error_rate', call.tool, failed, this.#thresholds.toolErrorRate);
    if (this.#thresholds.poolErrorRate) this.#errorRate('pool_error_rate', call.pool, failed, this.#thresholds.poolErrorRate);
  }

  /** A session ended: its spend alert is forgotten (its windows of tools, pools and tenants stay). */
  forgetSession(sessionId: string): void {
    this.#raised.delete(`session_spend:${sessionId}`);
  }

  /** Spend as it happens: `usd` more for the session (now at `totalUsd`) and its tenant. */
  recordSpend(spend: { sessionId: string; tenant: string | null; usd: number; totalUsd: number }): void {
    const session = this.#thresholds.sessionSpendUsd;
    if (session !== undefined) {
      this.#edge('session_spend', spend.sessionId, spend.totalUsd >= session, {
        value: spend.totalUsd, threshold: session,
        detail: `Session ${spend.sessionId} has spent ${usd(spend.totalUsd)}, over the ${usd(session)} alert threshold.`,
      });
    }
    const tenant = this.#thresholds.tenantSpendUsd;
    if (tenant && spend.usd > 0) {
      const name = spend.tenant ?? 'none';
      const total = this.#slide(`tenant_spend:${name}`, tenant.windowMs, spend.usd).reduce((sum, s) => sum + s.value, 0);
      this.#edge('tenant_spend', name, total >= tenant.threshold, {
        value: total, threshold: tenant.threshold, windowMs: tenant.windowMs,
        detail: `Tenant ${name} has spent ${usd(total)} in the last ${minutes(tenant.windowMs)}, over the ${usd(tenant.threshold)} alert threshold.`,
      });
    }
  }

  #errorRate(kind: 'tool_error_rate' | 'pool_error_rate', subject: string, failed: number, rule: z.infer<typeof ErrorRateThreshold>): void {
    const samples = this.#slide(`${kind}:${subject}`, rule.windowMs, failed);
    const failures = samples.reduce((sum, s) => sum + s.value, 0);
    const rate = failures / samples.length;
    const crossed = samples.length >= rule.minCalls && rate >= rule.threshold;
    const what = kind === 'tool_error_rate' ? `Tool ${subject}` : `Pool ${subject}`;
    this.#edge(kind, subject, crossed, {
      value: rate, threshold: rule.threshold, windowMs: rule.windowMs,
      detail: `${what}: ${failures} of the last ${samples.length} calls failed (${Math.round(rate * 100)}%) in ${minutes(rule.windowMs)}, at or over the ${Math.round(rule.threshold * 100)}% alert threshold.`,
    });
  }

  /** Adds a sample to a window and drops the ones older than `windowMs`. */
  #slide(key: string, windowMs: number, value: number): Sample[] {
    const now = this.#now();
    const kept = (this.#windows.get(key) ?? []).filter((s) => s.at > now - windowMs);
    kept.push({ at: now, value });
    this.#windows.set(key, kept);
    return kept;
  }

  #edge(kind: AlertBody['kind'], subject: string, crossed: boolean, facts: Pick<AlertBody, 'value' | 'threshold' | 'detail'> & { windowMs?: number }): void {
    const key = `${kind}:${subject}`;
    if (!crossed) {
      this.#raised.delete(key);
      return;
    }
    if (this.#raised.has(key)) return;
    this.#raised.add(key);
    this.#raise({ type: 'alert.raised', kind, subject, ...facts, at: new Date(this.#now()).toISOString() });
  }
}

const usd = (value: number) => `$${value.toFixed(4)}`;
const minutes = (ms: number) => (ms % 60_000 === 0 ? `${ms / 60_000} min` : `${ms / 1000} s`);
