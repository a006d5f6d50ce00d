import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { InfoResponse, StatsResponse, toolMetadataKeys, toolPoolKind } from '../../transport/serviceProtocol.ts';
import { defaultNamespace, serviceDiscoverySubject, type WireNames } from '../../transport/subjects.ts';
import { decodeWireMessage } from '../../transport/wireMessage.ts';
import { isNoResponders } from '../../transport/natsConnection.ts';
import type { PoolView } from '../consoleApi.ts';

/** Circuit-breaker changes the console saw in the sessions' events, by tool: the latest of each. */
export type CircuitStates = ReadonlyMap<string, { state: string; at: string }>;

/**
 * The deployment's pools as the NATS service protocol reports them: every member that answers
 * `$SRV.INFO` and `$SRV.STATS` within a moment, grouped by service, keeping to this namespace
 * (`$SRV` is global). Members that answer malformed are logged and left out.
 */
export async function poolsOf(nc: NatsConnection, names: WireNames, circuits: CircuitStates, logger: Logger): Promise<PoolView[]> {
  const [infos, stats] = await Promise.all([gather(nc, 'INFO', InfoResponse, logger), gather(nc, 'STATS', StatsResponse, logger)]);
  const statsById = new Map(stats.map((s) => [s.id, s]));
  const pools = new Map<string, PoolView>();
  for (const info of infos) {
    if ((info.metadata[toolMetadataKeys.namespace] ?? defaultNamespace) !== names.namespace) continue;
    const kind: PoolView['kind'] = info.metadata[toolMetadataKeys.specialist] ? 'specialist'
      : info.metadata[toolMetadataKeys.kind] === toolPoolKind ? 'tools'
      : info.name === names.services.orchestrator ? 'orchestrator' : 'other';
    const pool = pools.get(info.name) ?? { name: info.name, kind, members: [], tools: [], requests: 0, errors: 0, averageLatencyMs: 0, circuits: [] };
    const stat = statsById.get(info.id);
    const requests = stat?.endpoints.reduce((sum, e) => sum + e.num_requests, 0) ?? 0;
    const errors = stat?.endpoints.reduce((sum, e) => sum + e.num_errors, 0) ?? 0;
    const processingNs = stat?.endpoints.reduce((sum, e) => sum + e.processing_time, 0) ?? 0;
    pool.members.push({ id: info.id, version: info.version, requests, errors, averageLatencyMs: requests > 0 ? processingNs / requests / 1e6 : 0 });
    for (const endpoint of info.endpoints) {
      if (endpoint.metadata?.[toolMetadataKeys.endpointKind] === 'undo') continue;
      if (kind === 'tools' || kind === 'specialist') if (!pool.tools.includes(endpoint.name)) pool.tools.push(endpoint.name);
    }
    pools.set(info.name, pool);
  }
  for (const pool of pools.values()) {
    pool.requests = pool.members.reduce((sum, m) => sum + m.requests, 0);
    pool.errors = pool.members.reduce((sum, m) => sum + m.errors, 0);
    const weighted = pool.members.reduce((sum, m) => sum + m.averageLatencyMs * m.requests, 0);
    pool.averageLatencyMs = pool.requests > 0 ? weighted / pool.requests : 0;
    pool.tools.sort();
    pool.members.sort((a, b) => a.id.localeCompare(b.id));
    pool.circuits = pool.tools.flatMap((tool) => {
      const circuit = circuits.get(tool);
      return circuit ? [{ tool, ...circuit }] : [];
    });
  }
  const order: Record<PoolView['kind'], number> = { tools: 0, specialist: 1, orchestrator: 2, other: 3 };
  return [...pools.values()].sort((a, b) => order[a.kind] - order[b.kind] || a.name.localeCompare(b.name));
}

async function gather<T>(nc: NatsConnection, verb: 'INFO' | 'STATS', schema: import('zod').ZodType<T>, logger: Logger): Promise<T[]> {
  const found: T[] = [];
  try {
    const replies = await nc.requestMany(serviceDiscoverySubject(verb), undefined, { strategy: 'stall', stall: 300, maxWait: 2_000 });
    for await (const msg of replies) {
      const decoded = decodeWireMessage(schema, msg.data, `A $SRV.${verb} answer`);
      if (decoded.ok) found.push(decoded.value);
      else logger.warn({ error: decoded.error }, `a service answered $SRV.${verb} malformed; the console leaves it out`);
    }
  } catch (error) {
    if (!isNoResponders(error)) throw error;
  }
  return found;
}
