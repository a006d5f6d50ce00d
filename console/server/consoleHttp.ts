import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import type { ApiError } from '../consoleApi.ts';

/** A refusal the console answers with its status code and an {@link ApiError} body. */
export class ConsoleRequestError extends Error {
  readonly status: number;
  readonly code: ApiError['error']['code'];
  readonly issues: Array<{ path: string; message: string }> | undefined;

  constructor(status: number, code: ApiError['error']['code'], message: string, issues?: Array<{ path: string; message: string }>) {
    super(message);
    this.status = status;
    this.code = code;
    this.issues = issues;
  }
}

const maxBodyBytes = 256 * 1024;

export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

export function sendError(response: ServerResponse, error: ConsoleRequestError): void {
  sendJson(response, error.status, { error: { code: error.code, message: error.message, ...(error.issues ? { issues: error.issues } : {}) } } satisfies ApiError);
}

/**
 * A JSON request body, checked against `schema`. Controls must come as `application/json`: a page
 * on another site can send a form or plain text to a local port without asking, but not JSON.
 */
export async function readJsonBody<S extends z.ZodType>(request: IncomingMessage, schema: S): Promise<z.output<S>> {
  if (!/^application\/json\b/i.test(request.headers['content-type'] ?? '')) {
    throw new ConsoleRequestError(415, 'invalid_request', 'Send the body as JSON, with content-type: application/json.');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > maxBodyBytes) throw new ConsoleRequestError(413, 'invalid_request', `The body is larger than ${maxBodyBytes / 1024} KB.`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  let json: unknown;
  try {
    json = text.trim() === '' ? {} : JSON.parse(text);
  } catch (error) {
    throw new ConsoleRequestError(400, 'invalid_request', `The body is not JSON: ${(error as Error).message}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => ({ path: issue.path.map(String).join('.') || '(body)', message: issue.message }));
    throw new ConsoleRequestError(400, 'invalid_request', `The body is not valid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  return parsed.data;
}

/**
 * An open Server-Sent Events response. `send` writes one event and says whether the page keeps up;
 * `drained` resolves once what is buffered has gone out (or the page left), for a sender that can
 * wait; `closed` resolves when the page goes away. A page that stops reading is cut off once
 * `maxBufferedBytes` wait for it (its EventSource reconnects), so it never holds the process's memory.
 */
export interface EventStreamResponse {
  send(kind: string, data: unknown): boolean;
  /** Writes an event whose data is already JSON (one serialisation for many pages). */
  sendJson(kind: string, json: string): boolean;
  drained(): Promise<void>;
  readonly closed: Promise<void>;
  end(): void;
}

const maxBufferedBytes = 8 * 1024 * 1024;

export function openEventStream(request: IncomingMessage, response: ServerResponse): EventStreamResponse {
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    // Proxies (nginx) would otherwise hold events back.
    'x-accel-buffering': 'no',
  });
  // Reconnects after a drop come 1 s apart; a comment every 15 s keeps idle proxies from closing it.
  response.write('retry: 1000\n\n');
  const keepAlive = setInterval(() => response.write(': keep-alive\n\n'), 15_000);
  let done = false;
  const closed = new Promise<void>((resolve) => {
    const finish = () => {
      done = true;
      clearInterval(keepAlive);
      resolve();
    };
    request.once('close', finish);
    response.once('close', finish);
  });
  const sendJson = (kind: string, json: string): boolean => {
    if (done) return false;
    response.write(`event: ${kind}\ndata: ${json}\n\n`);
    if (response.writableLength > maxBufferedBytes) {
      response.destroy();
      return false;
    }
    return response.writableLength < 256 * 1024;
  };
  return {
    send: (kind, data) => sendJson(kind, JSON.stringify(data)),
    sendJson,
    drained: () => (done || response.writableLength === 0 ? Promise.resolve() : Promise.race([new Promise<void>((resolve) => response.once('drain', () => resolve())), closed])),
    closed,
    end() {
      if (!done) response.end();
    },
  };
}

/** Whether `given` is `token`, compared in constant time. */
export function tokenMatches(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Whether an address only this machine can reach was asked for. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Who may use the console. With a token, every API request carries it (a header, or `?token=` for
 * the event streams, which browsers open without headers); the page's files are served to anyone. Without one the console listens on loopback
 * only, and refuses requests whose `Host` names another machine: a web page elsewhere could
 * otherwise reach it through a DNS name rebound to 127.0.0.1.
 */
export function checkAccess(request: IncomingMessage, url: URL, options: { token: string | undefined }): void {
  if (options.token !== undefined) {
    // The page's own files hold no data: the browser loads them without the token, which the page then sends with every call.
    if (!url.pathname.startsWith('/api/')) return;
    const bearer = /^Bearer (.+)$/i.exec(request.headers.authorization ?? '')?.[1];
    if (!tokenMatches(bearer ?? url.searchParams.get('token') ?? '', options.token)) throw new ConsoleRequestError(401, 'unauthorized', 'This console needs its token: open it with ?token=<token>, or send Authorization: Bearer <token>.');
    return;
  }
  const hostName = (request.headers.host ?? '').replace(/:\d+$/, '');
  if (!isLoopbackHost(hostName)) throw new ConsoleRequestError(403, 'unauthorized', `This console answers only on this machine (localhost), not as ${JSON.stringify(hostName)}; start it with --host and --token to share it.`);
}
