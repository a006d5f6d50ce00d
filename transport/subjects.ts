/**
 * Every NATS subject and queue group Troupe uses is spelled here and nowhere else, so the whole
 * wire surface can be read (and secured with NATS permissions) from one file.
 */

/** Session ids and domain names become subject tokens: no dots, wildcards or spaces. */
export const subjectTokenPattern = /^[A-Za-z0-9_-]{1,128}$/;

export const subjects = {
  /** Requests for one tool, served by its domain's pool in a queue group. */
  tool: (domain: string, tool: string) => `troupe.tools.${domain}.${tool}`,
  /** Tasks delegated to one specialist agent, served by its pool in a queue group. */
  delegation: (agent: string) => `troupe.agents.${agent}.delegate`,
  /** Undo requests for one tool's calls (a rollback), served by the same pool. */
  toolUndo: (domain: string, tool: string) => `troupe.tools.${domain}.${tool}.undo`,
  /** Cancellations of tool calls in flight (a session was cancelled): every worker hears them, the one running the call acts. */
  toolCallCancellations: 'troupe.tools.cancel',
  /** Pools say "I started" here, so orchestrators refresh discovery at once instead of at the next poll. */
  poolAnnouncements: 'troupe.pools.announce',
  /** Clients ask for a new session here; one orchestrator of the queue group takes it. */
  sessionStart: 'troupe.sessions.start',
  /** Starts asked for while no orchestrator answered: kept in a work queue until one takes them. */
  queuedSessionStarts: 'troupe.queue.sessions.start',
  /** Every session's events, as one stream captures them. */
  allSessionEvents: 'troupe.sessions.*.events',
  /** Everything that happens in one session, in order. */
  sessionEvents: (sessionId: string) => `troupe.sessions.${sessionId}.events`,
  /** Commands for a running session (cancel), answered by the orchestrator that hosts it. */
  sessionControl: (sessionId: string) => `troupe.sessions.${sessionId}.control`,
  /** Alerts of one kind (`tool_error_rate`, `pool_error_rate`, `session_spend`, `tenant_spend`); subscribe to `troupe.alerts.>` for all. */
  alerts: (kind: string) => `troupe.alerts.${kind}`,
  allAlerts: 'troupe.alerts.>',
  /** The NATS service protocol's discovery subjects: `$SRV.<verb>[.<name>[.<id>]]`. */
  serviceDiscovery: (verb: 'PING' | 'INFO' | 'STATS', name?: string, id?: string) =>
    ['$SRV', verb, name, id].filter((part) => part !== undefined).join('.'),
} as const;

export const queueGroups = {
  /** Members of one tool domain's pool share its requests. */
  pool: (domain: string) => `troupe-${domain}`,
  /** Members of one specialist's pool share its delegated tasks. */
  specialist: (agent: string) => `troupe-agent-${agent}`,
  orchestrators: 'troupe-orchestrators',
} as const;

/** The NATS service name of a tool domain's pool, as `nats micro ls` shows it. */
export const poolServiceName = (domain: string) => `troupe-${domain}`;

/** The NATS service name of a specialist's pool. */
export const specialistServiceName = (agent: string) => `troupe-agent-${agent}`;

/** JetStream streams: events (replayable by late clients) and starts queued while no orchestrator runs. */
export const streamNames = {
  sessionEvents: 'TROUPE_SESSION_EVENTS',
  queuedStarts: 'TROUPE_SESSION_STARTS',
} as const;

/** The durable consumer all orchestrators share to take queued starts, one each. */
export const queuedStartsConsumer = 'orchestrators';
