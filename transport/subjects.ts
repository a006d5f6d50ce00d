/**
 * Every NATS name Troupe uses (subjects, queue groups, service names, streams, KV buckets, object
 * stores) is spelled here and nowhere else, so the whole wire surface of a deployment can be read
 * (and secured with NATS permissions) from one file.
 *
 * A deployment's names all start with its namespace, so two deployments (staging and production,
 * two teams, two test files) can share one NATS cluster without serving each other's calls. The
 * default namespace, `troupe`, gives exactly the names Troupe used before namespaces existed.
 */

/** Session ids and domain names become subject tokens: no dots, wildcards or spaces. */
export const subjectTokenPattern = /^[A-Za-z0-9_-]{1,128}$/;

/** The namespace of a deployment that names none; its names are the ones Troupe always used. */
export const defaultNamespace = 'troupe';

/**
 * What a namespace may be: it must be a valid subject token and the start of a valid KV bucket,
 * stream, object store and service name, and it must not differ from another only by case (stream
 * names are its upper-case form). Lower-case letters, digits, `-` and `_`, starting with a letter.
 */
export const namespacePattern = /^[a-z][a-z0-9_-]{0,31}$/;

/** Explains {@link namespacePattern} to whoever wrote a namespace that does not match it. */
export const namespaceRule = 'a lower-case letter, then lower-case letters, digits, "-" or "_", at most 32 characters';

/** A namespace that cannot prefix NATS names; thrown by {@link wireNames}. */
export class InvalidNamespaceError extends Error {
  readonly namespace: string;
  constructor(namespace: string) {
    super(`"${namespace}" is not a namespace: use ${namespaceRule} (e.g. "staging").`);
    this.name = new.target.name;
    this.namespace = namespace;
  }
}

/**
 * The NATS service protocol's discovery subjects, `$SRV.<verb>[.<name>[.<id>]]`. They are global
 * in NATS (no namespace): every deployment's services answer them, and say their namespace in
 * their metadata (`troupe.namespace`) so that discovery can keep to its own.
 */
export function serviceDiscoverySubject(verb: 'PING' | 'INFO' | 'STATS', name?: string, id?: string): string {
  return ['$SRV', verb, name, id].filter((part) => part !== undefined).join('.');
}

/**
 * Where replies to one NATS user's requests arrive (nats.js `inboxPrefix`): under the standard
 * `_INBOX`, then the user's nkey public key. A role's permissions let only its own user subscribe
 * there, so no other role can read its replies; a server that allows `_INBOX.>` still works. Not
 * namespaced: a public key already names one user in the whole cluster.
 */
export function userInboxPrefix(userPublicKey: string): string {
  return `_INBOX.${userPublicKey}`;
}

/**
 * Every name of one deployment, built from its namespace. Refuses a namespace that does not match
 * {@link namespacePattern} with an {@link InvalidNamespaceError}.
 *
 * @example
 * const names = wireNames('staging');
 * names.subjects.tool('calc', 'calc_evaluate'); // 'staging.tools.calc.calc_evaluate'
 * names.buckets.checkpoints;                    // 'staging_sessions'
 */
export function wireNames(namespace: string = defaultNamespace) {
  if (!namespacePattern.test(namespace)) throw new InvalidNamespaceError(namespace);
  const ns = namespace;
  // Stream names are upper-case by JetStream convention; namespaces are lower-case, so no two collide.
  const NS = namespace.toUpperCase();
  return {
    namespace,
    subjects: {
      /** Requests for one tool, served by its domain's pool in a queue group. */
      tool: (domain: string, tool: string) => `${ns}.tools.${domain}.${tool}`,
      /** Tasks delegated to one specialist agent, served by its pool in a queue group. */
      delegation: (agent: string) => `${ns}.agents.${agent}.delegate`,
      /** Undo requests for one tool's calls (a rollback), served by the same pool. */
      toolUndo: (domain: string, tool: string) => `${ns}.tools.${domain}.${tool}.undo`,
      /** Every tool subject of the deployment (requests, undo requests, cancellations): what a session-hosting process may call. */
      allTools: `${ns}.tools.>`,
      /** Where workers report the progress of calls one session-hosting process sent (`inbox` names the process). */
      toolProgress: (inbox: string) => `${ns}.progress.${inbox}`,
      /** Every process's progress subject: workers may report to any, hosts each listen on their own. */
      allToolProgress: `${ns}.progress.*`,
      /** Cancellations of tool calls in flight (a session was cancelled): every worker hears them, the one running the call acts. */
      toolCallCancellations: `${ns}.tools.cancel`,
      /** Pools say "I started" here, so orchestrators refresh discovery at once instead of at the next poll. */
      poolAnnouncements: `${ns}.pools.announce`,
      /** Clients ask for a new session here; one orchestrator of the queue group takes it. */
      sessionStart: `${ns}.sessions.start`,
      /** Starts asked for while no orchestrator answered: kept in a work queue until one takes them. */
      queuedSessionStarts: `${ns}.queue.sessions.start`,
      /** Every session's events, as one stream captures them. */
      allSessionEvents: `${ns}.sessions.*.events`,
      /** Everything that happens in one session, in order. */
      sessionEvents: (sessionId: string) => `${ns}.sessions.${sessionId}.events`,
      /** Commands for a running session (cancel), answered by the orchestrator that hosts it. */
      sessionControl: (sessionId: string) => `${ns}.sessions.${sessionId}.control`,
      /** Commands recorded in a stream before they are applied: whoever hosts the session, now or once it resumes, applies each once. */
      sessionControls: (sessionId: string) => `${ns}.sessions.${sessionId}.controls`,
      /** Every session's recorded commands, as one stream captures them. */
      allSessionControls: `${ns}.sessions.*.controls`,
      /** Alerts of one kind (`tool_error_rate`, `pool_error_rate`, `session_spend`, `tenant_spend`, `tool_conflict`). */
      alerts: (kind: string) => `${ns}.alerts.${kind}`,
      /** Every alert of the deployment. */
      allAlerts: `${ns}.alerts.>`,
    },
    queueGroups: {
      /** Members of one tool domain's pool share its requests. */
      pool: (domain: string) => `${ns}-${domain}`,
      /** Members of one specialist's pool share its delegated tasks. */
      specialist: (agent: string) => `${ns}-agent-${agent}`,
      orchestrators: `${ns}-orchestrators`,
    },
    /** NATS service names, as `nats micro ls` shows them. */
    services: {
      pool: (domain: string) => `${ns}-${domain}`,
      specialist: (agent: string) => `${ns}-agent-${agent}`,
      orchestrator: `${ns}-orchestrator`,
    },
    /** JetStream streams: events (replayable by late clients), starts queued while no orchestrator runs, and recorded commands. */
    streams: {
      sessionEvents: `${NS}_SESSION_EVENTS`,
      queuedStarts: `${NS}_SESSION_STARTS`,
      sessionControls: `${NS}_SESSION_CONTROLS`,
    },
    /** Durable consumers, named within their (already namespaced) stream. */
    consumers: {
      /** The one all orchestrators share to take queued starts, one each. */
      queuedStarts: 'orchestrators',
    },
    /** JetStream KV buckets. */
    buckets: {
      /** Session checkpoints, by session id. */
      checkpoints: `${ns}_sessions`,
      /** Who hosts which session. */
      leases: `${ns}_session_leases`,
      /** Which session-hosting processes are alive: the heartbeats leases point to. */
      hosts: `${ns}_hosts`,
      /** Outcomes of side-effecting tool calls, by call id. */
      toolOutcomes: `${ns}_tool_outcomes`,
      /** One specialist pool's session checkpoints: its members resume each other's sessions, and no orchestrator does. */
      specialistCheckpoints: (agent: string) => `${ns}_agent_${agent}_sessions`,
      /** Which member of one specialist pool hosts which of its sessions. */
      specialistLeases: (agent: string) => `${ns}_agent_${agent}_leases`,
    },
    /** JetStream object stores. */
    objectStores: {
      /** Full results of large tool calls, by call id. */
      results: `${ns}_results`,
      /**
       * What undoing one domain's calls needs (their compensations' captures), kept by the pool that
       * ran them, by session and call id: a store per domain, so a pool's role reaches only its own.
       */
      undo: (domain: string) => `${ns}_undo_${domain}`,
    },
  } as const;
}

/** The names of one deployment; see {@link wireNames}. */
export type WireNames = ReturnType<typeof wireNames>;
