import { describe, expect, it } from 'vitest';
import { CheckpointUnreadableError, checkpointSchemaVersion, readCheckpoint } from '../../../actors/durability/checkpointStore.ts';

/** A checkpoint as version 1 wrote it: before delegation and routing were part of a session's context. */
const version1 = {
  schemaVersion: 1,
  sessionId: 's-old',
  agent: 'assistant',
  task: 'Add two numbers.',
  status: 'running',
  snapshot: { status: 'active', value: 'calling_model', context: { sessionId: 's-old', turn: 2, usage: { inputTokens: 10, outputTokens: 5, costUsd: 0.001 } }, children: {} },
  nextEventSeq: 7,
  traceContext: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
  wallClockDeadline: 1_900_000_000_000,
  inFlightToolCalls: [],
  owner: 'host:1',
  updatedAt: '2026-11-01T00:00:00.000Z',
};

describe('readCheckpoint', () => {
  it('reads the current version as it is, filling context fields a checkpoint written before them lacks', () => {
    const current = { ...version1, schemaVersion: checkpointSchemaVersion };
    const read = readCheckpoint('s-old', current);
    // A checkpoint written before recorded commands has applied none.
    expect({ ...read, snapshot: { ...read.snapshot, context: undefined } }).toEqual({ ...current, snapshot: { ...current.snapshot, context: undefined }, appliedControls: [] });
    expect(read.snapshot.context).toMatchObject({ ...version1.snapshot.context, cache: { modelHits: 0, toolHits: 0, savedUsd: 0 }, summary: null });
    // What a checkpoint has is never replaced by a default.
    const withCache = { ...current, snapshot: { ...current.snapshot, context: { ...current.snapshot.context, cache: { modelHits: 2, toolHits: 1, savedUsd: 0.5 } } } };
    expect(readCheckpoint('s-old', withCache).snapshot.context).toMatchObject({ cache: { modelHits: 2, toolHits: 1, savedUsd: 0.5 } });
  });

  it('migrates a version 1 checkpoint: a top-level session without routing that delegated nothing', () => {
    const migrated = readCheckpoint('s-old', version1);
    expect(migrated.schemaVersion).toBe(checkpointSchemaVersion);
    const context = migrated.snapshot.context as Record<string, unknown>;
    expect(context).toMatchObject({
      routing: null, routingDecision: null, depth: 0, delegationDepthLeft: 2,
      delegated: { usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 }, steps: 0, toolCalls: 0 },
    });
    // What the old session had is kept as it was.
    expect(context).toMatchObject({ sessionId: 's-old', turn: 2, usage: { inputTokens: 10, outputTokens: 5, costUsd: 0.001 } });
    expect(migrated.snapshot.value).toBe('calling_model');
    expect(migrated.nextEventSeq).toBe(7);
  });

  it('migrates a version 2 checkpoint: its conversation and ledger stay in its snapshot, with no journal', () => {
    const conversation = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Add two numbers.' }];
    const ledger = [{ turn: 1, callId: 'c1', toolCallId: 't1', tool: 'calc_add', arguments: { a: 1, b: 2 }, status: 'ok' }];
    const version2 = { ...version1, schemaVersion: 2, snapshot: { ...version1.snapshot, context: { ...version1.snapshot.context, conversation, ledger } } };
    const migrated = readCheckpoint('s-old', version2);
    expect(migrated.schemaVersion).toBe(checkpointSchemaVersion);
    expect(migrated.journal).toBeUndefined();
    expect(migrated.snapshot.context).toMatchObject({ conversation, ledger });
  });

  it('migrates a version 3 checkpoint: a session without a workflow', () => {
    const version3 = { ...version1, schemaVersion: 3 };
    const migrated = readCheckpoint('s-old', version3);
    expect(checkpointSchemaVersion).toBe(4);
    expect(migrated.schemaVersion).toBe(4);
    expect(migrated.snapshot.context).toMatchObject({ workflow: null, phase: null, phaseChoice: null, turn: 2 });
  });

  it('refuses a checkpoint from a newer Troupe, and one with no version, without misreading it', () => {
    expect(() => readCheckpoint('s-new', { ...version1, schemaVersion: checkpointSchemaVersion + 1 })).toThrow(CheckpointUnreadableError);
    expect(() => readCheckpoint('s-new', { ...version1, schemaVersion: checkpointSchemaVersion + 1 })).toThrow(/newer Troupe/);
    expect(() => readCheckpoint('s-x', { sessionId: 's-x' })).toThrow(/no schemaVersion/);
  });

  it('refuses a migrated checkpoint that still breaks the format, naming the field', () => {
    expect(() => readCheckpoint('s-old', { ...version1, nextEventSeq: -1 })).toThrow(/nextEventSeq/);
  });

  // Regression (wire fuzzing): a checkpoint stored under one session id but naming another was
  // resumed as that other session (its events, its control subject) and, never able to write its
  // own key, lost and resumed again at every lease expiry.
  it('refuses a checkpoint that names another session than the one it is stored under', () => {
    expect(() => readCheckpoint('s-planted', version1)).toThrow(/names session "s-old", not the one it is stored under/);
    const otherContext = { ...version1, snapshot: { ...version1.snapshot, context: { ...version1.snapshot.context, sessionId: 's-victim' } } };
    expect(() => readCheckpoint('s-old', otherContext)).toThrow(/names session "s-victim"/);
    expect(readCheckpoint('s-old', version1).sessionId).toBe('s-old');
  });
});
