import { nuid, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { ToolProgress } from '../../transport/messages.ts';
import type { WireNames } from '../../transport/subjects.ts';
import { decodeWireMessage } from '../../transport/wireMessage.ts';

/**
 * Where the workers report the progress of the calls one session-hosting process sent: one subject
 * and one subscription for the whole process, named in each request (`progressTo`), so reporting
 * progress costs a call nothing on the bus unless its tool reports some. Reports are handed to
 * whoever watches the call; a report for a call nobody watches (it already ended) is dropped, and
 * one that is not a progress report is logged and dropped.
 */
export class ToolProgressInbox {
  readonly subject: string;
  readonly #subscription: Subscription;
  readonly #watchers = new Map<string, (progress: ToolProgress) => void>();

  constructor(nc: NatsConnection, names: WireNames, logger: Logger) {
    this.subject = names.subjects.toolProgress(nuid.next());
    this.#subscription = nc.subscribe(this.subject, {
      callback: (error, msg) => {
        if (error) return void logger.warn({ err: error }, 'the tool progress subscription failed');
        const decoded = decodeWireMessage(ToolProgress, msg.data, 'A tool progress report');
        if (!decoded.ok) return void logger.warn({ error: decoded.error }, 'dropped a malformed tool progress report');
        this.#watchers.get(decoded.value.callId)?.(decoded.value);
      },
    });
  }

  /** Hands `onProgress` the reports of `callId` until the returned function is called. */
  watch(callId: string, onProgress: (progress: ToolProgress) => void): () => void {
    this.#watchers.set(callId, onProgress);
    return () => {
      if (this.#watchers.get(callId) === onProgress) this.#watchers.delete(callId);
    };
  }

  stop(): void {
    this.#subscription.unsubscribe();
    this.#watchers.clear();
  }
}
