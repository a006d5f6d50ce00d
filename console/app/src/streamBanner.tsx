import type { StreamState } from './eventStream.ts';

/** What a live stream's connection is doing, when the operator needs to know: lost, back, or sending what the contract does not allow. */
export function StreamBanner({ stream }: { stream: StreamState }) {
  return (
    <>
      {stream.link === 'lost' && stream.refused !== null && (
        <p class="banner error" role="alert" data-testid="stream-refused">
          The console refused the live updates: {stream.refused}. Retrying…
        </p>
      )}
      {stream.link === 'lost' && stream.refused === null && (
        <p class="banner warning" role="status" data-testid="connection-lost">
          Connection to the console lost, retrying…
        </p>
      )}
      {stream.restored && (
        <p class="banner ok" role="status" data-testid="connection-restored">
          Connection to the console is back.
        </p>
      )}
      {stream.mismatch !== null && (
        <p class="banner error" role="alert" data-testid="contract-mismatch">
          {stream.mismatch}
        </p>
      )}
    </>
  );
}
