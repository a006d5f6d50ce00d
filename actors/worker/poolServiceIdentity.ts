import { toolInputJsonSchema, type ToolDefinition } from '../../tools/defineTool.ts';
import { toolMetadataKeys, toolPoolKind, type EndpointInfo } from '../../transport/serviceProtocol.ts';
import type { ServiceIdentity } from '../../transport/serviceResponder.ts';
import type { WireNames } from '../../transport/subjects.ts';

/**
 * How a pool member presents itself in the NATS service protocol: its service name, and one
 * endpoint per tool whose metadata carries what orchestrators discover (description, schema,
 * timeout, side effects, retry, fallbacks, approval, undo), plus a hidden undo endpoint per
 * undoable tool. Pure: the worker starts the responder with it.
 */
export function poolServiceIdentity({ names, domain, tools, queue, subjectOf, version, specialist }: {
  names: WireNames; domain: string; tools: readonly ToolDefinition[]; queue: string;
  subjectOf: (tool: ToolDefinition) => string; version: string | undefined; specialist: string | undefined;
}): ServiceIdentity {
  const specialistMetadata: Record<string, string> = specialist ? { [toolMetadataKeys.specialist]: specialist } : {};
  return {
    name: specialist ? names.services.specialist(specialist) : names.services.pool(domain),
    version: version ?? '0.1.0',
    description: specialist ? `Troupe specialist "${specialist}"` : `Troupe tool pool "${domain}": ${tools.map((t) => t.name).join(', ')}`,
    metadata: { [toolMetadataKeys.kind]: toolPoolKind, [toolMetadataKeys.namespace]: names.namespace, [toolMetadataKeys.domain]: domain, ...specialistMetadata },
    endpoints: tools.map((tool): EndpointInfo => ({
      name: tool.name,
      subject: subjectOf(tool),
      queue_group: queue,
      metadata: {
        ...specialistMetadata,
        [toolMetadataKeys.description]: tool.description,
        [toolMetadataKeys.inputSchema]: JSON.stringify(toolInputJsonSchema(tool)),
        [toolMetadataKeys.timeoutMs]: String(tool.timeoutMs),
        [toolMetadataKeys.sideEffects]: String(tool.sideEffects),
        [toolMetadataKeys.retry]: JSON.stringify(tool.retry),
        [toolMetadataKeys.fallbacks]: JSON.stringify(tool.fallbacks),
        [toolMetadataKeys.requiresApproval]: String(tool.requiresApproval),
        [toolMetadataKeys.undoable]: String(tool.compensation !== undefined),
      },
    })).concat(
      tools.filter((tool) => tool.compensation).map((tool): EndpointInfo => ({
        name: `${tool.name}__undo`,
        subject: names.subjects.toolUndo(domain, tool.name),
        queue_group: queue,
        metadata: { [toolMetadataKeys.endpointKind]: 'undo' },
      })),
    ),
  };
}
