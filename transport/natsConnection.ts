import { connect, NoRespondersError, RequestError, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';

export const defaultNatsUrl = 'nats://127.0.0.1:4222';

/** The process could not reach NATS at start-up. */
export class NatsUnreachableError extends Error {
  readonly url: string;
  constructor(url: string, cause: unknown) {
    super(`Could not reach NATS at ${url}. Start nats-server (apt-get install -y nats-server) or set NATS_URL.`, { cause });
    this.name = new.target.name;
    this.url = url;
  }
}

/**
 * Connects for the life of a process: reconnects forever (a NATS restart must not end a worker or
 * an orchestrator) and logs every disconnect and reconnect. The caller drains it on shutdown.
 */
export async function connectToNats(options: { url: string; name: string; logger: Logger }): Promise<NatsConnection> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: options.url,
      name: options.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      timeout: 3_000,
    });
  } catch (error) {
    throw new NatsUnreachableError(options.url, error);
  }
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect' || status.type === 'reconnect' || status.type === 'error' || status.type === 'slowConsumer') {
        options.logger.warn({ nats: status.type, server: 'server' in status ? status.server : undefined }, `NATS ${status.type}`);
      }
    }
  })();
  return nc;
}

/**
 * True when NATS answered "nobody is subscribed". `request` wraps this in a `RequestError`;
 * `requestMany` throws it bare.
 */
export function isNoResponders(error: unknown): boolean {
  return error instanceof NoRespondersError || (error instanceof RequestError && (error.isNoResponders() || error.cause instanceof NoRespondersError));
}
