import type { ToolContext } from '../../tools/defineTool.ts';
import { ROOT_CONTEXT, type Context } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { DelegatedSpending } from '../../machines/delegation.ts';
import type { ToolDefinition } from '../../tools/defineTool.ts';
import { ToolError, ToolFailureCode, toolFailure, toToolFailure, type ToolFailure } from '../../tools/toolFailure.ts';
import { validateToolArguments } from '../../tools/validation.ts';
import type { ToolReply, ToolRequest } from '../../transport/messages.ts';

/** What running a request produced. */
export interface Execution {
  reply: ToolReply;
  /**
   * Set when the handler outlived the deadline (a TIMEOUT was replied) and is still running: it
   * resolves with what the handler really did, which may include a side effect.
   */
  stillRunning?: Promise<ToolReply>;
}

/**
 * Keeps what a compensation captured and returns what the reply carries instead (see `UndoStore`);
 * throws a `ToolError` when it cannot, and then the handler does not run.
 */
export type CompensationKeeper = (captured: unknown) => Promise<unknown>;

/** How one request runs besides its tool and arguments. */
export interface ExecutionOptions {
  /** The call's session was cancelled: the handler is aborted, or never starts. */
  cancel?: AbortSignal;
  /** The worker's `execute_tool` span context, handed to the handler. */
  trace?: Context;
  /** Keeps a compensation's capture and returns what the reply carries instead. */
  keepCompensation?: CompensationKeeper;
  /** The idempotency claim's fencing token, handed to the handler. */
  fencingToken?: number;
  /**
   * Awaited after every check and capture, just before the handler runs (the claim is marked
   * started); a throw fails the call with its failure and the handler does not run.
   */
  beforeHandler?: () => Promise<void>;
  /** Sends the call's progress to its caller (see `ToolContext.reportProgress`); nothing is sent without it. */
  reportProgress?: ToolContext['reportProgress'];
}

/**
 * Runs one decoded request against its tool: the deadline, the arguments against the tool's zod
 * schema, the handler with an abort signal that fires at the deadline, and the result against the
 * output schema. Every failure becomes a structured reply; this never throws. With `keepCompensation`
 * a tool's capture is kept before its handler runs and only what that returns travels in the reply;
 * without it, the capture itself does.
 */
export async function executeToolRequest(tool: ToolDefinition, request: ToolRequest, logger: Logger, options: ExecutionOptions = {}): Promise<Execution> {
  const { cancel, trace = ROOT_CONTEXT, keepCompensation } = options;
  let spent: DelegatedSpending | undefined;
  const failure = (f: ToolFailure): ToolReply => {
    logger.info({ code: f.code }, `tool call failed: ${f.message}`);
    return { type: 'tool.reply', status: 'error', callId: request.callId, failure: f, ...(spent ? { spent } : {}) };
  };
  const fail = (f: ToolFailure): Execution => ({ reply: failure(f) });
  if (request.tool !== tool.name) {
    return fail(toolFailure(ToolFailureCode.INVALID_INPUT, `This endpoint serves "${tool.name}", not "${request.tool}".`));
  }
  const remainingMs = request.deadline - Date.now();
  if (remainingMs <= 0) return fail(toolFailure(ToolFailureCode.TIMEOUT, `The call to ${tool.name} reached the worker after its deadline.`));
  const validated = validateToolArguments(tool.name, tool.input, request.arguments);
  if (!validated.ok) return fail(validated.failure);
  // Cancelled while it waited (say, for its idempotency claim): it never starts.
  if (cancel?.aborted) return fail({ code: ToolFailureCode.INTERNAL, retryable: false, message: `${tool.name} was cancelled with its session before it started.` });
  const abort = new AbortController();
  // A cancelled session aborts the handler too; the reply says so (nobody retries a cancelled call).
  const onCancel = () => abort.abort(new Error('cancelled'));
  cancel?.addEventListener('abort', onCancel, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const deadlinePassed = new Promise<'deadline'>((resolve) => {
    timer = setTimeout(() => {
      abort.abort(new Error('deadline passed'));
      resolve('deadline');
    }, remainingMs);
  });
  try {
    const context = {
      signal: abort.signal, callId: request.callId, sessionId: request.sessionId, deadline: request.deadline, logger, trace,
      ...(request.delegation ? { delegation: request.delegation } : {}),
      ...(options.fencingToken !== undefined ? { fencingToken: options.fencingToken } : {}),
      reportSpending: (reported: DelegatedSpending) => (spent = reported),
      ...(options.reportProgress ? { reportProgress: options.reportProgress } : {}),
    };
    let compensation: unknown;
    const handled: Promise<ToolReply> = Promise.resolve()
      .then(async () => {
        // What undoing will need is captured first: after the handler, the state to restore is gone.
        // It is kept before the handler runs too, so a call that changed something can always be put back.
        if (tool.compensation) {
          const captured = (await tool.compensation.capture(validated.value, context)) ?? null;
          compensation = keepCompensation ? await keepCompensation(captured) : captured;
        }
        await options.beforeHandler?.();
        // Getting ready (a claim marked started while JetStream elects a leader) can outlast the deadline.
        // The caller has been told TIMEOUT by then and may retry elsewhere: starting now would race that retry.
        if (abort.signal.aborted) {
          throw cancel?.aborted
            ? new ToolError(ToolFailureCode.INTERNAL, `${tool.name} was cancelled with its session before it started.`, { retryable: false })
            : new ToolError(ToolFailureCode.TIMEOUT, `${tool.name} could not start before its deadline; it did not run.`);
        }
        return await tool.handler(validated.value, context);
      })
      .then(
        (result) => {
          const output = tool.output.safeParse(result);
          if (!output.success) {
            logger.error({ issues: output.error.issues }, 'tool returned output that breaks its own schema');
            return failure(toolFailure(ToolFailureCode.INTERNAL, `${tool.name} produced a result that does not match its declared output.`));
          }
          logger.info('tool call succeeded');
          return {
            type: 'tool.reply' as const, status: 'ok' as const, callId: request.callId, result: output.data,
            ...(tool.compensation ? { compensation } : {}),
            ...(spent ? { spent } : {}),
          };
        },
        (error: unknown) => {
          const f = toToolFailure(error);
          if (f.code === ToolFailureCode.INTERNAL) logger.error({ err: error }, 'tool handler threw');
          return failure(f);
        },
      );
    const cancelled = new Promise<'cancelled'>((resolve) => {
      if (cancel?.aborted) resolve('cancelled');
      cancel?.addEventListener('abort', () => resolve('cancelled'), { once: true });
    });
    const first = await Promise.race([handled, deadlinePassed, cancelled]);
    if (first === 'cancelled') {
      return { ...fail({ code: ToolFailureCode.INTERNAL, retryable: false, message: `${tool.name} was cancelled with its session.` }), stillRunning: handled };
    }
    if (first === 'deadline') {
      return { ...fail(toolFailure(ToolFailureCode.TIMEOUT, `${tool.name} did not finish within its deadline (${remainingMs} ms).`)), stillRunning: handled };
    }
    return { reply: first };
  } finally {
    clearTimeout(timer);
    cancel?.removeEventListener('abort', onCancel);
  }
}
