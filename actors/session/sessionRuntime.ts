import { ToolProgressInbox } from '../toolCalls/toolProgressInbox.ts';
import type { Tracer } from '@opentelemetry/api';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';
import { CircuitBreakerSettings } from '../../machines/circuitBreaker.ts';
import { maxTimerDelayText, TimerDelayMs } from '../../machines/timerDelay.ts';
import { troupeTracer } from '../../observability/tracer.ts';
import { ResultShapingLimits } from '../../tools/resultShaping.ts';
import { CircuitBreakerRegistry } from '../toolCalls/circuitBreakerRegistry.ts';
import type { ModelEndpoint } from '../model/modelCall.ts';
import { ResultStore } from '../toolCalls/resultStore.ts';
import { resultsTools } from '../toolCalls/resultsTools.ts';
import type { SessionHostDependencies } from './hostedSession.ts';
import type { ApprovalPolicy } from '../toolCalls/toolCallTriage.ts';
import { ToolCatalog } from '../toolCalls/toolCatalog.ts';
import { conflictAlert } from '../toolCalls/catalogConflicts.ts';
import { AlertMonitor, type AlertThresholds } from '../../observability/alertMonitor.ts';
import { ResponseCache } from '../model/responseCache.ts';
import { troupeMetrics } from '../../observability/metrics.ts';
import type { Alert, AlertBody } from '../../transport/messages.ts';
import type { ModelTable } from '../../models/modelTable.ts';
import { wireNames } from '../../transport/subjects.ts';
import { encodeWireMessage } from '../../transport/wireMessage.ts';
import { startWorker, type ToolWorker } from '../worker/toolWorker.ts';
import type { OperatorKeys } from '../../transport/controlSignatures.ts';
import type { StatementSigner } from '../../transport/signatures.ts';

/** What every process that runs sessions needs, whether it takes them from clients (an orchestrator) or from delegations (a specialist pool). */
export interface SessionRuntimeOptions {
  nats: NatsConnection;
  /**
   * The deployment this process belongs to (`TROUPE_NAMESPACE`): it prefixes every subject, queue
   * group, service, stream, bucket and object store the process uses, and discovery sees only pools
   * of the same namespace. `troupe` when absent. Throws InvalidNamespaceError for one that cannot be.
   */
  namespace?: string;
  model: ModelEndpoint;
  /** The model of agents that name none (`TROUPE_MODEL`). */
  defaultModel: string;
  tracer?: Tracer;
  inspect?: (event: InspectionEvent) => void;
  /** Discovery interval; pools announcing themselves are seen sooner. */
  discoveryIntervalMs?: number;
  /** When a tool's circuit opens and how long it stays open; shared by all sessions of the process. */
  circuitBreaker?: Partial<CircuitBreakerSettings>;
  /** When a tool result is too large for the model and gets summarised (the full one stays fetchable). */
  largeResults?: Partial<ResultShapingLimits>;
  /** Calls a person must approve beyond the tools that require it themselves, e.g. writes outside a scratch folder. */
  approvalPolicy?: ApprovalPolicy;
  /** How long a call waits for approval before it is denied (the model is told); 15 minutes by default, at most 2^31−1 ms. */
  approvalTimeoutMs?: number;
  /** Context windows and tokenizers per model (merged over the defaults by the CLI); the defaults when absent. */
  models?: ModelTable;
  /** When to raise alerts (error rates, spend); none by default. */
  alerts?: AlertThresholds;
  /** Names this process in the alerts it raises; `troupe` by default. */
  source?: string;
  /** Record message contents and tool arguments and results on spans; off by default (they may hold personal data). */
  captureContent?: boolean;
  /**
   * The key this process signs the calls a person approved, and the undo requests of rollbacks,
   * with (an orchestrator's own nkey): workers that trust its public key run nothing approved or
   * undone without its signature. Unsigned when absent, which only workers trusting no key accept.
   */
  signer?: StatementSigner;
  /**
   * The operators whose signed commands (approve, deny, roll back, …) sessions accept; a session
   * records the operator's name as who did it. When absent, any peer that can publish to a
   * session's control subject commands it, under whatever name it writes.
   */
  operatorKeys?: OperatorKeys;
}

export interface SessionRuntime {
  readonly catalog: ToolCatalog;
  /** What `hostSession` needs, durability aside (only orchestrators checkpoint). */
  readonly hosting: SessionHostDependencies;
  /** Stops discovery, the breakers and the built-in `results` pool; sessions must have ended. */
  stop(): Promise<void>;
}

/**
 * Opens the shared machinery sessions run on: the tool catalog (discovery, whose conflicts it
 * raises as `tool_conflict` alerts), one circuit breaker per tool, and the result store with its
 * `results` pool, so any process can page through a session's large results for that session.
 * Without JetStream, summaries still work but are not fetchable.
 */
export async function openSessionRuntime(options: SessionRuntimeOptions, logger: Logger): Promise<SessionRuntime> {
  // The approval deadline is armed as a timer: a longer wait than a timer can hold would deny at once.
  if (options.approvalTimeoutMs !== undefined && !TimerDelayMs.safeParse(options.approvalTimeoutMs).success) {
    throw new Error(`approvalTimeoutMs is ${options.approvalTimeoutMs}: it must be a positive whole number of milliseconds, at most ${maxTimerDelayText}.`);
  }
  const names = wireNames(options.namespace);
  const source = options.source ?? 'troupe';
  const raiseAlert = (body: AlertBody) => {
    const alert: Alert = { ...body, source };
    logger.warn({ alert }, `alert: ${alert.detail}`);
    troupeMetrics().alerts.add(1, { 'troupe.alert.kind': alert.kind });
    try {
      options.nats.publish(names.subjects.alerts(alert.kind), encodeWireMessage(alert));
    } catch (error) {
      logger.error({ err: error, alert: alert.kind }, 'could not publish an alert');
    }
  };
  const catalog = new ToolCatalog({
    nats: options.nats,
    namespace: names.namespace,
    logger,
    ...(options.discoveryIntervalMs ? { refreshIntervalMs: options.discoveryIntervalMs } : {}),
    // A pool member kept from serving a tool is an operator's concern whatever the thresholds.
    onConflict: (conflict) => raiseAlert(conflictAlert(conflict, new Date())),
  });
  await catalog.start();
  const breakers = new CircuitBreakerRegistry(CircuitBreakerSettings.parse(options.circuitBreaker ?? {}), logger, options.inspect);
  let results: ResultStore | undefined;
  let resultsPool: ToolWorker | undefined;
  try {
    results = await ResultStore.open(options.nats, names);
    resultsPool = await startWorker({ domain: 'results', tools: resultsTools(results), nats: options.nats, namespace: names.namespace, logger });
  } catch (error) {
    logger.warn({ err: error }, 'JetStream is unavailable: large tool results will be summarised but not kept for results_fetch');
  }
  const alerts = options.alerts ? new AlertMonitor({ thresholds: options.alerts, raise: raiseAlert }) : undefined;
  const progress = new ToolProgressInbox(options.nats, names, logger);
  return {
    catalog,
    hosting: {
      ...(alerts ? { alerts } : {}),
      ...(options.captureContent ? { captureContent: true } : {}),
      ...(options.models ? { models: options.models } : {}),
      ...(options.signer ? { signer: options.signer } : {}),
      ...(options.operatorKeys ? { operators: options.operatorKeys } : {}),
      responses: new ResponseCache(),
      progress,
      nats: options.nats,
      names,
      catalog,
      breakers,
      approvalTimeoutMs: options.approvalTimeoutMs ?? 15 * 60 * 1000,
      ...(options.approvalPolicy ? { approvalPolicy: options.approvalPolicy } : {}),
      largeResults: ResultShapingLimits.parse(options.largeResults ?? {}),
      ...(results ? { results } : {}),
      endpoint: options.model,
      defaultModel: options.defaultModel,
      tracer: options.tracer ?? troupeTracer(),
      logger,
      ...(options.inspect ? { inspect: options.inspect } : {}),
    },
    async stop() {
      await resultsPool?.stop();
      progress.stop();
      catalog.stop();
      breakers.stop();
    },
  };
}
