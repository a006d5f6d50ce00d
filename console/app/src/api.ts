import * as z from 'zod';
import {
  AlertList,
  ApiError,
  ConsoleHealth,
  ControlRequests,
  ControlResponse,
  PoolList,
  SessionDetail,
  SessionList,
  StatechartGraph,
  type ControlName,
} from '../../consoleApi.ts';
import { ConsoleRefusal, ConsoleUnreachable, ContractMismatch, InvalidInput } from './errors.ts';

/**
 * Every request the page makes to the console: the bearer token added, each answer checked
 * against the contract in consoleApi.ts, and every refusal turned into a `ConsoleRequestError`
 * whose message can be shown as it is.
 */

const tokenKey = 'troupe-console-token';

/**
 * Moves a `?token=` the page was opened with into sessionStorage (for this tab only) and out of
 * the address bar, so it is neither bookmarked nor shown on screen. Called once, before rendering.
 */
export function adoptTokenFromAddress(): void {
  const url = new URL(location.href);
  const token = url.searchParams.get('token');
  if (token === null) return;
  if (token !== '') sessionStorage.setItem(tokenKey, token);
  url.searchParams.delete('token');
  history.replaceState(history.state, '', url);
}

function token(): string | null {
  return sessionStorage.getItem(tokenKey);
}

// Relative to the page, so a console served under a prefix (behind a proxy) still finds its API.
function apiUrl(path: string): URL {
  return new URL(path, document.baseURI);
}

/** The URL of an event stream: EventSource sends no headers, so the token rides in the query. */
export function streamUrl(path: string): string {
  const url = apiUrl(path);
  const current = token();
  if (current !== null) url.searchParams.set('token', current);
  return url.href;
}

/**
 * Why the console refused an event stream, which EventSource never says: asks for the stream
 * once more with fetch and reads the refusal's body. Null when the stream answers now (the
 * request is dropped as soon as it does).
 */
export async function streamRefusal(path: string): Promise<string | null> {
  const abort = new AbortController();
  try {
    const response = await fetch(streamUrl(path), { headers: { accept: 'text/event-stream' }, signal: abort.signal, cache: 'no-store' });
    if (response.ok) return null;
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const refusal = ApiError.safeParse(json);
    return refusal.success ? refusal.data.error.message : `HTTP ${response.status}`;
  } catch {
    // Unreachable: the lost-connection banner already says so.
    return null;
  } finally {
    abort.abort();
  }
}

/** `path: message` for each issue, as the page shows a contract mismatch. */
export function issueLines(error: z.ZodError): string[] {
  return error.issues.slice(0, 5).map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(top)'}: ${issue.message}`);
}

async function request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const current = token();
  if (current !== null) headers.authorization = `Bearer ${current}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(apiUrl(path), { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch (error) {
    throw new ConsoleUnreachable(`the console did not answer ${method} /${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const refusal = ApiError.safeParse(json);
    if (refusal.success) {
      const { code, message, issues } = refusal.data.error;
      throw new ConsoleRefusal(response.status, code, code === 'unauthorized' ? `${message} (open the page with ?token=<token> to give it)` : message, issues);
    }
    throw new ConsoleRefusal(response.status, 'unexpected', `${method} /${path} failed with HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ''}`);
  }
  if (json === undefined) throw new ContractMismatch(`the answer to ${method} /${path}`, ['it is not JSON']);
  return json;
}

async function read<S extends z.ZodType>(path: string, schema: S): Promise<z.infer<S>> {
  const parsed = schema.safeParse(await request('GET', path));
  if (!parsed.success) throw new ContractMismatch(`the answer to GET /${path}`, issueLines(parsed.error));
  return parsed.data;
}

const sessionPath = (sessionId: string) => `api/sessions/${encodeURIComponent(sessionId)}`;

/** The reads, one per `GET` endpoint of the contract; each answers the parsed body or throws a `ConsoleRequestError`. */
export const readHealth = () => read('api/health', ConsoleHealth);
export const readSessions = () => read('api/sessions', SessionList);
export const readSession = (sessionId: string) => read(sessionPath(sessionId), SessionDetail);
export const readStatechart = () => read('api/statechart', StatechartGraph);
export const readPools = () => read('api/pools', PoolList);
export const readAlerts = () => read('api/alerts', AlertList);

/** The event streams' paths, for `useEventStream`. */
export const sessionsStreamPath = 'api/sessions/stream';
export const sessionStreamPath = (sessionId: string) => `${sessionPath(sessionId)}/stream`;

/** A control's body as the page builds it; `by` is added from the operator's name. */
export type ControlBody<N extends ControlName> = Omit<z.input<(typeof ControlRequests)[N]>, 'by'>;

/**
 * Sends one control. The body is checked against the contract first, so an empty instruction is
 * reported without a round trip; `by` is the operator's name when they gave one.
 */
export async function sendControl<N extends ControlName>(sessionId: string, control: N, body: ControlBody<N>, by: string): Promise<ControlResponse> {
  const full = { ...body, ...(by.trim() === '' ? {} : { by: by.trim() }) };
  const checked = (ControlRequests[control] as z.ZodType).safeParse(full);
  if (!checked.success) throw new InvalidInput(checked.error.issues.map((issue) => issue.message).join('; '));
  const parsed = ControlResponse.safeParse(await request('POST', `${sessionPath(sessionId)}/${control}`, checked.data));
  if (!parsed.success) throw new ContractMismatch(`the answer to POST /${sessionPath(sessionId)}/${control}`, issueLines(parsed.error));
  return parsed.data;
}
