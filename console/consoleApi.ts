import { z } from 'zod';

/**
 * The operator console's HTTP API: what `troupe console` serves and its page reads. One file for
 * both sides of that wire, so the page and the server cannot disagree. Pure zod: the page's bundle
 * imports it, so nothing here may import Node or NATS code.
 *
 * Reads: `GET /api/health`, `/api/sessions`, `/api/sessions/:id`, `/api/statechart`, `/api/pools`,
 * `/api/alerts`. Live: `GET /api/sessions/stream` and `/api/sessions/:id/stream` (Server-Sent
 * Events, each `data:` one JSON document of the event's schema below). Controls:
 * `POST /api/sessions/:id/<control>` with a JSON body. A non-local console needs its token, as
 * `Authorization: Bearer <token>` or, for the event streams (EventSource sends no headers),
 * `?token=<token>`.
 */

/** Every refusal: a status code, and this body. */
export const ApiError = z.object({
  error: z.object({
    code: z.enum(['invalid_request', 'unauthorized', 'read_only', 'not_found', 'conflict', 'unavailable', 'internal']),
    message: z.string(),
    /** For `invalid_request`: each field that is wrong, and why. */
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  }),
});
export type ApiError = z.infer<typeof ApiError>;

export const NatsLinkState = z.enum(['connected', 'reconnecting', 'closed']);
export type NatsLinkState = z.infer<typeof NatsLinkState>;

export const ConsoleHealth = z.object({
  namespace: z.string(),
  nats: NatsLinkState,
  /** Controls are refused (the console runs `--read-only`, or with the observer role). */
  readOnly: z.boolean(),
  /** Where a session's trace is, when `JAEGER_URL` is set: `<jaegerUrl>/trace/<traceId>`. */
  jaegerUrl: z.string().nullable(),
  version: z.string(),
});
export type ConsoleHealth = z.infer<typeof ConsoleHealth>;

/** One row of the sessions table. */
export const SessionSummary = z.object({
  sessionId: z.string(),
  agent: z.string(),
  tenant: z.string().nullable(),
  /** Where its checkpoint is: `running`, `parked` (waits for a person), `ended`. */
  status: z.enum(['running', 'parked', 'ended']),
  /** The statechart's active state, as a dotted path (`validating.triaging_tool_calls`). */
  state: z.string(),
  /** How it ended (`completed`, `failed`, …), once it has. */
  outcome: z.string().nullable(),
  turn: z.number().int().nonnegative(),
  toolCalls: z.number().int().nonnegative(),
  inputTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
  costUsd: z.number().nonnegative(),
  /** Epoch milliseconds. */
  startedAt: z.number(),
  updatedAt: z.string(),
  waitingForApproval: z.number().int().nonnegative(),
  task: z.string(),
});
export type SessionSummary = z.infer<typeof SessionSummary>;

export const SessionList = z.object({
  sessions: z.array(SessionSummary),
  /** Checkpoints that could not be read, with why: shown, never dropped. */
  unreadable: z.array(z.object({ sessionId: z.string(), error: z.string() })),
});
export type SessionList = z.infer<typeof SessionList>;

/** A call waiting for a person's decision, or the workflow's exit the model chose (tool `next_phase`, arguments `{ to, reason }`, id `next_phase:<to>`). */
export const WaitingCall = z.object({
  callId: z.string(),
  tool: z.string(),
  arguments: z.unknown(),
  /** Why it needs approval. */
  reason: z.string(),
});
export type WaitingCall = z.infer<typeof WaitingCall>;

export const LedgerRow = z.object({
  turn: z.number().int(),
  tool: z.string(),
  arguments: z.unknown(),
  status: z.string(),
  errorCode: z.string().optional(),
  durationMs: z.number().optional(),
  undone: z.boolean(),
});

export const InterventionRow = z.object({ turn: z.number().int(), kind: z.string(), by: z.string().optional(), detail: z.string().optional() });

/** A statechart as drawn (the session loop's, an agent's workflow): its state nodes (nested through `parent`) and transitions. */
export const StatechartGraph = z.object({
  nodes: z.array(z.object({
    /** XState's id: `session.validating.routing`, or a workflow's phase name (`propose`). */
    id: z.string(),
    key: z.string(),
    parent: z.string().nullable(),
    type: z.enum(['atomic', 'compound', 'parallel', 'final', 'history']),
    initial: z.boolean(),
  })),
  edges: z.array(z.object({ id: z.string(), source: z.string(), target: z.string(), event: z.string() })),
});
export type StatechartGraph = z.infer<typeof StatechartGraph>;

/** One move between the phases of a session's workflow, as the session recorded it. */
export const PhaseMoveView = z.object({
  turn: z.number().int().nonnegative(),
  /** The active phases before and after, outermost first. */
  from: z.array(z.string()),
  to: z.array(z.string()),
  /** A tool call that succeeded, the model's choice, a guard over the ledger, or a person's approval of the model's choice. */
  trigger: z.enum(['tool', 'choice', 'guard', 'approval']),
  /** The tool, or the model's reason. */
  detail: z.string().optional(),
  /** Who approved it. */
  by: z.string().optional(),
});
export type PhaseMoveView = z.infer<typeof PhaseMoveView>;

/** Where a session is in its agent's workflow, drawn with the same code as the loop's statechart. */
export const SessionWorkflow = z.object({
  /** The workflow as a statechart: its phases are its states, and a phase's name is its id. */
  graph: StatechartGraph,
  /** The graph's ids of the active phases, outermost first. */
  active: z.array(z.string()),
  /** Every move so far, in order. */
  path: z.array(PhaseMoveView),
  /** The exit the model chose that waits for a person's approval. */
  pendingExit: z.object({ to: z.string(), reason: z.string() }).nullable(),
});
export type SessionWorkflow = z.infer<typeof SessionWorkflow>;

/** One session: what its checkpoint says now. */
export const SessionDetail = z.object({
  summary: SessionSummary,
  /** The ids of the statechart's active state nodes, outermost first (`session.validating`, `session.validating.routing`). */
  activeStateIds: z.array(z.string()),
  waiting: z.array(WaitingCall),
  ledger: z.array(LedgerRow),
  interventions: z.array(InterventionRow),
  /** The final answer or the reason it stopped. */
  output: z.string().nullable(),
  stopReason: z.string().nullable(),
  traceId: z.string().nullable(),
  traceUrl: z.string().nullable(),
  takenOverBy: z.string().nullable(),
  /** Which controls apply now; the page offers only these, the server refuses the others with `conflict`. */
  controls: z.array(z.enum(['approve', 'deny', 'interrupt', 'redirect', 'cancel', 'resume', 'answer', 'takeover', 'call', 'handback', 'rollback'])),
  /** Null for an agent without a workflow; a console from before workflows sends none, read as null. */
  workflow: SessionWorkflow.nullable().default(null),
});
export type SessionDetail = z.infer<typeof SessionDetail>;

/** `GET /api/sessions/:id/stream`, one SSE event each; the `event:` field names the kind. */
export const SessionStreamMessage = z.discriminatedUnion('kind', [
  /** The session's checkpoint changed (sent first, then on every change). */
  z.object({ kind: z.literal('detail'), detail: SessionDetail }),
  /** One session event, in order from its first (replayed for a late page). `event` is a SessionEvent (see the README's event list). */
  z.object({ kind: z.literal('event'), event: z.record(z.string(), z.unknown()), stateId: z.string().nullable() }),
  /** Something the page should say: the NATS link dropped, an event could not be read, the session does not exist. */
  z.object({ kind: z.literal('notice'), level: z.enum(['info', 'warning', 'error']), message: z.string() }),
]);
export type SessionStreamMessage = z.infer<typeof SessionStreamMessage>;

/**
 * `GET /api/sessions/stream`: the whole list first, then only the rows that changed (a checkpoint
 * is written every step of every session: resending the table each time would not scale), and the
 * NATS link's state.
 */
export const SessionsStreamMessage = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('sessions'), list: SessionList }),
  z.object({
    kind: z.literal('changes'),
    /** New or changed rows: replace the row with the same id, or add it. */
    upserted: z.array(SessionSummary),
    /** Ids of sessions that are gone (deleted, expired, now unreadable). */
    removed: z.array(z.string()),
    /** The unreadable checkpoints, whole (they are few). */
    unreadable: SessionList.shape.unreadable,
  }),
  z.object({ kind: z.literal('nats'), state: NatsLinkState }),
]);
export type SessionsStreamMessage = z.infer<typeof SessionsStreamMessage>;

export const PoolMember = z.object({
  id: z.string(),
  version: z.string(),
  requests: z.number().int().nonnegative(),
  errors: z.number().int().nonnegative(),
  averageLatencyMs: z.number().nonnegative(),
});

export const PoolView = z.object({
  /** The NATS service name (`troupe-files`, `troupe-agent-analyst`). */
  name: z.string(),
  kind: z.enum(['tools', 'specialist', 'orchestrator', 'other']),
  members: z.array(PoolMember),
  tools: z.array(z.string()),
  requests: z.number().int().nonnegative(),
  errors: z.number().int().nonnegative(),
  averageLatencyMs: z.number().nonnegative(),
  /** Circuit breakers reported open or half-open for its tools by the sessions' events since the console started. */
  circuits: z.array(z.object({ tool: z.string(), state: z.string(), at: z.string() })),
});
export type PoolView = z.infer<typeof PoolView>;

export const PoolList = z.object({ pools: z.array(PoolView) });
export type PoolList = z.infer<typeof PoolList>;

export const AlertList = z.object({ alerts: z.array(z.record(z.string(), z.unknown())) });
export type AlertList = z.infer<typeof AlertList>;

// --- controls: the request bodies ---------------------------------------------------------------

/** Who did it: the name the operator gave the page; the console appends ` (console)`. */
const by = z.string().trim().min(1).max(100).optional();
const text = (what: string) => z.string().trim().min(1, `${what} is empty`).max(20_000);

export const ControlRequests = {
  approve: z.object({ by, callIds: z.array(z.string().min(1)).min(1).optional() }).strict(),
  deny: z.object({ by, reason: text('the reason').optional(), callIds: z.array(z.string().min(1)).min(1).optional() }).strict(),
  interrupt: z.object({ by }).strict(),
  redirect: z.object({ by, instruction: text('the instruction') }).strict(),
  cancel: z.object({ by, reason: text('the reason').optional() }).strict(),
  /** An interrupted session continues. */
  resume: z.object({ by }).strict(),
  /** An escalated session gets its answer. */
  answer: z.object({ by, answer: text('the answer') }).strict(),
  takeover: z.object({ by }).strict(),
  call: z.object({ by, tool: z.string().min(1).max(200), arguments: z.record(z.string(), z.unknown()) }).strict(),
  handback: z.object({ by, instruction: text('the instruction').optional() }).strict(),
  /** `dryRun` answers the plan only; without it, the calls after `toTurn` are undone. */
  rollback: z.object({ by, toTurn: z.number().int().nonnegative(), dryRun: z.boolean().default(false) }).strict(),
} as const;
export type ControlName = keyof typeof ControlRequests;
export const controlNames = Object.keys(ControlRequests) as ControlName[];

export const RollbackPlanStep = z.object({
  turn: z.number().int(),
  tool: z.string(),
  action: z.enum(['undo', 'cannot_undo', 'nothing_to_undo']),
  result: z.string().optional(),
  message: z.string().optional(),
});

/** What a control did: `applied`, `refused` (with why), or `recorded` to be applied by the session's next host. */
export const ControlResponse = z.object({
  status: z.enum(['applied', 'refused', 'recorded']),
  accepted: z.boolean(),
  reason: z.string().nullable(),
  controlId: z.string().nullable(),
  by: z.string(),
  /** A rollback's plan: with `dryRun`, what it would do; otherwise what it did. */
  plan: z.array(RollbackPlanStep).optional(),
  /** A manual call's answer. */
  answer: z.string().optional(),
});
export type ControlResponse = z.infer<typeof ControlResponse>;
