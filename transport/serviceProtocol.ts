import * as z from 'zod';

/**
 * The NATS service protocol (`io.nats.micro.v1`), so `nats micro ls|info|stats` and any other
 * standard tooling see Troupe's pools. We answer it ourselves: `@nats-io/services` is published
 * only as a pre-release that pulls a second, older `@nats-io/nats-core` next to the 3.x client.
 */

const identity = {
  name: z.string(),
  id: z.string(),
  version: z.string(),
  metadata: z.record(z.string(), z.string()),
};

export const PingResponse = z.object({ type: z.literal('io.nats.micro.v1.ping_response'), ...identity });
export type PingResponse = z.infer<typeof PingResponse>;

export const EndpointInfo = z.object({
  name: z.string(),
  subject: z.string(),
  queue_group: z.string(),
  metadata: z.record(z.string(), z.string()).nullable(),
});
export type EndpointInfo = z.infer<typeof EndpointInfo>;

export const InfoResponse = z.object({
  type: z.literal('io.nats.micro.v1.info_response'),
  ...identity,
  description: z.string(),
  endpoints: z.array(EndpointInfo),
});
export type InfoResponse = z.infer<typeof InfoResponse>;

export const EndpointStats = z.object({
  name: z.string(),
  subject: z.string(),
  queue_group: z.string(),
  num_requests: z.number().int(),
  num_errors: z.number().int(),
  last_error: z.string(),
  /** Nanoseconds, as the protocol specifies. */
  processing_time: z.number(),
  average_processing_time: z.number(),
});
export type EndpointStats = z.infer<typeof EndpointStats>;

export const StatsResponse = z.object({
  type: z.literal('io.nats.micro.v1.stats_response'),
  ...identity,
  started: z.string(),
  endpoints: z.array(EndpointStats),
});
export type StatsResponse = z.infer<typeof StatsResponse>;

/** Metadata keys under which a pool advertises its tools to orchestrators. */
export const toolMetadataKeys = {
  kind: 'troupe.kind',
  /**
   * The deployment's namespace, on every Troupe service: `$SRV` discovery is global in NATS, so
   * orchestrators keep to the pools that carry their own. A pool without it is of `troupe`.
   */
  namespace: 'troupe.namespace',
  domain: 'troupe.domain',
  description: 'troupe.tool.description',
  inputSchema: 'troupe.tool.input_schema',
  timeoutMs: 'troupe.tool.timeout_ms',
  sideEffects: 'troupe.tool.side_effects',
  /** JSON of the tool's retry policy. */
  retry: 'troupe.tool.retry',
  /** JSON array of fallback tool names. */
  fallbacks: 'troupe.tool.fallbacks',
  requiresApproval: 'troupe.tool.requires_approval',
  /** `true` when the tool has a compensation: its calls can be rolled back. */
  undoable: 'troupe.tool.undoable',
  /** `undo` on a tool's undo endpoint, which is not a tool the model may call. */
  endpointKind: 'troupe.endpoint.kind',
  /** On a specialist pool and its `delegate_<name>` endpoint: the agent it serves. */
  specialist: 'troupe.specialist',
} as const;
export const toolPoolKind = 'tool-pool';
