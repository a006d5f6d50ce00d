import { ROOT_CONTEXT, propagation, type Context, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';

const setter: TextMapSetter<MsgHdrs> = { set: (carrier, key, value) => carrier.set(key, value) };
const getter: TextMapGetter<MsgHdrs | undefined> = {
  keys: (carrier) => (carrier ? carrier.keys() : []),
  get: (carrier, key) => (carrier?.has(key) ? carrier.get(key) : undefined),
};

/** NATS headers carrying the W3C trace context of `context`: how one session stays one trace across processes. */
export function traceHeaders(context: Context, into: MsgHdrs = natsHeaders()): MsgHdrs {
  propagation.inject(context, into, setter);
  return into;
}

/** The trace context a message carries, or the root context when it carries none. */
export function traceContextOf(headers: MsgHdrs | undefined): Context {
  return propagation.extract(ROOT_CONTEXT, headers, getter);
}
