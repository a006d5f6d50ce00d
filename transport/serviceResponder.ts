import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { randomBytes } from 'node:crypto';
import type { EndpointInfo, EndpointStats, InfoResponse, PingResponse, StatsResponse } from './serviceProtocol.ts';
import { serviceDiscoverySubject } from './subjects.ts';
import { encodeWireMessage } from './wireMessage.ts';

export interface ServiceIdentity {
  /** `[A-Za-z0-9_-]+`, shared by every instance of the service. */
  name: string;
  /** Semantic version of the service. */
  version: string;
  description: string;
  metadata: Record<string, string>;
  endpoints: EndpointInfo[];
}

/** One running instance's answer to `$SRV.PING|INFO|STATS`, plus the counters STATS reports. */
export interface ServiceResponder {
  readonly id: string;
  /** Counts one handled request; `error` when it ended in an error reply. */
  record(endpoint: string, elapsedNs: number, error?: string): void;
  stop(): void;
}

/**
 * Answers the NATS service protocol for one instance of a service. Discovery subscriptions use no
 * queue group: every instance answers, which is how a client counts the members of a pool.
 */
export function startServiceResponder(nc: NatsConnection, identity: ServiceIdentity): ServiceResponder {
  const id = randomBytes(11).toString('hex').toUpperCase();
  const started = new Date().toISOString();
  const stats = new Map<string, EndpointStats>(
    identity.endpoints.map((e) => [
      e.name,
      {
        name: e.name, subject: e.subject, queue_group: e.queue_group,
        num_requests: 0, num_errors: 0, last_error: '', processing_time: 0, average_processing_time: 0,
      },
    ]),
  );
  const base = { name: identity.name, id, version: identity.version, metadata: identity.metadata };
  const answers = {
    PING: (): PingResponse => ({ type: 'io.nats.micro.v1.ping_response', ...base }),
    INFO: (): InfoResponse => ({
      type: 'io.nats.micro.v1.info_response', ...base, description: identity.description, endpoints: identity.endpoints,
    }),
    STATS: (): StatsResponse => ({ type: 'io.nats.micro.v1.stats_response', ...base, started, endpoints: [...stats.values()] }),
  };
  const subscriptions: Subscription[] = [];
  for (const verb of ['PING', 'INFO', 'STATS'] as const) {
    for (const subject of [serviceDiscoverySubject(verb), serviceDiscoverySubject(verb, identity.name), serviceDiscoverySubject(verb, identity.name, id)]) {
      subscriptions.push(nc.subscribe(subject, { callback: (_error, msg) => void msg.respond(encodeWireMessage(answers[verb]())) }));
    }
  }
  return {
    id,
    record(endpoint, elapsedNs, error) {
      const entry = stats.get(endpoint);
      if (!entry) return;
      entry.num_requests += 1;
      entry.processing_time += elapsedNs;
      entry.average_processing_time = Math.round(entry.processing_time / entry.num_requests);
      if (error !== undefined) {
        entry.num_errors += 1;
        entry.last_error = error;
      }
    },
    stop() {
      for (const sub of subscriptions) sub.unsubscribe();
    },
  };
}
