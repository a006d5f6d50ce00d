import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { describeEvent } from '../cli/progressDisplay.ts';
import { startSession } from '../client/sessionClient.ts';
import type { SessionEvent } from '../transport/messages.ts';

/** An agent the server offers as a tool: its name, and what it is for (its tool's description). */
export interface OfferedAgent {
  name: string;
  description?: string;
}

export interface McpAgentServerOptions {
  /** A client connection to the deployment whose orchestrators run the sessions. */
  nats: NatsConnection;
  namespace: string;
  agents: readonly OfferedAgent[];
  logger: Logger;
  version: string;
}

/** What a call to an agent's tool returns in `structuredContent`. */
export interface AgentCallOutcome {
  sessionId: string;
  /** The session's final status, or `awaiting_approval` when it stopped to wait for a person. */
  status: string;
  output: string | null;
  stopReason: string;
  steps: number;
  toolCalls: number;
  usage: { inputTokens: number; outputTokens: number; costUsd: number };
  traceId: string | null;
}

const taskInput: Tool['inputSchema'] = {
  type: 'object',
  properties: { task: { type: 'string', minLength: 1, description: 'What the agent is to do, in plain words, with everything it needs to know.' } },
  required: ['task'],
  additionalProperties: false,
};

const outcomeSchema: NonNullable<Tool['outputSchema']> = {
  type: 'object',
  properties: {
    sessionId: { type: 'string' },
    status: { type: 'string', enum: ['completed', 'budget_exhausted', 'escalated', 'failed', 'cancelled', 'blocked', 'awaiting_approval'] },
    output: { type: ['string', 'null'] },
    stopReason: { type: 'string' },
    steps: { type: 'integer' },
    toolCalls: { type: 'integer' },
    usage: { type: 'object', properties: { inputTokens: { type: 'integer' }, outputTokens: { type: 'integer' }, costUsd: { type: 'number' } }, required: ['inputTokens', 'outputTokens', 'costUsd'] },
    traceId: { type: ['string', 'null'] },
  },
  required: ['sessionId', 'status', 'output', 'stopReason', 'steps', 'toolCalls', 'usage', 'traceId'],
};

/**
 * An MCP server (one per client connection) that offers each agent as a tool: a call starts a
 * session of that agent on the running deployment (as `troupe run` does) and answers with the
 * session's answer and status, `structuredContent` carrying its steps, tool calls, usage and trace
 * id. While it runs, each event a person would see in `troupe run` is a progress notification (when
 * the client asked for progress); a client's cancellation cancels the session; a session that
 * stops to wait for a person's approval answers at once with what waits and how to approve it,
 * instead of holding the call open.
 */
export function mcpAgentServer(options: McpAgentServerOptions): Server {
  const { logger } = options;
  const server = new Server({ name: 'troupe', version: options.version }, { capabilities: { tools: {} } });
  const byName = new Map(options.agents.map((agent) => [agent.name, agent]));
  server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: options.agents.map((agent): Tool => ({
      name: agent.name,
      title: `Troupe agent ${agent.name}`,
      description: agent.description ?? `Runs the Troupe agent "${agent.name}" on a task, as one session, and returns its answer.`,
      inputSchema: taskInput,
      outputSchema: outcomeSchema,
      // A session may do anything its agent's tools do.
      annotations: { readOnlyHint: false, openWorldHint: true },
    })),
  }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const agent = byName.get(request.params.name);
    if (!agent) throw new McpError(ErrorCode.InvalidParams, `There is no agent "${request.params.name}" here. Agents: ${[...byName.keys()].join(', ')}.`);
    const task = request.params.arguments?.task;
    if (typeof task !== 'string' || task.trim() === '') throw new McpError(ErrorCode.InvalidParams, 'The arguments need "task": a non-empty string saying what the agent is to do.');
    const progressToken = request.params._meta?.progressToken;
    const run = await startSession(options.nats, { task, agent: agent.name, namespace: options.namespace, whenNoOrchestrator: 'fail' });
    const log = logger.child({ sessionId: run.sessionId, agent: agent.name });
    log.info('session started for an MCP client');
    const cancel = () => void run.cancel('cancelled by the MCP client').catch((error: unknown) => log.warn({ err: error }, 'could not cancel the session'));
    extra.signal.addEventListener('abort', cancel, { once: true });
    let progress = 0;
    let finished: Extract<SessionEvent, { type: 'session.finished' }> | undefined;
    try {
      for await (const event of run.events) {
        const line = describeEvent(event);
        if (progressToken !== undefined && line !== undefined && !extra.signal.aborted) {
          progress++;
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress, message: line } }).catch(() => undefined);
        }
        if (event.type === 'approval.requested') {
          // Held open, the call would hang until a person came; answered now, it says who must act.
          run.detach();
          return awaitingApproval(run.sessionId, run.traceId ?? null, event);
        }
        if (event.type === 'session.finished') finished = event;
      }
    } finally {
      extra.signal.removeEventListener('abort', cancel);
    }
    if (!finished) throw new McpError(ErrorCode.InternalError, `Session ${run.sessionId} stopped sending events before it finished.`);
    const outcome: AgentCallOutcome = {
      sessionId: run.sessionId, status: finished.status, output: finished.output, stopReason: finished.error ? `${finished.stopReason}: ${finished.error}` : finished.stopReason,
      steps: finished.steps, toolCalls: finished.toolCalls, usage: finished.usage, traceId: finished.traceId || null,
    };
    const completed = finished.status === 'completed';
    return {
      content: [{ type: 'text', text: completed ? (finished.output ?? '') : `The session ${run.sessionId} ended ${finished.status}: ${outcome.stopReason}.` }],
      structuredContent: { ...outcome },
      ...(completed ? {} : { isError: true }),
    };
  });
  return server;
}

function awaitingApproval(sessionId: string, traceId: string | null, event: Extract<SessionEvent, { type: 'approval.requested' }>): CallToolResult {
  const calls = event.calls.map((call) => `${call.tool} ${JSON.stringify(call.arguments)}`).join('; ');
  const outcome: AgentCallOutcome = {
    sessionId, status: 'awaiting_approval', output: null, stopReason: `waiting for a person to approve: ${calls}`,
    steps: 0, toolCalls: 0, usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 }, traceId,
  };
  return {
    content: [{
      type: 'text',
      text: `The session ${sessionId} waits for a person to approve ${calls} (until ${event.expiresAt}). ` +
        `Approve with \`troupe sessions approve ${sessionId}\` (or deny), then follow it with \`troupe run --attach ${sessionId}\`.`,
    }],
    structuredContent: { ...outcome },
  };
}
