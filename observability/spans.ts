import { SpanKind, SpanStatusCode, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { redactUrlCredentials } from './redactUrl.ts';

/**
 * OpenTelemetry GenAI semantic-convention attribute names. Copied rather than imported from
 * `@opentelemetry/semantic-conventions/incubating`, whose unstable constants may change in a minor.
 */
export const GenAiAttribute = {
  operationName: 'gen_ai.operation.name',
  providerName: 'gen_ai.provider.name',
  requestModel: 'gen_ai.request.model',
  responseModel: 'gen_ai.response.model',
  responseId: 'gen_ai.response.id',
  finishReasons: 'gen_ai.response.finish_reasons',
  inputTokens: 'gen_ai.usage.input_tokens',
  outputTokens: 'gen_ai.usage.output_tokens',
  conversationId: 'gen_ai.conversation.id',
  agentName: 'gen_ai.agent.name',
  toolName: 'gen_ai.tool.name',
  toolCallId: 'gen_ai.tool.call.id',
  toolType: 'gen_ai.tool.type',
  requestStream: 'gen_ai.request.stream',
  errorType: 'error.type',
  serverAddress: 'server.address',
  serverPort: 'server.port',
  tokenType: 'gen_ai.token.type',
  /** Opt-in content (TROUPE_CAPTURE_CONTENT): what was sent and received. */
  inputMessages: 'gen_ai.input.messages',
  outputMessages: 'gen_ai.output.messages',
  toolCallArguments: 'gen_ai.tool.call.arguments',
  toolCallResult: 'gen_ai.tool.call.result',
  userId: 'user.id',
} as const;

/** Troupe's own attributes, for what the GenAI conventions have no name for. */
export const TroupeAttribute = {
  turn: 'troupe.turn',
  costUsd: 'troupe.cost_usd',
  sessionStatus: 'troupe.session.status',
  stopReason: 'troupe.session.stop_reason',
  steps: 'troupe.session.steps',
  toolCalls: 'troupe.session.tool_calls',
  toolDomain: 'troupe.tool.domain',
  toolStatus: 'troupe.tool.status',
  workerInstance: 'troupe.worker.instance',
  /** On a turn span: the model the routing policy chose, the rule that chose it, and why. */
  routedModel: 'troupe.routing.model',
  routingRule: 'troupe.routing.rule',
  routingReason: 'troupe.routing.reason',
  /** On a session span: how deep in a delegation tree it runs (0 for a client's session). */
  delegationDepth: 'troupe.delegation.depth',
  /** On a specialist session's span: the session that delegated to it. */
  parentSessionId: 'troupe.delegation.parent_session_id',
  /** On a `chat` span that is not a turn's own call: what it was for (`summary`). */
  contextPurpose: 'troupe.context.purpose',
  /** Whom a session works for, when its caller said; also an attribute of the cost and session metrics. */
  tenant: 'troupe.tenant',
  /** On turn and `chat` spans of a session with a workflow: the active phases, outermost first (`investigate`, `review › legal`). */
  workflowState: 'troupe.workflow.state',
  /** On a `guardrail <name>` span: the guardrail, the point it checked, what it decided, and why or what it changed (never the content). */
  guardrail: 'troupe.guardrail.name',
  guardrailPoint: 'troupe.guardrail.point',
  guardrailOutcome: 'troupe.guardrail.outcome',
  guardrailDetail: 'troupe.guardrail.detail',
} as const;

/**
 * Marks a span failed with a low-cardinality `error.type` and a readable message. The message is
 * often an error's text, which may quote a URL with credentials in it (a model endpoint's, NATS's):
 * those are stripped, as in logs, before they leave for a collector.
 */
export function recordSpanFailure(span: Span, errorType: string, message: string): void {
  span.setAttribute(GenAiAttribute.errorType, errorType);
  span.setStatus({ code: SpanStatusCode.ERROR, message: redactUrlCredentials(message) });
}

/** What an `invoke_agent` span says about its session. */
export interface SessionSpanAttributes {
  sessionId: string;
  agentName: string;
  model: string;
  /** 0 (the default) for a client's session; deeper for a specialist's. */
  depth?: number;
  /** The session that delegated to this one. */
  parentSessionId?: string;
  tenant?: string;
  user?: string;
}

/** `invoke_agent {agent}`: the whole session. The session host ends it when the session reaches a final state. */
export function startSessionSpan(tracer: Tracer, parent: Context, a: SessionSpanAttributes): Span {
  return tracer.startSpan(
    `invoke_agent ${a.agentName}`,
    {
      kind: SpanKind.INTERNAL,
      attributes: {
        [GenAiAttribute.operationName]: 'invoke_agent',
        [GenAiAttribute.providerName]: 'troupe',
        [GenAiAttribute.agentName]: a.agentName,
        [GenAiAttribute.conversationId]: a.sessionId,
        [GenAiAttribute.requestModel]: a.model,
        [TroupeAttribute.delegationDepth]: a.depth ?? 0,
        ...(a.tenant ? { [TroupeAttribute.tenant]: a.tenant } : {}),
        ...(a.user ? { [GenAiAttribute.userId]: a.user } : {}),
        ...(a.parentSessionId ? { [TroupeAttribute.parentSessionId]: a.parentSessionId } : {}),
      },
    },
    parent,
  );
}

/** `turn {n}`: one model call and the tool calls it asked for. Ended when the next turn starts or the session ends. */
export function startTurnSpan(tracer: Tracer, parent: Context, a: { sessionId: string; turn: number }): Span {
  return tracer.startSpan(
    `turn ${a.turn}`,
    { kind: SpanKind.INTERNAL, attributes: { [TroupeAttribute.turn]: a.turn, [GenAiAttribute.conversationId]: a.sessionId } },
    parent,
  );
}

/** `chat {model}`: one model call. The model actor ends it. */
export function startChatSpan(
  tracer: Tracer,
  parent: Context,
  a: { sessionId: string; model: string; providerName: string; serverAddress?: string; serverPort?: number },
): Span {
  const span = tracer.startSpan(
    `chat ${a.model}`,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        [GenAiAttribute.operationName]: 'chat',
        [GenAiAttribute.providerName]: a.providerName,
        [GenAiAttribute.requestModel]: a.model,
        [GenAiAttribute.conversationId]: a.sessionId,
        [GenAiAttribute.requestStream]: true,
      },
    },
    parent,
  );
  if (a.serverAddress) span.setAttribute(GenAiAttribute.serverAddress, a.serverAddress);
  if (a.serverPort) span.setAttribute(GenAiAttribute.serverPort, a.serverPort);
  return span;
}

/**
 * `execute_tool {tool}` on either side of the wire: CLIENT on the orchestrator, SERVER on the worker
 * (its parent comes from the NATS headers), so trace viewers draw the hop between processes.
 * Whoever starts it ends it.
 */
export function startToolCallSpan(
  tracer: Tracer,
  parent: Context,
  a: { sessionId: string; tool: string; callId: string; side: 'orchestrator' | 'worker' },
): Span {
  return tracer.startSpan(
    `execute_tool ${a.tool}`,
    {
      kind: a.side === 'orchestrator' ? SpanKind.CLIENT : SpanKind.SERVER,
      attributes: {
        [GenAiAttribute.operationName]: 'execute_tool',
        [GenAiAttribute.toolName]: a.tool,
        [GenAiAttribute.toolCallId]: a.callId,
        [GenAiAttribute.toolType]: 'function',
        [GenAiAttribute.conversationId]: a.sessionId,
      },
    },
    parent,
  );
}
