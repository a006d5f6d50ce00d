import { serviceDiscoverySubject, subjectTokenPattern, type WireNames } from './subjects.ts';

/**
 * The roles of a deployment and exactly what each may publish and subscribe to, built from
 * {@link WireNames} so subjects are still spelled in one place. `troupe auth init` writes them into
 * a nats-server configuration; the server enforces them. Replies go back through
 * `allow_responses` only (to the reply subject of a message just received, once), and each user
 * reads only its own inbox ({@link userInboxPrefix}), so no role can read or forge another's replies.
 */

/** A role: what one kind of process is allowed on the bus. */
export type Role =
  | { kind: 'orchestrator' }
  | { kind: 'worker'; domain: string }
  | { kind: 'specialist'; agent: string }
  | { kind: 'client' }
  | { kind: 'operator' }
  | { kind: 'observer' };

/** What a role may do, in the server's terms. */
export interface SubjectPermissions {
  /** Subjects it may publish to (requests included). */
  readonly publish: readonly string[];
  /** Subjects it may subscribe to; `"<subject> <queue>"` allows only that queue group. */
  readonly subscribe: readonly string[];
  /**
   * How many answers it may send to each request it received, whatever the reply subject: 0 for
   * none. A process serving two NATS services (an orchestrator and its `results` pool) hears a
   * discovery request on both, and each answers.
   */
  readonly allowResponses: number;
}

/** The role's name: the user it is in the server's configuration and its seed file's name (`<name>.nk`). */
export function roleName(role: Role): string {
  switch (role.kind) {
    case 'worker':
      return `worker-${role.domain}`;
    case 'specialist':
      return `specialist-${role.agent}`;
    default:
      return role.kind;
  }
}

/** The role a name stands for (`worker-calc`, `specialist-analyst`, `operator`, …); undefined for none. */
export function roleOf(name: string): Role | undefined {
  if (name === 'orchestrator' || name === 'client' || name === 'operator' || name === 'observer') return { kind: name };
  const worker = /^worker-(.+)$/.exec(name)?.[1];
  if (worker && subjectTokenPattern.test(worker)) return { kind: 'worker', domain: worker };
  const agent = /^specialist-(.+)$/.exec(name)?.[1];
  if (agent && subjectTokenPattern.test(agent)) return { kind: 'specialist', agent };
  return undefined;
}

// JetStream's own subjects (NATS names, not Troupe's): its API, the KV and object-store subjects
// of a bucket, acknowledgements and flow control of a consumer.
const api = '$JS.API';
const kvStream = (bucket: string) => `KV_${bucket}`;
const objectStream = (store: string) => `OBJ_${store}`;

/** Enough of JetStream to know it is there (`jetstreamManager` asks for the account's info). */
const jetStreamInfo = [`${api}.INFO`];
/** Read a stream's configuration and single messages (a KV `get`). */
const streamRead = (stream: string) => [`${api}.STREAM.INFO.${stream}`, `${api}.STREAM.MSG.GET.${stream}`, `${api}.DIRECT.GET.${stream}`, `${api}.DIRECT.GET.${stream}.>`];
/** Create (or bring up to date) a stream the process needs. */
const streamCreate = (stream: string) => [`${api}.STREAM.CREATE.${stream}`, `${api}.STREAM.UPDATE.${stream}`];
/**
 * Ephemeral and ordered consumers on a stream (following events, listing KV keys): create, look
 * at, pull from, delete, and answer flow control of push consumers.
 */
const consumerRead = (stream: string) => [
  `${api}.CONSUMER.CREATE.${stream}`, `${api}.CONSUMER.CREATE.${stream}.>`, `${api}.CONSUMER.INFO.${stream}.*`,
  `${api}.CONSUMER.MSG.NEXT.${stream}.*`, `${api}.CONSUMER.DELETE.${stream}.*`, `$JS.FC.${stream}.>`,
];
/** A durable consumer by name: create it, pull from it, acknowledge what it delivers. */
const durableConsumer = (stream: string, name: string) => [
  `${api}.CONSUMER.DURABLE.CREATE.${stream}.${name}`, `${api}.CONSUMER.CREATE.${stream}.${name}`, `${api}.CONSUMER.CREATE.${stream}.${name}.>`,
  `${api}.CONSUMER.INFO.${stream}.${name}`, `${api}.CONSUMER.MSG.NEXT.${stream}.${name}`, `$JS.ACK.${stream}.${name}.>`,
];
/** Removing a key's every entry from a KV bucket (an ended session's lease), markers included: the stream purge API. */
const kvPurge = (bucket: string) => [`${api}.STREAM.PURGE.${kvStream(bucket)}`];
/** Everything a KV bucket's owner does: create it, read, write, compare-and-set, delete, list keys. */
const kvOwner = (bucket: string) => [...streamCreate(kvStream(bucket)), ...streamRead(kvStream(bucket)), ...consumerRead(kvStream(bucket)), `$KV.${bucket}.>`];
/** Reading a KV bucket: get and list keys, never write. */
const kvReader = (bucket: string) => [...streamRead(kvStream(bucket)), ...consumerRead(kvStream(bucket))];
/** Everything an object store's owner does: create it, put (chunks, then the entry, then the old chunks purged) and get. */
const objectStoreOwner = (store: string) => [
  ...streamCreate(objectStream(store)), ...streamRead(objectStream(store)), ...consumerRead(objectStream(store)),
  `${api}.STREAM.PURGE.${objectStream(store)}`, `$O.${store}.>`,
];

/** A NATS service instance answering discovery (`$SRV.PING|INFO|STATS`, for all, its name, its id). */
const serviceResponder = (service: string) => (['PING', 'INFO', 'STATS'] as const).flatMap((verb) => [
  serviceDiscoverySubject(verb), serviceDiscoverySubject(verb, service), `${serviceDiscoverySubject(verb, service)}.*`,
]);
/** Asking services who they are (the tool catalog, readiness probes); STATS, with its error texts, is not needed. */
const discovery = [serviceDiscoverySubject('PING'), `${serviceDiscoverySubject('PING')}.>`, serviceDiscoverySubject('INFO'), `${serviceDiscoverySubject('INFO')}.>`];

/** The built-in `results` pool every session-hosting process serves, paging through large results. */
const resultsDomain = 'results';

/** What hosting sessions takes, for an orchestrator and a specialist alike. */
function sessionHosting(names: WireNames) {
  const s = names.subjects;
  return {
    publish: [
      // Tool calls of every pool (and their undo, and cancellations), delegations to every specialist.
      s.allTools, s.delegation('*'),
      s.allSessionEvents, s.poolAnnouncements, s.allAlerts, ...discovery,
      ...jetStreamInfo, ...objectStoreOwner(names.objectStores.results),
      // The commands recorded for a session while nobody hosted it, read back when it resumes.
      ...streamCreate(names.streams.sessionControls), ...streamRead(names.streams.sessionControls), ...consumerRead(names.streams.sessionControls),
      // Its own heartbeat, and the others' it follows (and removes once lapsed).
      ...kvOwner(names.buckets.hosts),
    ],
    subscribe: [
      // A session's commands (asked, or recorded), and the events of the specialists it delegates to (relayed into its own).
      s.sessionControl('*'), s.allSessionControls, s.allSessionEvents, s.poolAnnouncements, s.toolCallCancellations, s.allToolProgress,
      `${s.tool(resultsDomain, '*')} ${names.queueGroups.pool(resultsDomain)}`, ...serviceResponder(names.services.pool(resultsDomain)),
    ],
  };
}

/**
 * What `role` may publish and subscribe to in the deployment `names` belongs to, reading its
 * replies under `inboxPrefix`. Throws for a worker domain or agent that cannot be a subject token.
 */
export function rolePermissions(names: WireNames, role: Role, inboxPrefix: string): SubjectPermissions {
  const s = names.subjects;
  const inbox = `${inboxPrefix}.>`;
  const events = names.streams.sessionEvents;
  const starts = names.streams.queuedStarts;
  // Reading sessions: their checkpoints, their events (replayed from the stream, or live), alerts.
  const readSessions = {
    publish: [...discovery, ...jetStreamInfo, ...streamRead(events), ...consumerRead(events), ...streamRead(starts), ...streamRead(names.streams.sessionControls), ...kvReader(names.buckets.checkpoints)],
    subscribe: [inbox, s.allSessionEvents, s.allAlerts],
  };
  switch (role.kind) {
    case 'orchestrator': {
      const hosting = sessionHosting(names);
      return {
        publish: [
          ...hosting.publish,
          ...streamCreate(events), ...streamRead(events), ...streamCreate(starts), ...streamRead(starts),
          ...durableConsumer(starts, names.consumers.queuedStarts),
          ...kvOwner(names.buckets.checkpoints), ...kvOwner(names.buckets.leases), ...kvPurge(names.buckets.leases),
        ],
        subscribe: [
          inbox, ...hosting.subscribe,
          `${s.sessionStart} ${names.queueGroups.orchestrators}`, ...serviceResponder(names.services.orchestrator),
        ],
        // Its own service and the results pool's.
        allowResponses: 2,
      };
    }
    case 'worker': {
      if (!subjectTokenPattern.test(role.domain)) throw new Error(`"${role.domain}" cannot be a domain: use letters, digits, "-" or "_"`);
      const queue = names.queueGroups.pool(role.domain);
      return {
        // Side-effecting tools record their outcomes by call id, so a retried call never runs twice;
        // undoable ones keep their captures in the domain's own object store, which no other pool reaches.
        publish: [s.poolAnnouncements, s.allToolProgress, ...jetStreamInfo, ...kvOwner(names.buckets.toolOutcomes), ...objectStoreOwner(names.objectStores.undo(role.domain))],
        subscribe: [
          inbox, `${s.tool(role.domain, '*')} ${queue}`, `${s.toolUndo(role.domain, '*')} ${queue}`, s.toolCallCancellations,
          ...serviceResponder(names.services.pool(role.domain)),
        ],
        allowResponses: 1,
      };
    }
    case 'specialist': {
      if (!subjectTokenPattern.test(role.agent)) throw new Error(`"${role.agent}" cannot be an agent: use letters, digits, "-" or "_"`);
      const hosting = sessionHosting(names);
      return {
        // Its sessions are checkpointed in the pool's own buckets, which its members resume from.
        publish: [
          ...hosting.publish, ...kvOwner(names.buckets.specialistCheckpoints(role.agent)),
          ...kvOwner(names.buckets.specialistLeases(role.agent)), ...kvPurge(names.buckets.specialistLeases(role.agent)),
        ],
        subscribe: [
          inbox, ...hosting.subscribe,
          `${s.delegation(role.agent)} ${names.queueGroups.specialist(role.agent)}`, ...serviceResponder(names.services.specialist(role.agent)),
        ],
        // Its own service and the results pool's.
        allowResponses: 2,
      };
    }
    case 'client':
      // Starts sessions (a request, or into the queue while no orchestrator runs) and follows them.
      return {
        publish: [s.sessionStart, s.queuedSessionStarts, ...discovery, ...jetStreamInfo, ...streamRead(events), ...consumerRead(events), ...streamRead(starts), ...streamRead(names.streams.sessionControls)],
        subscribe: [inbox, s.allSessionEvents],
        allowResponses: 0,
      };
    case 'operator':
      // Everything an observer sees, and every command: approve, deny, interrupt, redirect, cancel, resume, take over, roll back.
      return { publish: [...readSessions.publish, s.sessionControl('*'), s.allSessionControls], subscribe: readSessions.subscribe, allowResponses: 0 };
    case 'observer':
      return { ...readSessions, allowResponses: 0 };
  }
}
