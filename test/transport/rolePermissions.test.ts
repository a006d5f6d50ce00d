import { describe, expect, it } from 'vitest';
import { roleName, roleOf, rolePermissions, type Role, type SubjectPermissions } from '../../transport/rolePermissions.ts';
import { userInboxPrefix, wireNames } from '../../transport/subjects.ts';

/** NATS subject matching as the server applies a permission: `*` one token, `>` the rest. */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

/** Whether the permissions let a user publish to `subject`. */
const mayPublish = (permissions: SubjectPermissions, subject: string) => permissions.publish.some((pattern) => matches(pattern, subject));
/** Whether they let it subscribe to `subject`, in `queue` when given: an entry `"<subject> <queue>"` allows only that queue group. */
const maySubscribe = (permissions: SubjectPermissions, subject: string, queue?: string) => permissions.subscribe.some((entry) => {
  const [pattern = '', only] = entry.split(' ');
  return matches(pattern, subject) && (only === undefined || only === queue);
});

const names = wireNames('prod');
const s = names.subjects;
const inboxOf = (role: string) => userInboxPrefix(`U${role.toUpperCase().replace(/[^A-Z]/g, '').padEnd(55, 'A')}`);
const roles: Role[] = [
  { kind: 'orchestrator' }, { kind: 'worker', domain: 'calc' }, { kind: 'worker', domain: 'db' }, { kind: 'worker', domain: 'files' },
  { kind: 'specialist', agent: 'analyst' }, { kind: 'client' }, { kind: 'operator' }, { kind: 'observer' },
];
const of = (name: string): SubjectPermissions => rolePermissions(names, roleOf(name) as Role, inboxOf(name));

describe('roleName and roleOf', () => {
  it('name every role as its seed file and server user are named, and read the names back', () => {
    expect(roles.map(roleName)).toEqual(['orchestrator', 'worker-calc', 'worker-db', 'worker-files', 'specialist-analyst', 'client', 'operator', 'observer']);
    for (const role of roles) expect(roleOf(roleName(role))).toEqual(role);
    expect(roleOf('admin')).toBeUndefined();
    expect(roleOf('worker-a.b')).toBeUndefined();
  });
});

describe('rolePermissions', () => {
  it('lets each role read only its own inbox, and no role publish into any inbox (replies go through allow_responses)', () => {
    for (const role of roles) {
      const name = roleName(role);
      const own = of(name);
      expect(maySubscribe(own, `${inboxOf(name)}.abc.1`), name).toBe(true);
      for (const other of roles.filter((r) => r !== role)) expect(maySubscribe(own, `${inboxOf(roleName(other))}.abc.1`), `${name} reading ${roleName(other)}`).toBe(false);
      expect(own.publish.some((pattern) => pattern.startsWith('_INBOX') || pattern === '>'), name).toBe(false);
      expect(own.subscribe.some((entry) => entry.startsWith('_INBOX.>') || entry === '>'), name).toBe(false);
    }
  });

  it('answers requests only for the roles that serve: one answer per service they run', () => {
    expect(Object.fromEntries(roles.map((role) => [roleName(role), of(roleName(role)).allowResponses]))).toEqual({
      orchestrator: 2, 'worker-calc': 1, 'worker-db': 1, 'worker-files': 1, 'specialist-analyst': 2, client: 0, operator: 0, observer: 0,
    });
  });

  it('lets a worker take its own tools\' calls and undo requests only in its queue group, and nothing of another pool', () => {
    const calc = of('worker-calc');
    expect(maySubscribe(calc, s.tool('calc', 'calc_evaluate'), names.queueGroups.pool('calc'))).toBe(true);
    expect(maySubscribe(calc, s.tool('calc', 'calc_evaluate'))).toBe(false);
    expect(maySubscribe(calc, s.tool('calc', 'calc_evaluate'), 'spy')).toBe(false);
    expect(maySubscribe(calc, s.toolUndo('calc', 'calc_evaluate'), names.queueGroups.pool('calc'))).toBe(true);
    expect(maySubscribe(calc, s.tool('db', 'db_query'), names.queueGroups.pool('db'))).toBe(false);
    expect(maySubscribe(calc, `${names.namespace}.tools.db.>`)).toBe(false);
    expect(maySubscribe(calc, s.toolCallCancellations)).toBe(true);
    // Discovery of its own service only, besides the broadcast every service answers.
    expect(maySubscribe(calc, '$SRV.INFO')).toBe(true);
    expect(maySubscribe(calc, `$SRV.INFO.${names.services.pool('calc')}`)).toBe(true);
    expect(maySubscribe(calc, `$SRV.INFO.${names.services.pool('db')}`)).toBe(false);
    expect(mayPublish(calc, s.tool('db', 'db_query'))).toBe(false);
  });

  it('keeps checkpoints and leases to the orchestrator, idempotency claims to the pools, readers of sessions read-only', () => {
    const checkpoints = names.buckets.checkpoints;
    const write = `$KV.${checkpoints}.s-1`;
    const read = `$JS.API.DIRECT.GET.KV_${checkpoints}.$KV.${checkpoints}.s-1`;
    expect(roles.filter((role) => mayPublish(of(roleName(role)), write)).map(roleName)).toEqual(['orchestrator']);
    expect(roles.filter((role) => mayPublish(of(roleName(role)), read)).map(roleName)).toEqual(['orchestrator', 'operator', 'observer']);
    expect(roles.filter((role) => mayPublish(of(roleName(role)), `$KV.${names.buckets.leases}.s-1`)).map(roleName)).toEqual(['orchestrator']);
    // An ended session's lease is purged from the stream, marker and all; no other stream may be purged that way.
    expect(roles.filter((role) => mayPublish(of(roleName(role)), `$JS.API.STREAM.PURGE.KV_${names.buckets.leases}`)).map(roleName)).toEqual(['orchestrator']);
    expect(roles.filter((role) => mayPublish(of(roleName(role)), `$JS.API.STREAM.PURGE.KV_${names.buckets.specialistLeases('analyst')}`)).map(roleName)).toEqual(['specialist-analyst']);
    expect(roles.filter((role) => mayPublish(of(roleName(role)), `$JS.API.STREAM.PURGE.KV_${checkpoints}`)).map(roleName)).toEqual([]);
    expect(roles.filter((role) => mayPublish(of(roleName(role)), `$KV.${names.buckets.toolOutcomes}.call`)).map(roleName)).toEqual(['worker-calc', 'worker-db', 'worker-files']);
    expect(roles.filter((role) => mayPublish(of(roleName(role)), `$JS.API.STREAM.CREATE.${names.streams.sessionEvents}`)).map(roleName)).toEqual(['orchestrator']);
    expect(roles.filter((role) => mayPublish(of(roleName(role)), `$JS.API.STREAM.DELETE.${names.streams.sessionEvents}`)).map(roleName)).toEqual([]);
    expect(roles.filter((role) => mayPublish(of(roleName(role)), `$JS.ACK.${names.streams.queuedStarts}.${names.consumers.queuedStarts}.1.2.3.4.5`)).map(roleName)).toEqual(['orchestrator']);
  });

  it('lets only session hosts publish session events, only clients start sessions, only operators command them', () => {
    const who = (subject: string) => roles.filter((role) => mayPublish(of(roleName(role)), subject)).map(roleName);
    expect(who(s.sessionEvents('s-1'))).toEqual(['orchestrator', 'specialist-analyst']);
    expect(who(s.sessionStart)).toEqual(['client']);
    expect(who(s.queuedSessionStarts)).toEqual(['client']);
    expect(who(s.sessionControl('s-1'))).toEqual(['operator']);
    expect(who(s.toolUndo('files', 'files_write'))).toEqual(['orchestrator', 'specialist-analyst']);
    expect(who(s.delegation('analyst'))).toEqual(['orchestrator', 'specialist-analyst']);
  });

  it('lets the observer follow sessions and their events but change nothing', () => {
    const observer = of('observer');
    expect(maySubscribe(observer, s.sessionEvents('s-1'))).toBe(true);
    expect(mayPublish(observer, `$JS.API.CONSUMER.CREATE.${names.streams.sessionEvents}.oc_1.${s.sessionEvents('s-1')}`)).toBe(true);
    expect(observer.publish.filter((pattern) => !pattern.startsWith('$JS.') && !pattern.startsWith('$SRV.'))).toEqual([]);
    expect(observer.publish.some((pattern) => pattern.startsWith('$KV.') || pattern.startsWith('$O.'))).toBe(false);
  });

  it('names only its own namespace\'s subjects, so a role of one deployment has nothing in another', () => {
    const staging = wireNames('staging');
    for (const role of roles) {
      const own = rolePermissions(staging, role, inboxOf(roleName(role)));
      for (const pattern of [...own.publish, ...own.subscribe]) expect(pattern.startsWith('prod') || pattern.includes('PROD') || pattern.includes('_prod_'), pattern).toBe(false);
    }
  });

  it('refuses a domain or agent that cannot be a subject token', () => {
    expect(() => rolePermissions(names, { kind: 'worker', domain: 'a.>' }, '_INBOX.U')).toThrow(/cannot be a domain/);
    expect(() => rolePermissions(names, { kind: 'specialist', agent: '*' }, '_INBOX.U')).toThrow(/cannot be an agent/);
  });
});
