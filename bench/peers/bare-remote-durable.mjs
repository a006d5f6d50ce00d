// bare-remote, plus the step's model answer appended to a JetStream stream (acked) before it is acted on.
import { create as createRemote } from './bare-remote.mjs';
export const create = (options) => createRemote({ ...options, durable: true });
