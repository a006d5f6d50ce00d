import { describe, expect, it } from 'vitest';
import { defaultNamespace, InvalidNamespaceError, serviceDiscoverySubject, wireNames, type WireNames } from '../../transport/subjects.ts';

/** Every name of a deployment, flattened, with the functions applied to sample arguments. */
function everyName(names: WireNames): Record<string, string> {
  const { subjects: s, queueGroups: q, services } = names;
  return {
    'subjects.tool': s.tool('calc', 'calc_evaluate'),
    'subjects.delegation': s.delegation('analyst'),
    'subjects.toolUndo': s.toolUndo('files', 'files_write'),
    'subjects.toolCallCancellations': s.toolCallCancellations,
    'subjects.poolAnnouncements': s.poolAnnouncements,
    'subjects.sessionStart': s.sessionStart,
    'subjects.queuedSessionStarts': s.queuedSessionStarts,
    'subjects.allSessionEvents': s.allSessionEvents,
    'subjects.sessionEvents': s.sessionEvents('s-1'),
    'subjects.sessionControl': s.sessionControl('s-1'),
    'subjects.alerts': s.alerts('session_spend'),
    'subjects.allAlerts': s.allAlerts,
    'queueGroups.pool': q.pool('calc'),
    'queueGroups.specialist': q.specialist('analyst'),
    'queueGroups.orchestrators': q.orchestrators,
    'services.pool': services.pool('calc'),
    'services.specialist': services.specialist('analyst'),
    'services.orchestrator': services.orchestrator,
    'streams.sessionEvents': names.streams.sessionEvents,
    'streams.queuedStarts': names.streams.queuedStarts,
    'consumers.queuedStarts': names.consumers.queuedStarts,
    'buckets.checkpoints': names.buckets.checkpoints,
    'buckets.leases': names.buckets.leases,
    'buckets.toolOutcomes': names.buckets.toolOutcomes,
    'objectStores.results': names.objectStores.results,
    'objectStores.undo': names.objectStores.undo('files'),
  };
}

describe('wireNames', () => {
  // Regression guard: deployments from before namespaces existed must keep talking to new processes.
  it('gives the default namespace exactly the names Troupe used before namespaces', () => {
    expect(defaultNamespace).toBe('troupe');
    expect(everyName(wireNames())).toStrictEqual({
      'subjects.tool': 'troupe.tools.calc.calc_evaluate',
      'subjects.delegation': 'troupe.agents.analyst.delegate',
      'subjects.toolUndo': 'troupe.tools.files.files_write.undo',
      'subjects.toolCallCancellations': 'troupe.tools.cancel',
      'subjects.poolAnnouncements': 'troupe.pools.announce',
      'subjects.sessionStart': 'troupe.sessions.start',
      'subjects.queuedSessionStarts': 'troupe.queue.sessions.start',
      'subjects.allSessionEvents': 'troupe.sessions.*.events',
      'subjects.sessionEvents': 'troupe.sessions.s-1.events',
      'subjects.sessionControl': 'troupe.sessions.s-1.control',
      'subjects.alerts': 'troupe.alerts.session_spend',
      'subjects.allAlerts': 'troupe.alerts.>',
      'queueGroups.pool': 'troupe-calc',
      'queueGroups.specialist': 'troupe-agent-analyst',
      'queueGroups.orchestrators': 'troupe-orchestrators',
      'services.pool': 'troupe-calc',
      'services.specialist': 'troupe-agent-analyst',
      'services.orchestrator': 'troupe-orchestrator',
      'streams.sessionEvents': 'TROUPE_SESSION_EVENTS',
      'streams.queuedStarts': 'TROUPE_SESSION_STARTS',
      'consumers.queuedStarts': 'orchestrators',
      'buckets.checkpoints': 'troupe_sessions',
      'buckets.leases': 'troupe_session_leases',
      'buckets.toolOutcomes': 'troupe_tool_outcomes',
      'objectStores.results': 'troupe_results',
      'objectStores.undo': 'troupe_undo_files',
    });
    expect(everyName(wireNames('troupe'))).toStrictEqual(everyName(wireNames()));
  });

  it('puts another namespace at the start of every name', () => {
    const staging = everyName(wireNames('staging'));
    const byDefault = everyName(wireNames());
    for (const [key, name] of Object.entries(staging)) {
      const expected = key === 'consumers.queuedStarts'
        ? byDefault[key] // named within its stream, which is namespaced already
        : (byDefault[key] as string).replace(/^troupe/, 'staging').replace(/^TROUPE/, 'STAGING');
      expect([key, name]).toEqual([key, expected]);
    }
  });

  it('shares no subject, queue group, service, stream, bucket or object store between two namespaces', () => {
    const a = Object.entries(everyName(wireNames('staging'))).filter(([key]) => !key.startsWith('consumers.'));
    const b = new Set(Object.values(everyName(wireNames('production'))));
    expect(a.filter(([, name]) => b.has(name))).toEqual([]);
  });

  it('accepts lower-case letters, digits, "-" and "_" after a leading letter, up to 32 characters', () => {
    for (const namespace of ['a', 'staging', 'team-7', 'team_b', 'x'.repeat(32)]) {
      expect(wireNames(namespace).namespace).toBe(namespace);
    }
    expect(wireNames('my-app').streams.sessionEvents).toBe('MY-APP_SESSION_EVENTS');
  });

  it('refuses a namespace that cannot be a subject token, bucket and stream name, saying what would be', () => {
    for (const bad of ['', 'Staging', 'stag.ing', 'stag ing', 'stag*', 'stag>', '7up', '-staging', 'x'.repeat(33), 'ünïcode']) {
      const refusal = (() => {
        try {
          wireNames(bad);
        } catch (error) {
          return error;
        }
        return undefined;
      })();
      expect(refusal, bad).toBeInstanceOf(InvalidNamespaceError);
      expect((refusal as InvalidNamespaceError).namespace).toBe(bad);
      expect((refusal as Error).message).toBe(`"${bad}" is not a namespace: use a lower-case letter, then lower-case letters, digits, "-" or "_", at most 32 characters (e.g. "staging").`);
    }
  });
});

describe('serviceDiscoverySubject', () => {
  it('builds the global $SRV subjects, with no namespace', () => {
    expect(serviceDiscoverySubject('INFO')).toBe('$SRV.INFO');
    expect(serviceDiscoverySubject('PING', 'staging-calc')).toBe('$SRV.PING.staging-calc');
    expect(serviceDiscoverySubject('STATS', 'staging-calc', 'ID1')).toBe('$SRV.STATS.staging-calc.ID1');
  });
});
