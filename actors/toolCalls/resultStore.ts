import type { NatsConnection } from '@nats-io/transport-node';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { nanos } from '@nats-io/transport-node';
import type { WireNames } from '../../transport/subjects.ts';

/**
 * Full results of tool calls that were too large to hand to the model, kept in the JetStream
 * object store (results may be larger than a NATS message) under their call id, for `results_fetch`.
 */
export class ResultStore {
  readonly #store: ObjectStore;

  private constructor(store: ObjectStore) {
    this.#store = store;
  }

  /** Opens the deployment's object store (`<namespace>_results`), creating it if missing. */
  static async open(nc: NatsConnection, names: WireNames, options: { ttlMs?: number } = {}): Promise<ResultStore> {
    const store = await new Objm(nc).create(names.objectStores.results, {
      description: 'Full results of large tool calls, by call id',
      ttl: nanos(options.ttlMs ?? 24 * 60 * 60 * 1000),
    });
    return new ResultStore(store);
  }

  async put(callId: string, result: unknown): Promise<void> {
    await this.#store.putBlob({ name: callId }, new TextEncoder().encode(JSON.stringify(result)));
  }

  /** The stored result, or undefined when there is none (never stored, or expired). */
  async get(callId: string): Promise<unknown> {
    const bytes = await this.#store.getBlob(callId);
    return bytes === null ? undefined : (JSON.parse(new TextDecoder().decode(bytes)) as unknown);
  }
}
