import { progressReporterFor } from './progressReporter.ts';
import { context as otelContext, trace, type Context, type Tracer } from '@opentelemetry/api';
import { headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { silentLogger } from '../../observability/logger.ts';
import { recordSpanFailure, startToolCallSpan, TroupeAttribute } from '../../observability/spans.ts';
import { troupeTracer } from '../../observability/tracer.ts';
import type { ToolDefinition } from '../../tools/defineTool.ts';
import { ToolFailureCode, toolFailure, toToolFailure } from '../../tools/toolFailure.ts';
import { PoolAnnouncement, ToolCallCancellation, ToolRequest, ToolUndoRequest, type ToolReply } from '../../transport/messages.ts';
import { startServiceResponder, type ServiceResponder } from '../../transport/serviceResponder.ts';
import { poolServiceIdentity } from './poolServiceIdentity.ts';
import { subjectTokenPattern, wireNames } from '../../transport/subjects.ts';
import { traceContextOf } from '../../transport/traceCarrier.ts';
import { decodeWireMessage, encodeWireMessage } from '../../transport/wireMessage.ts';
import { IdempotencyStore } from '../durability/idempotencyStore.ts';
import { executeToolRequest, type CompensationKeeper } from './handlerExecution.ts';
import { executeOnceOnly, type CrashPoint } from './onceOnlyExecution.ts';
import { fitReply } from './replyFitting.ts';
import { UndoStore } from './undoStore.ts';
import type { FaultCounts } from './faultCounts.ts';
import { FaultInjector, type FaultSpecification } from './workerFaults.ts';
import { approvalRefusal, undoRefusal, type CallAuthority } from './callAuthorization.ts';
import type { ApprovalPolicy } from '../toolCalls/toolCallTriage.ts';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface WorkerOptions {
  /** The tool domain this process serves; every tool's name must start with `<domain>_`. */
  domain: string;
  tools: ToolDefinition[];
  nats: NatsConnection;
  /**
   * The deployment the pool belongs to (`TROUPE_NAMESPACE`): its subjects, queue group, service
   * name and outcome bucket start with it, and only orchestrators of the same namespace see it.
   * `troupe` when absent. Throws InvalidNamespaceError for one that cannot be.
   */
  namespace?: string;
  logger?: Logger;
  tracer?: Tracer;
  /** Semantic version reported to the NATS service protocol. */
  version?: string;
  /** Faults to inject (tests, chaos drills); `TROUPE_FAULTS` in the CLI. */
  faults?: FaultSpecification;
  /**
   * Where the `times` of `faults` are counted: give every member of a pool the same counts and a
   * rule fires that many times in the pool, not in each member. This process's own when absent;
   * `TROUPE_FAULT_COUNTS_DIR` in the CLI.
   */
  faultCounts?: FaultCounts;
  /**
   * Where outcomes of side-effecting calls are recorded so a retried call never runs twice. Opened
   * in the namespace's JetStream KV bucket when absent and any tool has side effects; `false` turns the guarantee off.
   */
  idempotency?: IdempotencyStore | false;
  /**
   * Serve the tools as a specialist agent's pool (service `<namespace>-agent-<name>`, its own queue
   * group and subject) instead of a tool domain's; see `startSpecialistPool`.
   */
  specialist?: string;
  /**
   * Orchestrator nkey public keys (`TROUPE_ORCHESTRATOR_KEYS`) one of which must have signed every
   * approved call and every undo this pool runs. Without any, an approval is taken at its word and
   * any peer's undo request runs, which is safe only where every peer on the bus is trusted; the
   * pool says so in its log when it has tools that need either.
   */
  trustedOrchestrators?: readonly string[];
  /** Calls the deployment requires approval for beyond the tools' own flags (`TROUPE_REQUIRE_APPROVAL`): checked here too, not only by orchestrators. */
  approvalPolicy?: ApprovalPolicy;
}

/** One member of a tool domain's worker pool. */
export interface ToolWorker {
  readonly domain: string;
  readonly instanceId: string;
  /** Calls being handled right now. */
  inFlight(): number;
  /**
   * Drains: stops taking new calls (the pool's other members get them), waits for the calls in
   * flight to finish, then leaves the service protocol. Does not close the NATS connection.
   */
  stop(): Promise<void>;
}

/** Thrown at start for a worker that could never serve its tools. */
export class WorkerConfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * Serves one domain's tools as a NATS service in the domain's queue group: start more processes
 * with the same domain to scale the pool. Every request is decoded, its arguments validated
 * against the tool's zod schema, run with its deadline, and its output checked against the output
 * schema; every failure becomes a structured error reply, never a crash.
 *
 * @example
 * const nc = await connectToNats({ url, name: 'worker-calc', logger });
 * const worker = await startWorker({ domain: 'calc', tools: calcTools(), nats: nc, logger });
 * process.once('SIGTERM', () => void worker.stop().then(() => nc.drain()));
 */
export async function startWorker(options: WorkerOptions): Promise<ToolWorker> {
  const { domain, tools, nats: nc } = options;
  const logger = (options.logger ?? silentLogger()).child({ domain });
  const tracer = options.tracer ?? troupeTracer();
  const names = wireNames(options.namespace);
  if (!subjectTokenPattern.test(domain)) throw new WorkerConfigurationError(`Domain "${domain}" must be letters, digits, "-" or "_".`);
  if (tools.length === 0) throw new WorkerConfigurationError(`The ${domain} worker has no tools to serve.`);
  if (options.specialist && tools.length !== 1) throw new WorkerConfigurationError(`A specialist pool serves one tool, its delegate_${options.specialist}.`);
  for (const tool of tools) {
    if (tool.domain !== domain) {
      throw new WorkerConfigurationError(`Tool "${tool.name}" belongs to domain "${tool.domain}", not "${domain}".`);
    }
  }
  const byName = new Map(tools.map((t) => [t.name, t]));
  const faults = options.faults ? new FaultInjector(options.faults, options.faultCounts ? { counts: options.faultCounts } : {}) : undefined;
  let outcomes: IdempotencyStore | undefined;
  if (options.idempotency !== false && tools.some((t) => t.sideEffects)) {
    try {
      outcomes = options.idempotency ?? (await IdempotencyStore.open(nc, names, { logger }));
    } catch (error) {
      throw new WorkerConfigurationError(
        `The ${domain} pool has side-effecting tools, whose outcomes are recorded in JetStream KV so retries never run them twice, but JetStream is not available (start nats-server with -js): ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
  // Captures of undoable calls are kept in JetStream, not sent in replies: one can be as large as
  // the file it saved, and a reply over a message's limit would lose both the reply and the capture.
  let undoData: UndoStore | undefined;
  if (tools.some((t) => t.compensation)) {
    try {
      undoData = await UndoStore.open(nc, names, domain);
    } catch (error) {
      throw new WorkerConfigurationError(
        `The ${domain} pool has tools that can be undone, whose captures are kept in a JetStream object store, but JetStream is not available (start nats-server with -js): ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
  const keeperFor = (tool: ToolDefinition, request: ToolRequest): CompensationKeeper | undefined =>
    undoData && tool.compensation ? (captured) => (undoData as UndoStore).keep(request.sessionId, request.callId, captured, tool.name) : undefined;
  const maxPayload = () => nc.info?.max_payload ?? 1024 * 1024;
  const { specialist } = options;
  const queue = specialist ? names.queueGroups.specialist(specialist) : names.queueGroups.pool(domain);
  const subjectOf = (tool: ToolDefinition) => (specialist ? names.subjects.delegation(specialist) : names.subjects.tool(domain, tool.name));
  const responder: ServiceResponder = startServiceResponder(nc, poolServiceIdentity({ names, domain, tools, queue, subjectOf, version: options.version, specialist }));
  const instanceLogger = logger.child({ instanceId: responder.id });
  const authority: CallAuthority = {
    namespace: names.namespace,
    trustedOrchestrators: new Set(options.trustedOrchestrators ?? []),
    ...(options.approvalPolicy ? { approvalPolicy: options.approvalPolicy } : {}),
  };
  if (authority.trustedOrchestrators.size === 0 && (options.approvalPolicy || tools.some((t) => t.requiresApproval || t.compensation))) {
    instanceLogger.warn(
      { approvals: 'unverified' },
      'approvals and undo requests are NOT verified: no orchestrator keys are configured (TROUPE_ORCHESTRATOR_KEYS), so any peer on the bus can approve a call or undo one',
    );
  }
  const inFlight = new Set<Promise<void>>();
  // Calls running here by call id, so a cancellation broadcast reaches the one handler running it.
  const cancellations = new Map<string, AbortController>();
  let draining = false;

  const handle = async (tool: ToolDefinition, msg: Msg): Promise<void> => {
    const started = process.hrtime.bigint();
    const parent = traceContextOf(msg.headers);
    const decoded = decodeWireMessage(ToolRequest, msg.data, `The request to ${tool.name}`);
    if (!decoded.ok) {
      instanceLogger.warn({ tool: tool.name, error: decoded.error }, 'malformed tool request refused');
      reply(msg, { type: 'tool.reply', status: 'error', callId: 'unknown', failure: toolFailure(ToolFailureCode.INVALID_INPUT, decoded.error) });
      responder.record(tool.name, Number(process.hrtime.bigint() - started), decoded.error);
      return;
    }
    const request = decoded.value;
    const span = startToolCallSpan(tracer, parent, { sessionId: request.sessionId, tool: tool.name, callId: request.callId, side: 'worker' });
    span.setAttribute(TroupeAttribute.workerInstance, responder.id);
    span.setAttribute(TroupeAttribute.toolDomain, domain);
    const callLogger = instanceLogger.child({ sessionId: request.sessionId, callId: request.callId, tool: tool.name });
    const spanContext = trace.setSpan(parent, span);
    const outcome = await otelContext.with(spanContext, () => respondTo(tool, request, callLogger, spanContext));
    if (outcome?.status === 'error') recordSpanFailure(span, outcome.failure.code, outcome.failure.message);
    span.setAttribute(TroupeAttribute.toolStatus, outcome?.status ?? 'no_reply');
    span.end();
    if (outcome) reply(msg, outcome, tool);
    responder.record(tool.name, Number(process.hrtime.bigint() - started), outcome?.status === 'error' ? outcome.failure.message : undefined);
  };

  /** What the worker sends for one call: `undefined` when a fault says to send nothing. */
  const respondTo = async (tool: ToolDefinition, request: ToolRequest, callLogger: Logger, traceContext: Context): Promise<ToolReply | undefined> => {
    const refusal = approvalRefusal(tool, request, authority);
    if (refusal) {
      callLogger.warn({ reason: refusal.message }, 'refused a call that needs approval but carries no valid one');
      return { type: 'tool.reply', status: 'error', callId: request.callId, failure: refusal };
    }
    if (request.approval) callLogger.info({ approvedBy: request.approval.by, signedBy: request.approval.grant?.signer }, 'running an approved call');
    const fault = faults?.next(tool.name);
    if (fault) callLogger.warn({ fault }, `injecting fault: ${fault.kind}`);
    // What a kill -9 looks like to the pool: the process is gone mid-call, no reply, no clean-up.
    const crashAt = (point: CrashPoint | 'before_claim') => {
      if (fault?.kind === 'crash' && fault.at === point) process.kill(process.pid, 'SIGKILL');
    };
    switch (fault?.kind) {
      case 'crash':
        if (fault.at !== 'before_claim') break;
        crashAt('before_claim');
        return undefined;
      case 'error':
        return { type: 'tool.reply', status: 'error', callId: request.callId, failure: toolFailure(fault.code, fault.message) };
      case 'timeout':
        await sleep(Math.max(0, request.deadline - Date.now()));
        return undefined;
      case 'delay':
        await sleep(fault.delayMs);
        break;
    }
    const cancel = new AbortController();
    cancellations.set(request.callId, cancel);
    let reply: ToolReply;
    const keepCompensation = keeperFor(tool, request);
    const reportProgress = progressReporterFor(nc, names, request, callLogger);
    try {
      reply = tool.sideEffects && outcomes
        ? await executeOnceOnly({
            store: outcomes, tool, request, instanceId: responder.id, logger: callLogger, cancel: cancel.signal, trace: traceContext,
            ...(keepCompensation ? { keepCompensation } : {}),
            fit: (body) => fitReply(body, maxPayload(), { tool: tool.name, sideEffects: tool.sideEffects }).reply,
            reached: crashAt,
            ...(reportProgress ? { reportProgress } : {}),
          })
        : (await executeToolRequest(tool, request, callLogger, { cancel: cancel.signal, trace: traceContext, ...(keepCompensation ? { keepCompensation } : {}), ...(reportProgress ? { reportProgress } : {}) })).reply;
      if (!tool.sideEffects) crashAt('after_effect');
    } finally {
      cancellations.delete(request.callId);
    }
    return fault?.kind === 'drop_reply' ? undefined : reply;
  };

  /** Undoes one executed call from what its compensation captured; answers like a tool call. */
  const undoCall = async (name: string, compensation: NonNullable<ToolDefinition['compensation']>, msg: Msg): Promise<void> => {
    const decoded = decodeWireMessage(ToolUndoRequest, msg.data, `The undo request for ${name}`);
    if (!decoded.ok) {
      reply(msg, { type: 'tool.reply', status: 'error', callId: 'unknown', failure: toolFailure(ToolFailureCode.INVALID_INPUT, decoded.error) });
      return;
    }
    const request = decoded.value;
    const callLogger = instanceLogger.child({ sessionId: request.sessionId, callId: request.callId, tool: name, undo: true });
    const refusal = request.tool === name ? undoRefusal(name, request, authority) : toolFailure(ToolFailureCode.INVALID_INPUT, `This endpoint undoes ${name} calls, not ${request.tool}.`);
    if (refusal) {
      callLogger.warn({ reason: refusal.message }, 'refused an undo request');
      responder.record(`${name}__undo`, 0, refusal.message);
      reply(msg, { type: 'tool.reply', status: 'error', callId: request.callId, failure: refusal });
      return;
    }
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error('deadline passed')), Math.max(0, request.deadline - Date.now()));
    try {
      // The request names the capture; the pool restores only from the one it kept for that call.
      const captured = undoData ? await undoData.take(request.sessionId, request.callId, request.compensation, name) : request.compensation;
      await compensation.undo(captured, {
        signal: abort.signal, callId: request.callId, sessionId: request.sessionId, deadline: request.deadline, logger: callLogger,
        trace: traceContextOf(msg.headers), reportSpending: () => {},
      });
      callLogger.info('call undone');
      responder.record(`${name}__undo`, 0);
      reply(msg, { type: 'tool.reply', status: 'ok', callId: request.callId, result: null });
    } catch (error) {
      const failure = toToolFailure(error);
      callLogger.warn({ err: error }, 'could not undo the call');
      responder.record(`${name}__undo`, 0, failure.message);
      reply(msg, { type: 'tool.reply', status: 'error', callId: request.callId, failure });
    } finally {
      clearTimeout(timer);
    }
  };

  const reply = (msg: Msg, original: ToolReply, tool?: ToolDefinition): void => {
    if (!msg.reply) {
      instanceLogger.warn({ subject: msg.subject }, 'tool request without a reply subject; result dropped');
      return;
    }
    const limit = maxPayload();
    const { reply: body, data, oversizedBytes } = fitReply(original, limit, { tool: tool?.name ?? 'the tool', sideEffects: tool?.sideEffects ?? false });
    if (oversizedBytes !== undefined) instanceLogger.warn({ subject: msg.subject, bytes: oversizedBytes, limit }, 'tool result too large for a NATS message');
    // The service protocol's error headers, so generic NATS tooling counts and shows failures too.
    const h = body.status === 'error' ? natsHeaders() : undefined;
    if (h && body.status === 'error') {
      // Header values cannot hold line breaks; a failure message (a JSON parse error, a stack-ish message) may.
      h.set('Nats-Service-Error', body.failure.message.replace(/[\r\n]+/g, ' ').slice(0, 512));
      h.set('Nats-Service-Error-Code', body.failure.code === ToolFailureCode.INTERNAL ? '500' : '400');
    }
    try {
      msg.respond(data, h ? { headers: h } : undefined);
    } catch (error) {
      instanceLogger.error({ err: error, subject: msg.subject }, 'could not send the reply');
    }
  };

  const subscriptions: Subscription[] = tools.map((tool) =>
    nc.subscribe(subjectOf(tool), {
      queue,
      callback: (error, msg) => {
        if (error) {
          instanceLogger.error({ err: error }, 'subscription error');
          return;
        }
        const work = handle(tool, msg).catch((failure: unknown) => instanceLogger.error({ err: failure }, 'tool request handling failed'));
        inFlight.add(work);
        void work.finally(() => inFlight.delete(work));
      },
    }),
  );
  for (const tool of tools) {
    const compensation = tool.compensation;
    if (!compensation) continue;
    subscriptions.push(
      nc.subscribe(names.subjects.toolUndo(domain, tool.name), {
        queue,
        callback: (_error, msg) => {
          const work = undoCall(tool.name, compensation, msg).catch((failure: unknown) => instanceLogger.error({ err: failure }, 'undo handling failed'));
          inFlight.add(work);
          void work.finally(() => inFlight.delete(work));
        },
      }),
    );
  }
  subscriptions.push(
    nc.subscribe(names.subjects.toolCallCancellations, {
      callback: (_error, msg) => {
        const decoded = decodeWireMessage(ToolCallCancellation, msg.data, 'A tool-call cancellation');
        if (!decoded.ok) {
          instanceLogger.warn({ error: decoded.error }, 'ignoring a malformed cancellation');
          return;
        }
        for (const callId of decoded.value.callIds) {
          const running = cancellations.get(callId);
          if (!running) continue;
          instanceLogger.info({ callId, reason: decoded.value.reason }, 'cancelling a call in flight');
          running.abort();
        }
      },
    }),
  );
  await nc.flush();
  const announcement: PoolAnnouncement = { type: 'pool.started', domain, instanceId: responder.id, tools: [...byName.keys()] };
  nc.publish(names.subjects.poolAnnouncements, encodeWireMessage(announcement));
  instanceLogger.info({ tools: [...byName.keys()], queue }, `worker serving ${domain}`);

  return {
    domain,
    instanceId: responder.id,
    inFlight: () => inFlight.size,
    async stop() {
      if (draining) return;
      draining = true;
      instanceLogger.info({ inFlight: inFlight.size }, 'draining: no new calls, finishing the ones in flight');
      await Promise.all(subscriptions.map((sub) => sub.drain()));
      await Promise.allSettled([...inFlight]);
      responder.stop();
      instanceLogger.info('worker stopped');
    },
  };
}
