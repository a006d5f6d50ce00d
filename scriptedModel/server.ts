import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { ChatRequest } from './chatRequest.ts';
import { newCompletionId, resolveTurn, toChatCompletion, toChatCompletionChunks, type TurnFault } from './chatCompletion.ts';
import { createFaultInjector, type FaultInjector } from './faultInjector.ts';
import type { ScriptFault } from './script.ts';
import type { ScriptLibrary } from './scriptLibrary.ts';

/** How to start the scripted model server. */
export interface ScriptedModelServerOptions {
  readonly scripts: ScriptLibrary;
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  /** Defaults to 127.0.0.1: the server has no authentication. */
  readonly host?: string;
  /** When given, one info line per completion and per injected fault, and one warn line per rejected request. */
  readonly logger?: Logger;
  /** What `GET /v1/models` lists besides the models named in scripts; defaults to `['scripted']`. */
  readonly models?: readonly string[];
}

/** A listening scripted model server. */
export interface ScriptedModelServer {
  /** The base URL for an OpenAI client, ending in `/v1`. */
  readonly url: string;
  readonly port: number;
  /** Stops listening and closes every connection, idle keep-alive ones included; resolves when closed. */
  close(): Promise<void>;
}

/** The maximum request body; larger bodies get 413. */
export const maxBodyBytes = 10 * 1024 * 1024;

/** A request the server refuses, in OpenAI's error shape on the wire. */
interface Refusal {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

/**
 * Starts an OpenAI-compatible server that plays scripts: `POST /v1/chat/completions` (JSON or
 * SSE), `GET /v1/models`, `GET /healthz`. Every request is answered from the conversation it
 * carries, so any number of conversations can run concurrently; the only server-side state is how
 * many times each conversation has been faulted at each step (see {@link FaultInjector}). A `delay`
 * fault waits without blocking other requests. Bad input is answered with an OpenAI-shaped error, never by crashing. Rejects if the port
 * cannot be bound. The caller owns the server and must {@link ScriptedModelServer.close} it.
 *
 * @example
 * const server = await startScriptedModelServer({ scripts: await loadScripts([dir]) });
 * const client = new OpenAI({ baseURL: server.url, apiKey: 'unused' });
 */
export async function startScriptedModelServer(options: ScriptedModelServerOptions): Promise<ScriptedModelServer> {
  const { scripts, logger } = options;
  const host = options.host ?? '127.0.0.1';
  const startedAt = Math.floor(Date.now() / 1000);
  const faults = createFaultInjector();
  const models = [...new Set([...(options.models ?? ['scripted']), ...scripts.scripts.flatMap((s) => s.steps.flatMap((step) => (step.model ? [step.model] : [])))])];

  const routes: Record<string, Record<string, (req: IncomingMessage, res: ServerResponse) => Promise<void> | void>> = {
    '/v1/chat/completions': { POST: (req, res) => chatCompletions(req, res, scripts, faults, logger) },
    '/v1/models': {
      GET: (_req, res) =>
        sendJson(res, 200, { object: 'list', data: models.map((id) => ({ id, object: 'model', created: startedAt, owned_by: 'troupe-scripted' })) }),
    },
    '/healthz': { GET: (_req, res) => sendJson(res, 200, { status: 'ok' }) },
  };

  const server = createServer((req, res) => {
    // A client that goes away mid-response must not become an unhandled 'error' event.
    res.on('error', (error) => logger?.debug({ err: error }, 'scripted model response failed'));
    void route(req, res).catch((error: unknown) => {
      logger?.error({ err: error }, 'scripted model failed on a request');
      if (!res.headersSent) refuse(res, { status: 500, code: 'internal_error', message: `the scripted model failed: ${String(error)}` }, logger);
      else res.destroy();
    });
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://scripted.invalid').pathname;
    const methods = routes[path];
    if (!methods) return refuse(res, { status: 404, code: 'not_found', message: `no route ${req.method} ${path}; this server serves POST /v1/chat/completions, GET /v1/models and GET /healthz` }, logger);
    const handler = req.method ? methods[req.method] : undefined;
    if (!handler) {
      res.setHeader('allow', Object.keys(methods).join(', '));
      return refuse(res, { status: 405, code: 'method_not_allowed', message: `${req.method} is not allowed on ${path}; use ${Object.keys(methods).join(' or ')}` }, logger);
    }
    await handler(req, res);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${urlHost(host)}:${port}/v1`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

async function chatCompletions(req: IncomingMessage, res: ServerResponse, scripts: ScriptLibrary, faults: FaultInjector, logger: Logger | undefined): Promise<void> {
  const body = await readBody(req);
  if (body === undefined) return; // the client went away; nobody to answer
  if (typeof body !== 'string') return refuse(res, body, logger);
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error) {
    return refuse(res, { status: 400, code: 'invalid_json', message: `the request body is not valid JSON: ${(error as Error).message}` }, logger);
  }
  const parsed = ChatRequest.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(body)'}: ${i.message}`).join('; ');
    return refuse(res, { status: 400, code: 'invalid_request', message: `invalid chat completion request: ${issues}` }, logger);
  }
  const request = parsed.data;
  const choice = scripts.choose(request.messages);
  if ('error' in choice) return refuse(res, { status: 400, code: 'no_script_step', message: choice.error }, logger);
  const { script, stepIndex } = choice;
  const step = script.steps[stepIndex];
  if (!step) return refuse(res, { status: 400, code: 'no_script_step', message: `script "${script.name}" has no step ${stepIndex}` }, logger);

  if (step.expectTools) {
    const offered = offeredToolNames(request.tools);
    const expected = [...new Set(step.expectTools)].sort();
    if (offered.join('\n') !== expected.join('\n')) {
      return refuse(res, {
        status: 400, code: 'unexpected_tools',
        message: `script "${script.name}" step ${stepIndex} expects the tools [${expected.join(', ')}], but the request offers [${offered.join(', ')}]`,
      }, logger);
    }
  }

  const injected = faults.take(script, stepIndex, request);
  const fault = injected?.fault;
  if (injected) logger?.info({ script: script.name, step: stepIndex, fault: injected.fault.kind, attempt: injected.attempt, times: injected.fault.times }, 'scripted fault injected');
  if (fault?.kind === 'http_error') {
    const attempt = `attempt ${injected?.attempt ?? 1}${fault.times === undefined ? '' : ` of ${fault.times}`}`;
    return sendFaultError(res, fault, `scripted fault: HTTP ${fault.status} from script "${script.name}" step ${stepIndex} (${attempt})`);
  }
  // No status line at all: the client sees the connection drop.
  if (fault?.kind === 'disconnect') return void res.destroy();

  const turn = resolveTurn(request, step, stepIndex, fault && isTurnFault(fault) ? fault : undefined);
  if (!turn.ok) return refuse(res, { status: 400, code: 'template_reference_missing', message: `script "${script.name}" step ${stepIndex}: ${turn.error}` }, logger);

  const stream = request.stream === true;
  const delayMs = fault?.kind === 'delay' ? fault.delayMs : 0;
  logger?.info({ script: script.name, step: stepIndex, stream, model: turn.value.model }, 'scripted completion');
  const envelope = { id: newCompletionId(), created: Math.floor(Date.now() / 1000) };
  if (!stream) {
    if (delayMs > 0 && !(await waitWhileConnected(res, delayMs))) return;
    return sendJson(res, 200, toChatCompletion(turn.value, envelope));
  }
  const chunks = toChatCompletionChunks(turn.value, envelope, { includeUsage: request.stream_options?.include_usage === true });
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
  if (delayMs > 0) {
    // Headers first, as a slow model's would arrive: the wait is time to first token.
    res.flushHeaders();
    if (!(await waitWhileConnected(res, delayMs))) return;
  }
  for (const chunk of chunks) res.write(`data: ${JSON.stringify(chunk)}\n\n`);
  res.end('data: [DONE]\n\n');
}

/** The function names a request offers, sorted, without repeats; tools of other kinds are left out. */
function offeredToolNames(tools: unknown[] | null | undefined): string[] {
  const names = (tools ?? []).flatMap((tool) => {
    const name = (tool as { function?: { name?: unknown } } | null)?.function?.name;
    return typeof name === 'string' ? [name] : [];
  });
  return [...new Set(names)].sort();
}

function isTurnFault(fault: ScriptFault): fault is TurnFault {
  return fault.kind === 'malformed_tool_call' || fault.kind === 'refusal' || fault.kind === 'empty';
}

/**
 * An `http_error` fault in OpenAI's error shape, code `scripted_fault`. `Retry-After` carries
 * whole seconds as the HTTP standard wants; `retry-after-ms` carries the exact wait, and the
 * `openai` client prefers it.
 */
function sendFaultError(res: ServerResponse, fault: Extract<ScriptFault, { kind: 'http_error' }>, defaultMessage: string): void {
  const headers: Record<string, string> = {};
  if (fault.retryAfterSeconds !== undefined) {
    headers['retry-after'] = String(Math.ceil(fault.retryAfterSeconds));
    headers['retry-after-ms'] = String(Math.round(fault.retryAfterSeconds * 1000));
  }
  sendJson(res, fault.status, errorBody(fault.status, 'scripted_fault', fault.message ?? defaultMessage), headers);
}

/** Waits `ms` without blocking other requests; false, as soon as it happens, when the client goes away. */
async function waitWhileConnected(res: ServerResponse, ms: number): Promise<boolean> {
  if (res.closed) return false;
  const gone = new AbortController();
  const onClose = () => gone.abort();
  res.once('close', onClose);
  try {
    await sleep(ms, undefined, { signal: gone.signal });
    return true;
  } catch {
    return false;
  } finally {
    res.off('close', onClose);
  }
}

/**
 * The body as text; a {@link Refusal} when it exceeds {@link maxBodyBytes}; undefined when the
 * client aborted. An oversized body is still drained (not kept) so that the 413 reaches a client
 * that is still sending.
 */
function readBody(req: IncomingMessage): Promise<string | Refusal | undefined> {
  return new Promise((resolve) => {
    const declared = Number(req.headers['content-length']);
    let size = 0;
    let tooLarge = Number.isFinite(declared) && declared > maxBodyBytes;
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => {
      size += part.length;
      if (size > maxBodyBytes) tooLarge = true;
      if (tooLarge) parts.length = 0;
      else parts.push(part);
    });
    req.on('end', () =>
      resolve(
        tooLarge
          ? { status: 413, code: 'request_too_large', message: `the request body exceeds the limit of ${maxBodyBytes} bytes` }
          : Buffer.concat(parts).toString('utf8'),
      ),
    );
    req.on('error', () => resolve(undefined));
    req.on('close', () => {
      if (!req.complete) resolve(undefined);
    });
  });
}

function refuse(res: ServerResponse, refusal: Refusal, logger: Logger | undefined): void {
  logger?.warn({ status: refusal.status, code: refusal.code, reason: refusal.message }, 'scripted model refused a request');
  sendJson(res, refusal.status, errorBody(refusal.status, refusal.code, refusal.message));
}

// OpenAI's error shape; its `type` follows the status.
function errorBody(status: number, code: string, message: string) {
  const type = status === 429 ? 'rate_limit_exceeded' : status >= 500 ? 'server_error' : 'invalid_request_error';
  return { error: { message, type, param: null, code } };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

// The URL clients should use: a wildcard bind is reached over loopback, IPv6 needs brackets.
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
