import {
  createInbox, NoRespondersError, PermissionViolationError, RequestError, TimeoutError,
  type Msg, type NatsConnection, type Payload, type RequestOptions, type Subscription,
} from '@nats-io/transport-node';

interface Pending {
  subject: string;
  resolve: (msg: Msg) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Request/reply over one inbox subscription per connection, as nats.js does it, without the Error
 * nats.js builds for every request it settles: its `RequestOne` rejects an already settled promise
 * with a new `RequestError("cancelled")`, stack trace and all, which was 4% of an orchestrator's CPU
 * a step (two requests a step: the tool call and the checkpoint). Errors are only made for requests
 * that fail, of the same kinds nats.js gives (`TimeoutError`; a `RequestError` whose cause is a
 * `NoRespondersError` or a permission violation), so JetStream's client and Troupe's own checks read
 * them the same. Hand-written rather than a library: nats.js is the library, and this is its fix
 * until upstream has one.
 */
class RequestMux {
  readonly #nc: NatsConnection;
  readonly #prefix: string;
  readonly #pending = new Map<string, Pending>();
  #subscription: Subscription | undefined;
  #next = 0;

  constructor(nc: NatsConnection, inboxPrefix: string | undefined) {
    this.#nc = nc;
    this.#prefix = `${createInbox(inboxPrefix)}.`;
    void nc.closed().then(() => this.#failAll(() => new RequestError('connection closed')));
    void this.#failRefused().catch(() => undefined);
  }

  /** A publish the server refuses is reported on the connection's status, not to the requester: fail it now, not at its timeout. */
  async #failRefused(): Promise<void> {
    for await (const status of this.#nc.status()) {
      if (status.type !== 'error' || !(status.error instanceof PermissionViolationError)) continue;
      const violation = status.error;
      for (const [token, pending] of this.#pending) {
        const refused = violation.operation === 'subscription' ? violation.subject === `${this.#prefix}*` : violation.subject === pending.subject;
        if (refused) this.#settle(token, undefined, new RequestError(violation.message, { cause: violation }));
      }
    }
  }

  request(subject: string, payload: Payload | undefined, options: RequestOptions): Promise<Msg> {
    // Made again if the server closed it (a permission refused): nats.js makes its own inbox again too.
    if (!this.#subscription || this.#subscription.isClosed()) this.#subscription = this.#nc.subscribe(`${this.#prefix}*`, {
      callback: (error, msg) => {
        if (error) {
          this.#failAll(() => new RequestError(error.message, { cause: error }));
          return;
        }
        const token = msg.subject.slice(this.#prefix.length);
        const pending = this.#pending.get(token);
        if (!pending) return;
        if (msg.data.length === 0 && msg.headers?.code === 503) this.#settle(token, undefined, new RequestError(`no responders: '${pending.subject}'`, { cause: new NoRespondersError(pending.subject) }));
        else this.#settle(token, msg);
      },
    });
    const token = (++this.#next).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => this.#settle(token, undefined, new TimeoutError()), options.timeout);
      this.#pending.set(token, { subject, resolve, reject, timer });
      try {
        this.#nc.publish(subject, payload, { reply: `${this.#prefix}${token}`, ...(options.headers ? { headers: options.headers } : {}) });
      } catch (error) {
        this.#settle(token, undefined, error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  #settle(token: string, msg: Msg | undefined, error?: Error): void {
    const pending = this.#pending.get(token);
    if (!pending) return;
    this.#pending.delete(token);
    clearTimeout(pending.timer);
    if (error) pending.reject(error);
    else pending.resolve(msg as Msg);
  }

  #failAll(error: () => Error): void {
    for (const token of [...this.#pending.keys()]) this.#settle(token, undefined, error());
  }
}

/**
 * The same connection, its plain requests (a subject, a payload, a timeout and headers) sent through
 * a {@link RequestMux} with replies under `inboxPrefix` (the connection's own, when it has one); any
 * other request (`noMux`, `reply`), and everything else, goes to nats.js as is.
 */
export function withLeanRequests(nc: NatsConnection, inboxPrefix?: string): NatsConnection {
  let mux: RequestMux | undefined;
  return new Proxy(nc, {
    get(target, property) {
      if (property === 'request') {
        return (subject: string, payload?: Payload, options: RequestOptions = { timeout: 1_000 }) => {
          if (options.noMux || options.reply || target.isClosed() || target.isDraining() || !(options.timeout >= 1)) return target.request(subject, payload, options);
          mux ??= new RequestMux(target, inboxPrefix);
          return mux.request(subject, payload, options);
        };
      }
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
