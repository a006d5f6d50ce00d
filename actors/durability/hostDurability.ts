import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { retryWhileElecting } from '../../transport/jetStreamElections.ts';
import type { WireNames } from '../../transport/subjects.ts';
import type { Durability } from '../session/hostedSession.ts';
import { CheckpointStore } from './checkpointStore.ts';
import { HostHeartbeats, type HostHeartbeat } from './hostHeartbeats.ts';
import { newHostName, SessionLeases } from './sessionLeases.ts';

export interface HostDurabilityOptions {
  /** The buckets, when not the deployment's own (a specialist pool keeps its sessions apart). */
  checkpointsBucket?: string;
  leasesBucket?: string;
  leaseTtlMs?: number;
  /** How long this process's heartbeat lasts without renewal: its sessions move within about this long after it dies. */
  heartbeatTtlMs?: number;
}

/** What a session-hosting process keeps its sessions durable with, and its heartbeat. */
export interface HostDurability {
  readonly durability: Durability;
  /** Calls `onDeath` whenever another host is buried (its heartbeat lapsed) or stops cleanly: its sessions are free to resume. */
  watchDeaths(onDeath: (owner: string) => void): void;
  /** Stops beating (after the sessions were handed over) and following the others. */
  stop(): Promise<void>;
}

/**
 * Opens a hosting process's checkpoint and lease buckets and starts its heartbeat (trying again while
 * JetStream elects a leader). If another process takes this one for dead (it stalled past its
 * heartbeat), `onBuried` is called so it stops hosting its sessions, and it beats again under a new
 * name for the sessions it takes from then on.
 */
export async function openHostDurability(nc: NatsConnection, names: WireNames, options: HostDurabilityOptions, logger: Logger, onBuried: () => void): Promise<HostDurability> {
  return await retryWhileElecting(async () => {
    const hosts = await HostHeartbeats.open(nc, names, options.heartbeatTtlMs ? { ttlMs: options.heartbeatTtlMs } : {});
    let heartbeat: HostHeartbeat;
    const buried = () => {
      onBuried();
      void hosts.start(newHostName(), logger, buried).then(
        (next) => (heartbeat = next),
        (error: unknown) => logger.error({ err: error }, 'could not start a new heartbeat; this process takes no new sessions until restarted'),
      );
    };
    heartbeat = await hosts.start(newHostName(), logger, buried);
    const durability: Durability = {
      checkpoints: await CheckpointStore.open(nc, names, options.checkpointsBucket ? { bucket: options.checkpointsBucket } : {}),
      leases: await SessionLeases.open(nc, names, { hosts, ...(options.leasesBucket ? { bucket: options.leasesBucket } : {}), ...(options.leaseTtlMs ? { ttlMs: options.leaseTtlMs } : {}) }),
      get owner() {
        return heartbeat.owner;
      },
      alive: () => heartbeat.alive(),
    };
    return {
      durability,
      watchDeaths: (onDeath) => hosts.watchDeaths((owner) => {
        logger.info({ host: owner }, 'a session host is gone (its heartbeat lapsed, or it stopped): its sessions are free to resume');
        onDeath(owner);
      }),
      async stop() {
        await heartbeat.stop();
        hosts.stop();
      },
    };
  }, logger, 'the session buckets');
}
