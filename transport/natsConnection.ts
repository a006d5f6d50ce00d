import {
  AuthorizationError, connect, NoRespondersError, PermissionViolationError, RequestError, TimeoutError, UserAuthenticationExpiredError, type NatsConnection,
} from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { redactUrlCredentials } from '../observability/redactUrl.ts';
import { useJetStreamReplicas } from './jetStreamReplicas.ts';
import { natsConnectSettings, type NatsCredentials } from './natsCredentials.ts';
import { withLeanRequests } from './requestMux.ts';

export const defaultNatsUrl = 'nats://127.0.0.1:4222';

/** The process could not reach NATS at start-up. */
export class NatsUnreachableError extends Error {
  readonly url: string;
  constructor(url: string, cause: unknown) {
    const shown = redactUrlCredentials(url);
    const why = cause instanceof Error && cause.message ? ` (${cause.message})` : '';
    super(`Could not reach NATS at ${shown}${why}. Start nats-server (apt-get install -y nats-server) or set NATS_URL.`, { cause });
    this.name = new.target.name;
    this.url = shown;
  }
}

/** What NATS refused: the credentials, their validity, or one subject to the user they prove. */
export const NatsAccessDenial = { authentication: 'authentication', expired: 'expired', permission: 'permission' } as const;
export type NatsAccessDenial = (typeof NatsAccessDenial)[keyof typeof NatsAccessDenial];

/**
 * NATS refused this process: its credentials (at connect or at a reconnect), their expiry, or a
 * subject its user may not publish or subscribe to. Never retried: it is the deployment's
 * configuration, not the network, and retrying would only hide it.
 */
export class NatsAccessDeniedError extends Error {
  readonly denial: NatsAccessDenial;
  readonly url: string;
  readonly operation?: 'publish' | 'subscription';
  readonly subject?: string;
  constructor(denial: NatsAccessDenial, url: string, cause: unknown, refused: { operation?: 'publish' | 'subscription'; subject?: string; queue?: string } = {}) {
    const shown = redactUrlCredentials(url);
    const message = {
      authentication: `NATS at ${shown} refused this process's credentials (${(cause as Error)?.message ?? 'authorization violation'}): check --nkey/--creds/--user/--token (NATS_NKEY, NATS_CREDS, NATS_USER, NATS_TOKEN) against the server's configuration`,
      expired: `NATS at ${shown} says this process's credentials have expired: renew them`,
      permission: `NATS at ${shown} does not let this process's user ${refused.operation === 'subscription' ? 'subscribe to' : 'publish to'} "${refused.subject ?? '?'}"${refused.queue ? ` in queue group "${refused.queue}"` : ''}: its role's permissions do not cover it (see troupe auth init)`,
    }[denial];
    super(message, { cause });
    this.name = new.target.name;
    this.denial = denial;
    this.url = shown;
    if (refused.operation) this.operation = refused.operation;
    if (refused.subject) this.subject = refused.subject;
  }
}

/** Turns what nats.js reports into a {@link NatsAccessDeniedError}, or undefined when it is not a refusal. */
export function accessDenialOf(error: unknown, url: string): NatsAccessDeniedError | undefined {
  const cause = error instanceof RequestError && error.cause ? error.cause : error;
  if (cause instanceof NatsAccessDeniedError) return cause;
  if (cause instanceof UserAuthenticationExpiredError) return new NatsAccessDeniedError(NatsAccessDenial.expired, url, cause);
  if (cause instanceof AuthorizationError) return new NatsAccessDeniedError(NatsAccessDenial.authentication, url, cause);
  if (cause instanceof PermissionViolationError) {
    return new NatsAccessDeniedError(NatsAccessDenial.permission, url, cause, {
      operation: cause.operation, subject: cause.subject, ...(cause.queue ? { queue: cause.queue } : {}),
    });
  }
  return undefined;
}

export interface NatsConnectionSettings {
  /** One server or several separated by commas; credentials in it are used, never logged. */
  url: string;
  /** The connection's name, as the server's monitoring shows it. */
  name: string;
  logger: Logger;
  credentials?: NatsCredentials;
  /**
   * Called once when NATS refuses the process after it connected: its credentials at a reconnect,
   * their expiry, or (with `permissionViolations: 'fatal'`) a subject. The CLI ends the process
   * with one line and exit code 3; without it the refusal is logged as an error.
   */
  onAccessDenied?: (error: NatsAccessDeniedError) => void;
  /**
   * `fatal`: a permission violation is an access denial too (a long-running process whose role
   * does not allow what it does would otherwise sit deaf or mute). `log` (the default): it is
   * logged as a warning, and the request or subscription it concerns fails on its own. `quiet`:
   * the same, logged at debug level, for a command that reports the failed request itself.
   */
  permissionViolations?: 'fatal' | 'log' | 'quiet';
  /**
   * How many copies of each stream, bucket and object store Troupe creates through this connection
   * (1 to 5, `TROUPE_JETSTREAM_REPLICAS` in the CLI); picked from the server when absent
   * (`transport/jetStreamReplicas.ts`).
   */
  jetStreamReplicas?: number;
  /**
   * Where a request that failed was made from, in its error's stack (`TROUPE_NATS_ASYNC_TRACES=1`):
   * for debugging, since it builds an Error with a stack for every request, a tenth of the CPU of
   * resuming sessions. Off by default.
   */
  asyncTraces?: boolean;
}

/**
 * Connects for the life of a process: reconnects forever after a network loss (a NATS restart
 * must not end a worker or an orchestrator) and logs every disconnect and reconnect, but never
 * retries a refusal. Credentials come from `credentials` or the URL. Throws a
 * {@link NatsAccessDeniedError} when the server refuses the credentials, a
 * {@link NatsUnreachableError} when it cannot be reached. The caller drains it on shutdown.
 */
export async function connectToNats(options: NatsConnectionSettings): Promise<NatsConnection> {
  const settings = natsConnectSettings(options.url, options.credentials);
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: settings.servers,
      name: options.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      timeout: 3_000,
      // Otherwise every request builds an Error with a stack up front, in case it fails: a tenth of the
      // CPU of resuming sessions. Timeouts still say what timed out.
      noAsyncTraces: options.asyncTraces !== true,
      ...settings.options,
    });
  } catch (error) {
    throw accessDenialOf(error, options.url) ?? new NatsUnreachableError(options.url, error);
  }
  // Before anything keys a setting by the connection: every user of it gets the same object. With
  // async traces asked for (debugging), nats.js's own requests keep the call site in their errors.
  if (options.asyncTraces !== true) nc = withLeanRequests(nc, settings.options.inboxPrefix);
  if (options.jetStreamReplicas !== undefined) useJetStreamReplicas(nc, options.jetStreamReplicas);
  let denied = false;
  const deny = (error: NatsAccessDeniedError) => {
    if (denied) return;
    denied = true;
    options.logger.error({ nats: 'access denied', denial: error.denial, subject: error.subject, operation: error.operation }, error.message);
    options.onAccessDenied?.(error);
  };
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'error') {
        const denial = accessDenialOf(status.error, options.url);
        if (denial && (denial.denial !== NatsAccessDenial.permission || options.permissionViolations === 'fatal')) {
          deny(denial);
          continue;
        }
        if (denial) {
          const level = options.permissionViolations === 'quiet' ? 'debug' : 'warn';
          options.logger[level]({ nats: 'permission violation', subject: denial.subject, operation: denial.operation }, denial.message);
          continue;
        }
      }
      if (status.type === 'disconnect' || status.type === 'reconnect' || status.type === 'error' || status.type === 'slowConsumer') {
        const server = 'server' in status && typeof status.server === 'string' ? redactUrlCredentials(status.server) : undefined;
        options.logger.warn({ nats: status.type, server }, `NATS ${status.type}`);
      }
    }
  })();
  return nc;
}

/** True when a request got no answer in time (nobody answered, or the answer was lost). */
export function isRequestTimeout(error: unknown): boolean {
  return error instanceof TimeoutError || (error instanceof RequestError && error.cause instanceof TimeoutError);
}

/**
 * True when NATS answered "nobody is subscribed". `request` wraps this in a `RequestError`;
 * `requestMany` throws it bare.
 */
export function isNoResponders(error: unknown): boolean {
  return error instanceof NoRespondersError || (error instanceof RequestError && (error.isNoResponders() || error.cause instanceof NoRespondersError));
}
