import { metrics, type Attributes, type Counter, type Histogram, type MeterProvider, type ObservableResult } from '@opentelemetry/api';

/** The instrumentation scope of every Troupe metric. */
export const meterName = 'troupe';

/** The metric names Troupe records; the GenAI ones follow the OpenTelemetry GenAI semantic conventions. */
export const MetricName = {
  tokenUsage: 'gen_ai.client.token.usage',
  operationDuration: 'gen_ai.client.operation.duration',
  toolCalls: 'troupe.tool.calls',
  toolCallDuration: 'troupe.tool.call.duration',
  toolRetries: 'troupe.tool.retries',
  modelRetries: 'troupe.model.retries',
  breakerState: 'troupe.circuit_breaker.state',
  sessions: 'troupe.sessions',
  cost: 'troupe.cost',
  alerts: 'troupe.alerts',
} as const;

/** `troupe.circuit_breaker.state` values: a gauge per tool, so a dashboard can colour it. */
export const breakerStateValue = { closed: 0, half_open: 1, probing: 1, open: 2 } as const;

/** Reads the circuit states of one process's breakers when the gauge is collected. */
export type BreakerStateSource = () => Array<{ tool: string; state: keyof typeof breakerStateValue }>;

export interface TroupeMetrics {
  readonly tokenUsage: Histogram;
  readonly operationDuration: Histogram;
  readonly toolCalls: Counter;
  readonly toolCallDuration: Histogram;
  readonly toolRetries: Counter;
  readonly modelRetries: Counter;
  readonly sessions: Counter;
  readonly cost: Counter;
  readonly alerts: Counter;
}

const breakerSources = new Set<BreakerStateSource>();
let built: { provider: MeterProvider; instruments: TroupeMetrics } | undefined;

/**
 * Troupe's instruments on the globally registered meter provider (no-ops when the application
 * registered none). The metrics API has no proxy provider, so instruments are rebuilt when the
 * provider changes: call this at the moment of recording, never at import time.
 */
export function troupeMetrics(): TroupeMetrics {
  const provider = metrics.getMeterProvider();
  if (built?.provider === provider) return built.instruments;
  const meter = provider.getMeter(meterName);
  const instruments: TroupeMetrics = {
    tokenUsage: meter.createHistogram(MetricName.tokenUsage, {
      unit: '{token}', description: 'Tokens per model call, by gen_ai.token.type (input, output).',
      advice: { explicitBucketBoundaries: [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576] },
    }),
    operationDuration: meter.createHistogram(MetricName.operationDuration, {
      unit: 's', description: 'Duration of each model call, failed ones with error.type.',
      advice: { explicitBucketBoundaries: [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92] },
    }),
    toolCalls: meter.createCounter(MetricName.toolCalls, { unit: '{call}', description: 'Tool calls as the orchestrator saw them end, by tool, pool and status.' }),
    toolCallDuration: meter.createHistogram(MetricName.toolCallDuration, { unit: 's', description: 'Tool calls from the first attempt to the outcome, retries included.' }),
    toolRetries: meter.createCounter(MetricName.toolRetries, { unit: '{retry}', description: 'Tool-call attempts repeated after a retryable failure, by tool and error.type.' }),
    modelRetries: meter.createCounter(MetricName.modelRetries, { unit: '{retry}', description: 'Model calls repeated after a 429, 5xx, connection error or timeout.' }),
    sessions: meter.createCounter(MetricName.sessions, { unit: '{session}', description: 'Sessions that stopped, by agent, status and tenant (escalated ones may go on).' }),
    cost: meter.createCounter(MetricName.cost, { unit: 'USD', description: 'Model spend from the price table, by model, agent and tenant.' }),
    alerts: meter.createCounter(MetricName.alerts, { unit: '{alert}', description: 'Alerts raised, by kind.' }),
  };
  meter.createObservableGauge(MetricName.breakerState, { description: 'Circuit state per tool: 0 closed, 1 half-open, 2 open.' })
    .addCallback((result: ObservableResult<Attributes>) => {
      for (const source of breakerSources) {
        for (const { tool, state } of source()) result.observe(breakerStateValue[state], { 'gen_ai.tool.name': tool, 'troupe.circuit_breaker.state': state });
      }
    });
  built = { provider, instruments };
  return instruments;
}

/** Adds a process's breakers to the state gauge; returns the function that removes them. */
export function observeBreakerStates(source: BreakerStateSource): () => void {
  breakerSources.add(source);
  return () => breakerSources.delete(source);
}
