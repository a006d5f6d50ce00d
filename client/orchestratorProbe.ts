import type { NatsConnection } from '@nats-io/transport-node';
import { PingResponse, toolMetadataKeys } from '../transport/serviceProtocol.ts';
import { defaultNamespace, serviceDiscoverySubject, wireNames } from '../transport/subjects.ts';
import { decodeWireMessage } from '../transport/wireMessage.ts';
import type { NamespaceOption } from './sessionClient.ts';

/**
 * Whether an orchestrator of the namespace answers the service protocol's PING now: for waiting
 * until a stack is ready. `$SRV` is global in NATS and a service name could in principle be another
 * deployment's too, so only answers whose metadata say orchestrator and this namespace count.
 * Resolves false (never rejects) when none answers within `timeoutMs`.
 */
export async function orchestratorAnswers(nc: NatsConnection, options: NamespaceOption & { timeoutMs?: number } = {}): Promise<boolean> {
  const names = wireNames(options.namespace);
  try {
    const replies = await nc.requestMany(serviceDiscoverySubject('PING', names.services.orchestrator), undefined, {
      strategy: 'stall', stall: 100, maxWait: options.timeoutMs ?? 500,
    });
    for await (const msg of replies) {
      const ping = decodeWireMessage(PingResponse, msg.data, 'A $SRV.PING answer');
      if (!ping.ok) continue;
      const { metadata } = ping.value;
      // Orchestrators from before namespaces existed carry none: they are of the default namespace.
      if (metadata[toolMetadataKeys.kind] === 'orchestrator' && (metadata[toolMetadataKeys.namespace] ?? defaultNamespace) === names.namespace) return true;
    }
  } catch {
    // No responders, or the connection is reconnecting: not answering now.
  }
  return false;
}
