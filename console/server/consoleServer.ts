import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { sessionMachine } from '../../machines/session.ts';
import { decodeSessionEvents } from '../../transport/messages.ts';
import type { StatementSigner } from '../../transport/signatures.ts';
import { wireNames } from '../../transport/subjects.ts';
import { accessDenialOf } from '../../transport/natsConnection.ts';
import { Alert } from '../../transport/messages.ts';
import { decodeWireMessage } from '../../transport/wireMessage.ts';
import { CheckpointStore, CheckpointUnreadableError } from '../../actors/durability/checkpointStore.ts';
import { ControlRequests, controlNames, type ConsoleHealth, type ControlName, type NatsLinkState, type SessionsStreamMessage } from '../consoleApi.ts';
import { checkAccess, ConsoleRequestError, isLoopbackHost, openEventStream, readJsonBody, sendError, sendJson } from './consoleHttp.ts';
import { sendConsoleControl, type ConsoleAction } from './consoleControls.ts';
import { poolsOf } from './poolsView.ts';
import { SessionsFeed } from './sessionsFeed.ts';
import { streamSession } from './sessionStream.ts';
import { sessionDetailOf } from './sessionViews.ts';
import { statechartGraphOf } from './statechartGraph.ts';

export interface ConsoleServerOptions {
  /** The console's own NATS connection: its credentials decide what it may see and do. */
  nc: NatsConnection;
  namespace?: string;
  /** 127.0.0.1 unless given; any other address needs `token`. */
  host?: string;
  /** 7070 unless given; 0 picks a free port. */
  port?: number;
  token?: string;
  /** Refuse every control: for people who watch (and the observer role). */
  readOnly?: boolean;
  /** Jaeger's UI, for a link to each session's trace. */
  jaegerUrl?: string | null;
  /** Signs the commands sent from the page, as `troupe sessions` does with the operator's nkey. */
  signer?: StatementSigner;
  logger: Logger;
  /** Where the built page is; the package's own by default. */
  appDir?: string;
  /** Event streams open at once (256): each session's holds a JetStream consumer and a KV watch. */
  maxOpenStreams?: number;
}

export interface ConsoleServer {
  readonly url: string;
  close(): Promise<void>;
}

export class ConsoleConfigurationError extends Error {}

const here = fileURLToPath(new URL('.', import.meta.url));
/** The page, built at package build time: `console/app/dist` in a checkout, `dist/console/app/dist` in the package. */
export const defaultConsoleAppDir = resolve(here, '..', 'app', 'dist');

const packageVersion = (() => {
  for (const candidate of [resolve(here, '..', '..', 'package.json'), resolve(here, '..', '..', '..', 'package.json')]) {
    try {
      return (JSON.parse(readFileSync(candidate, 'utf8')) as { version?: string }).version ?? '0.0.0';
    } catch { /* the next */ }
  }
  return '0.0.0';
})();

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json', '.map': 'application/json',
};

const maxAlertsKept = 100;
const breakerChangeMarker = Buffer.from('tool.breaker.changed');

function containsBytes(haystack: Uint8Array, needle: Buffer): boolean {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).includes(needle);
}

/**
 * `troupe console`'s server: the built page, a JSON API over the deployment's checkpoints, events
 * and services, Server-Sent Events that bridge NATS to the page, and the controls. See
 * `console/consoleApi.ts` for every route.
 */
export async function startConsoleServer(options: ConsoleServerOptions): Promise<ConsoleServer> {
  const host = options.host ?? '127.0.0.1';
  const token = options.token === '' ? undefined : options.token;
  if (!isLoopbackHost(host) && token === undefined) {
    throw new ConsoleConfigurationError(`The console would be open to anyone who can reach ${host}: give it --token <secret> (or TROUPE_CONSOLE_TOKEN), or keep --host 127.0.0.1.`);
  }
  const appDir = options.appDir ?? defaultConsoleAppDir;
  if (!existsSync(join(appDir, 'index.html'))) {
    throw new ConsoleConfigurationError(`The console's page is not built (${appDir} has no index.html): run \`npm run build\` in the checkout.`);
  }
  const { nc, logger } = options;
  const names = wireNames(options.namespace);
  const machine = sessionMachine;
  const jaegerUrl = options.jaegerUrl ?? null;
  // With the observer's credentials no command would pass: say so on the page rather than fail each click.
  const readOnly = (options.readOnly ?? false) || !(await mayCommand(nc, names));
  if (readOnly && !options.readOnly) logger.info('the console\'s NATS credentials may not send commands (the observer role): it is read-only');
  const graph = statechartGraphOf(machine);

  let natsState: NatsLinkState = nc.isClosed() ? 'closed' : 'connected';
  const feed = new SessionsFeed(nc, names, logger.child({ part: 'sessions-feed' }));
  const linkListeners = new Set<(state: NatsLinkState) => void>();
  const setLink = (state: NatsLinkState) => {
    if (state === natsState) return;
    natsState = state;
    for (const listener of linkListeners) listener(state);
    // A watch may have missed changes while NATS was away: read everything again.
    if (state === 'connected') void feed.reload().catch((error) => logger.warn({ err: error }, 'reading the sessions again after a reconnect failed'));
  };
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect' || status.type === 'reconnecting') setLink('reconnecting');
      else if (status.type === 'reconnect') setLink('connected');
    }
  })();
  void nc.closed().then(() => setLink('closed'));

  // Circuit states and alerts, as they happen: the console keeps the latest of each.
  const circuits = new Map<string, { state: string; at: string }>();
  const alerts: Array<Record<string, unknown>> = [];
  const subscriptions = [
    nc.subscribe(names.subjects.allSessionEvents, {
      callback: (error, msg) => {
        // Every event of every session passes here; only circuit changes are read.
        if (error || !containsBytes(msg.data, breakerChangeMarker)) return;
        for (const event of decodeSessionEvents(msg.data, 'A session event').events) {
          if (event.type === 'tool.breaker.changed') circuits.set(event.tool, { state: event.to, at: event.at });
        }
      },
    }),
    nc.subscribe(names.subjects.allAlerts, {
      callback: (error, msg) => {
        if (error) return;
        const decoded = decodeWireMessage(Alert, msg.data, 'An alert');
        if (!decoded.ok) {
          logger.warn({ error: decoded.error }, 'an alert could not be read');
          return;
        }
        alerts.unshift(decoded.value as unknown as Record<string, unknown>);
        alerts.length = Math.min(alerts.length, maxAlertsKept);
      },
    }),
  ];
  const undoStart = () => {
    feed.stop();
    for (const subscription of subscriptions) subscription.unsubscribe();
  };
  try {
    await feed.start();
  } catch (error) {
    undoStart();
    throw error;
  }

  const actions: ConsoleAction[] = [];
  const maxOpenStreams = options.maxOpenStreams ?? 256;
  let openStreams = 0;
  // Counts an event stream for as long as it is open; refuses one past the limit.
  const holdStream = async (serve: () => Promise<void>): Promise<void> => {
    if (openStreams >= maxOpenStreams) throw new ConsoleRequestError(503, 'unavailable', `The console has ${openStreams} live views open, its limit: close some pages and try again.`);
    openStreams += 1;
    try {
      await serve();
    } finally {
      openStreams -= 1;
    }
  };
  const controlDeps = { nc, names, logger, signer: options.signer };

  const routes: Array<{ method: string; pattern: RegExp; handle: (request: IncomingMessage, response: ServerResponse, match: RegExpExecArray) => Promise<void> | void }> = [
    {
      method: 'GET', pattern: /^\/api\/health$/,
      handle: (_request, response) => sendJson(response, 200, { namespace: names.namespace, nats: natsState, readOnly, jaegerUrl, version: packageVersion } satisfies ConsoleHealth),
    },
    { method: 'GET', pattern: /^\/api\/statechart$/, handle: (_request, response) => sendJson(response, 200, graph) },
    { method: 'GET', pattern: /^\/api\/sessions$/, handle: (_request, response) => sendJson(response, 200, feed.list()) },
    {
      method: 'GET', pattern: /^\/api\/sessions\/stream$/,
      handle: async (request, response) => holdStream(async () => {
        const stream = openEventStream(request, response);
        const send = (message: SessionsStreamMessage) => stream.send(message.kind, message);
        send({ kind: 'nats', state: natsState });
        // A page that falls behind gets the whole list again once it has caught up, not every change in between.
        let behind = !send({ kind: 'sessions', list: feed.list() });
        const catchUp = () => void stream.drained().then(() => {
          if (behind) behind = !send({ kind: 'sessions', list: feed.list() });
          if (behind) catchUp();
        });
        if (behind) catchUp();
        const unsubscribe = feed.subscribe((_change, json) => {
          if (behind) return;
          behind = !stream.sendJson('changes', json);
          if (behind) catchUp();
        });
        const onLink = (state: NatsLinkState) => send({ kind: 'nats', state });
        linkListeners.add(onLink);
        await stream.closed;
        unsubscribe();
        linkListeners.delete(onLink);
      }),
    },
    { method: 'GET', pattern: /^\/api\/actions$/, handle: (_request, response) => sendJson(response, 200, { actions }) },
    {
      method: 'GET', pattern: /^\/api\/sessions\/([^/]+)$/,
      handle: async (_request, response, match) => {
        const sessionId = sessionIdOf(match);
        const stored = await (await CheckpointStore.openForReading(nc, names))?.read(sessionId);
        if (!stored) throw new ConsoleRequestError(404, 'not_found', `There is no session ${sessionId}.`);
        sendJson(response, 200, sessionDetailOf(stored.checkpoint, { machine, jaegerUrl }));
      },
    },
    {
      method: 'GET', pattern: /^\/api\/sessions\/([^/]+)\/stream$/,
      handle: async (request, response, match) => {
        const sessionId = sessionIdOf(match);
        const stored = await (await CheckpointStore.openForReading(nc, names))?.read(sessionId, { journal: false });
        if (!stored) throw new ConsoleRequestError(404, 'not_found', `There is no session ${sessionId}.`);
        await holdStream(() => streamSession(sessionId, openEventStream(request, response), { nc, names, logger, machine, jaegerUrl }));
      },
    },
    {
      method: 'POST', pattern: /^\/api\/sessions\/([^/]+)\/([a-z]+)$/,
      handle: async (request, response, match) => {
        const sessionId = sessionIdOf(match);
        const control = match[2] as ControlName;
        if (!controlNames.includes(control)) throw new ConsoleRequestError(404, 'not_found', `There is no control ${JSON.stringify(match[2])}; the controls are ${controlNames.join(', ')}.`);
        if (readOnly) throw new ConsoleRequestError(403, 'read_only', 'This console is read-only: it shows sessions but sends no commands.');
        const body = await readJsonBody(request, ControlRequests[control]);
        let result;
        try {
          result = await sendConsoleControl(sessionId, control, body, controlDeps);
        } catch (error) {
          logger.info({ sessionId, control, by: (body as { by?: string }).by ?? null, err: error }, `console: ${control} not sent`);
          if (/permission/i.test(String(error))) throw new ConsoleRequestError(403, 'read_only', `NATS refused the command: the console's credentials may not send commands (${(error as Error).message}).`);
          throw error;
        }
        const action: ConsoleAction = { at: new Date().toISOString(), by: result.by, sessionId, control, status: result.status, reason: result.reason };
        actions.unshift(action);
        actions.length = Math.min(actions.length, 200);
        logger.info({ ...action }, `console: ${control} ${result.status}`);
        sendJson(response, 200, result);
      },
    },
    {
      method: 'GET', pattern: /^\/api\/pools$/,
      handle: async (_request, response) => sendJson(response, 200, { pools: await poolsOf(nc, names, circuits, logger) }),
    },
    { method: 'GET', pattern: /^\/api\/alerts$/, handle: (_request, response) => sendJson(response, 200, { alerts }) },
  ];

  const server = createServer((request, response) => {
    void (async () => {
      const url = new URL(request.url ?? '/', 'http://console.invalid');
      try {
        checkAccess(request, url, { token });
        if (url.pathname.startsWith('/api/')) {
          if (nc.isClosed()) throw new ConsoleRequestError(503, 'unavailable', 'The console has lost its NATS connection for good; restart it.');
          for (const route of routes) {
            const match = route.pattern.exec(url.pathname);
            if (!match) continue;
            if (request.method !== route.method) continue;
            await route.handle(request, response, match);
            return;
          }
          const known = routes.some((route) => route.pattern.test(url.pathname));
          throw known
            ? new ConsoleRequestError(405, 'invalid_request', `${request.method} is not how ${url.pathname} is used.`)
            : new ConsoleRequestError(404, 'not_found', `There is no ${url.pathname} in the console's API.`);
        }
        if (request.method !== 'GET' && request.method !== 'HEAD') throw new ConsoleRequestError(405, 'invalid_request', 'The page is only read.');
        serveStatic(appDir, url.pathname, response);
      } catch (error) {
        if (response.headersSent) {
          response.end();
          return;
        }
        if (error instanceof ConsoleRequestError) {
          sendError(response, error);
          return;
        }
        if (error instanceof CheckpointUnreadableError) {
          sendError(response, new ConsoleRequestError(409, 'conflict', error.message));
          return;
        }
        const timeout = /timeout|TIMEOUT/.test(String(error));
        logger.error({ err: error, path: url.pathname }, 'a console request failed');
        sendError(response, new ConsoleRequestError(timeout ? 503 : 500, timeout ? 'unavailable' : 'internal', `${timeout ? 'NATS did not answer in time' : 'The console failed'}: ${(error as Error).message}`));
      }
    })();
  });
  try {
    await new Promise<void>((resolveListen, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 7070, host, () => resolveListen());
    });
  } catch (error) {
    undoStart();
    throw error;
  }
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}/`,
    async close() {
      undoStart();
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}

/**
 * Whether the console's credentials may send commands: a request to a session's command subject
 * nobody hosts is answered "no responders" when they may, and refused by the server when they may
 * not (the observer role). Anything else (a slow server) leaves the decision to each command.
 */
async function mayCommand(nc: NatsConnection, names: ReturnType<typeof wireNames>): Promise<boolean> {
  try {
    await nc.request(names.subjects.sessionControl('console-permission-probe'), new Uint8Array(), { timeout: 2_000 });
    return true;
  } catch (error) {
    return accessDenialOf(error, '')?.denial !== 'permission';
  }
}

function sessionIdOf(match: RegExpExecArray): string {
  let id: string;
  try {
    id = decodeURIComponent(match[1] ?? '');
  } catch {
    throw new ConsoleRequestError(400, 'invalid_request', 'The session id is not valid URL encoding.');
  }
  // Session ids are NATS subject tokens: nothing else can name a session.
  if (!/^[\w-]{1,128}$/.test(id)) throw new ConsoleRequestError(404, 'not_found', `There is no session ${JSON.stringify(id)}: session ids are letters, digits, "-" and "_".`);
  return id;
}

/** A file of the built page; any path it does not have is the page itself (it routes by `#`). */
function serveStatic(appDir: string, pathname: string, response: ServerResponse): void {
  let relative: string;
  try {
    relative = normalize(decodeURIComponent(pathname)).replace(/^([/\\])+/, '');
  } catch {
    relative = '';
  }
  let file = resolve(appDir, relative || 'index.html');
  if (!(file === appDir || file.startsWith(appDir + sep)) || !existsSync(file) || statSync(file).isDirectory()) file = join(appDir, 'index.html');
  const body = readFileSync(file);
  const isPage = file.endsWith('index.html');
  response.writeHead(200, {
    'content-type': contentTypes[extname(file)] ?? 'application/octet-stream',
    'content-length': body.length,
    // Hashed assets never change; the page is checked every time.
    'cache-control': isPage ? 'no-cache' : 'public, max-age=31536000, immutable',
    // Everything the page needs is here: nothing is fetched from elsewhere.
    'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
    'x-content-type-options': 'nosniff',
  });
  response.end(body);
}
