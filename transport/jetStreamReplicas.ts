import type { NatsConnection, ServerInfo } from '@nats-io/transport-node';

/**
 * The most copies Troupe asks for by itself: three keep a stream writable with one server lost
 * (two of three still make a quorum), which is what a three-node cluster can give. More is an
 * explicit choice ({@link useJetStreamReplicas}, `TROUPE_JETSTREAM_REPLICAS`).
 */
export const automaticReplicasLimit = 3;

/** JetStream's own limit on a stream's replicas. */
export const maxJetStreamReplicas = 5;

/** A replica count that is not a whole number from 1 to {@link maxJetStreamReplicas}. */
export class InvalidJetStreamReplicasError extends Error {
  readonly value: unknown;
  constructor(value: unknown) {
    super(`JetStream replicas must be a whole number from 1 to ${maxJetStreamReplicas} (JetStream keeps at most ${maxJetStreamReplicas} copies of a stream), not ${JSON.stringify(value)}`);
    this.name = new.target.name;
    this.value = value;
  }
}

/** Checks a replica count an operator chose; throws {@link InvalidJetStreamReplicasError}. */
export function checkJetStreamReplicas(value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > maxJetStreamReplicas) throw new InvalidJetStreamReplicasError(value);
  return value;
}

/**
 * How many copies of each stream, bucket and object store to ask for, from what the server told
 * the client when it connected: one on a server that is not in a cluster (a single server keeps
 * one copy, and refuses more), otherwise as many as the cluster has servers, up to
 * {@link automaticReplicasLimit}. The servers are counted by the distinct client URLs the cluster
 * advertises (`connect_urls`, which includes the server's own): a server that advertises several
 * addresses (bound to every interface of a host with several, without `client_advertise`) counts
 * more than once, and a cluster that advertises none (`no_advertise`) counts as one; set the count
 * explicitly for those. Pure.
 */
export function replicasForServer(info: Pick<ServerInfo, 'cluster' | 'connect_urls'> | undefined): number {
  if (!info?.cluster) return 1;
  const servers = new Set(info.connect_urls ?? []).size;
  return Math.max(1, Math.min(automaticReplicasLimit, servers));
}

// Chosen per connection, not per process: one process may hold connections to different deployments.
const chosen = new WeakMap<NatsConnection, number>();

/**
 * Makes every JetStream asset Troupe creates through `nc` from now on have `replicas` copies,
 * whatever the server says ({@link replicasForServer}). For a cluster that hides its size or
 * whose servers do not all run JetStream. Assets that exist already keep theirs: JetStream changes
 * a stream's replicas only when asked (`nats stream edit <name> --replicas N`). Throws
 * {@link InvalidJetStreamReplicasError} for a count JetStream cannot keep.
 */
export function useJetStreamReplicas(nc: NatsConnection, replicas: number): void {
  chosen.set(nc, checkJetStreamReplicas(replicas));
}

/**
 * The replica count for a JetStream asset created through `nc`: the one {@link useJetStreamReplicas}
 * set, or the one {@link replicasForServer} picks for the server `nc` is connected to. Every
 * `Kvm.create`, `Objm.create` and `streams.add` of Troupe passes it (`replicas` for buckets and
 * object stores, `num_replicas` for streams).
 */
export function jetStreamReplicas(nc: NatsConnection): number {
  return chosen.get(nc) ?? replicasForServer(nc.info);
}

/**
 * For buckets whose reads decide what happens (checkpoints, leases, claims): every read goes to the
 * stream's leader. With direct gets, any copy answers, and one still catching up after its server
 * restarted answers "no such key" for what the others hold: a session would be started again, or a
 * claim taken, that exists.
 */
export const decisiveReads = { allow_direct: false } as const;
