import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';

/** True when a KV compare-and-set lost: someone wrote the key since the revision we held. */
export function isWrongLastSequence(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence || error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}
