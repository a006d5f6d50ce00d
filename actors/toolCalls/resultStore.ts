import type { NatsConnection } from '@nats-io/transport-node';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { nanos } from '@nats-io/transport-node';
import { jetStreamReplicas } from '../../transport/jetStreamReplicas.ts';
import type { WireNames } from '../../transport/subjects.ts';

/**
 * Full results of tool calls that were too large to hand to the model, kept in the JetStream
 * object store (results may be larger than a NATS message) for `results_fetch`. Each is kept under
 * its session and call id together and read back only under both: a session never reaches another
 * session's results, and two sessions whose models chose the same call id never overwrite each other's.
 */
export class ResultStore {
  readonly #store: ObjectStore;

  private constructor(store: ObjectStore) {
    this.#store = store;
  }

  /** Opens the deployment's object store (`<namespace>_results`), creating it if missing. */
  static async open(nc: NatsConnection, names: WireNames, options: { ttlMs?: number } = {}): Promise<ResultStore> {
    const store = await new Objm(nc).create(names.objectStores.results, {
      description: 'Full results of large tool calls, by session and call id',
      ttl: nanos(options.ttlMs ?? 24 * 60 * 60 * 1000),
      replicas: jetStreamReplicas(nc),
    });
    return new ResultStore(store);
  }

  /** Keeps `result` for the session whose call produced it. */
  async put(sessionId: string, callId: string, result: unknown): Promise<void> {
    await this.#store.putBlob({ name: objectName(sessionId, callId) }, new TextEncoder().encode(JSON.stringify(result)));
  }

  /**
   * The result `sessionId` stored under `callId`, or undefined when it has none: never stored,
   * expired, or stored by another session (which is not looked up at all, so nothing tells it apart).
   */
  async get(sessionId: string, callId: string): Promise<unknown> {
    const bytes = await this.#store.getBlob(objectName(sessionId, callId));
    return bytes === null ? undefined : (JSON.parse(new TextDecoder().decode(bytes)) as unknown);
  }
}

// Session ids are letters, digits, "-" and "_" (the wire schema), so "/" cannot blur the two parts.
function objectName(sessionId: string, callId: string): string {
  return `${sessionId}/${callId}`;
}
