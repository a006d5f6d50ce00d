import { describe, expect, it } from 'vitest';
import { argumentsMatch, matchTrajectory } from '../../evaluation/trajectoryMatch.ts';
import { made } from './evalFixtures.ts';

const add = { tool: 'calc_add', arguments: { a: 1, b: 2 } };
const mul = { tool: 'calc_mul', arguments: { a: 3, b: 4 } };
const addCall = made('calc_add', { a: 1, b: 2 });
const mulCall = made('calc_mul', { a: 3, b: 4 });

describe('matchTrajectory', () => {
  describe('strict', () => {
    it('matches the same calls in the same order', () => {
      expect(matchTrajectory({ mode: 'strict', calls: [add, mul] }, [addCall, mulCall])).toEqual({ matched: true, precision: 1, recall: 1, problems: [] });
    });

    it('fails on a wrong order, pairing calls by position', () => {
      const result = matchTrajectory({ mode: 'strict', calls: [add, mul] }, [mulCall, addCall]);
      expect(result).toMatchObject({ matched: false, precision: 0, recall: 0 });
      expect(result.problems).toEqual([
        'call 1: expected calc_add({"a":1,"b":2}), the run called calc_mul({"a":3,"b":4})',
        'call 2: expected calc_mul({"a":3,"b":4}), the run called calc_add({"a":1,"b":2})',
      ]);
    });

    it('fails on a missing and on an extra call', () => {
      expect(matchTrajectory({ mode: 'strict', calls: [add, mul] }, [addCall]).problems).toEqual(['call 2: expected calc_mul({"a":3,"b":4}), the run made no more calls']);
      const extra = matchTrajectory({ mode: 'strict', calls: [add] }, [addCall, mulCall]);
      expect(extra).toMatchObject({ matched: false, precision: 0.5, recall: 1 });
      expect(extra.problems).toEqual(['call 2: the run called calc_mul({"a":3,"b":4}), beyond the 1 expected']);
    });
  });

  describe('unordered', () => {
    it('matches the same calls in any order', () => {
      expect(matchTrajectory({ mode: 'unordered', calls: [add, mul] }, [mulCall, addCall]).matched).toBe(true);
    });

    it('fails on a missing call, counting calls as a multiset', () => {
      const result = matchTrajectory({ mode: 'unordered', calls: [add, add, mul] }, [mulCall, addCall]);
      expect(result).toMatchObject({ matched: false, precision: 1, recall: 2 / 3 });
      expect(result.problems).toEqual(['expected calc_add({"a":1,"b":2}) once more than the run called it']);
    });

    it('fails on an extra call', () => {
      const result = matchTrajectory({ mode: 'unordered', calls: [add] }, [addCall, made('files_write', { path: 'x' })]);
      expect(result.problems).toEqual(['the run called files_write({"path":"x"}), which is not among the expected calls']);
    });

    it('names a wrong argument as one problem', () => {
      const result = matchTrajectory({ mode: 'unordered', calls: [add] }, [made('calc_add', { a: 1, b: 3 })]);
      expect(result).toMatchObject({ matched: false, precision: 0, recall: 0 });
      expect(result.problems).toEqual(['expected calc_add({"a":1,"b":2}), the run called calc_add({"a":1,"b":3})']);
    });
  });

  describe('subset', () => {
    it('passes when every call the run made is among the expected ones, some expected calls left unmade', () => {
      expect(matchTrajectory({ mode: 'subset', calls: [add, mul] }, [mulCall])).toEqual({ matched: true, precision: 1, recall: 0.5, problems: [] });
    });

    it('fails on an extra call', () => {
      const result = matchTrajectory({ mode: 'subset', calls: [add] }, [addCall, addCall]);
      expect(result).toMatchObject({ matched: false, precision: 0.5, recall: 1 });
      expect(result.problems).toEqual(['the run called calc_add({"a":1,"b":2}) once more than expected']);
    });
  });

  describe('superset', () => {
    it('passes when the run made at least the expected calls', () => {
      expect(matchTrajectory({ mode: 'superset', calls: [add] }, [mulCall, addCall, made('files_read')])).toMatchObject({ matched: true, precision: 1 / 3, recall: 1 });
    });

    it('fails on a missing call', () => {
      const result = matchTrajectory({ mode: 'superset', calls: [add, mul] }, [addCall]);
      expect(result).toMatchObject({ matched: false, recall: 0.5 });
      expect(result.problems).toEqual(['expected calc_mul({"a":3,"b":4}), the run never called calc_mul']);
    });
  });

  describe('argument modes', () => {
    const run = [made('calc_add', { a: 1, b: 2, precision: 2 })];

    it('exact needs deep-equal arguments', () => {
      expect(matchTrajectory({ mode: 'strict', calls: [{ tool: 'calc_add', arguments: { a: 1, b: 2, precision: 2 } }] }, run).matched).toBe(true);
      expect(matchTrajectory({ mode: 'strict', arguments: 'exact', calls: [add] }, run).matched).toBe(false);
    });

    it('ignore compares the tool name alone', () => {
      expect(matchTrajectory({ mode: 'strict', arguments: 'ignore', calls: [{ tool: 'calc_add', arguments: { a: 9 } }] }, run).matched).toBe(true);
      const wrongTool = matchTrajectory({ mode: 'strict', arguments: 'ignore', calls: [{ tool: 'calc_mul', arguments: { a: 9 } }] }, run);
      expect(wrongTool.problems).toEqual(['call 1: expected calc_mul, the run called calc_add({"a":1,"b":2,"precision":2})']);
    });

    it('superset needs every expected key with an equal value, other keys allowed', () => {
      expect(matchTrajectory({ mode: 'strict', arguments: 'superset', calls: [add] }, run).matched).toBe(true);
      const result = matchTrajectory({ mode: 'strict', arguments: 'superset', calls: [{ tool: 'calc_add', arguments: { a: 1, b: 5 } }] }, run);
      expect(result.problems).toEqual(['call 1: expected calc_add({"a":1,"b":5}), the run called calc_add({"a":1,"b":2,"precision":2}) (arguments compared as superset)']);
    });

    it('subset needs every key the run passed to be expected with an equal value', () => {
      expect(matchTrajectory({ mode: 'strict', arguments: 'subset', calls: [{ tool: 'calc_add', arguments: { a: 1, b: 2, precision: 2, rounding: 'up' } }] }, run).matched).toBe(true);
      expect(matchTrajectory({ mode: 'strict', arguments: 'subset', calls: [add] }, run).matched).toBe(false);
    });

    it('lets a call override the trajectory\'s argument mode', () => {
      const expected = { mode: 'strict' as const, arguments: 'exact' as const, calls: [{ ...add, match: 'superset' as const }] };
      expect(matchTrajectory(expected, run).matched).toBe(true);
    });

    it('compares the tool name alone for an expected call without arguments', () => {
      expect(matchTrajectory({ mode: 'strict', calls: [{ tool: 'calc_add' }] }, run).matched).toBe(true);
    });

    it('compares values under the top-level keys deeply', () => {
      expect(argumentsMatch('superset', { rows: [{ id: 1 }] }, { rows: [{ id: 1 }], limit: 5 })).toBe(true);
      expect(argumentsMatch('superset', { rows: [{ id: 1 }] }, { rows: [{ id: 1, extra: true }] })).toBe(false);
      expect(argumentsMatch('subset', { a: 1 }, 'not an object')).toBe(false);
    });
  });

  it('pairs calls one to one at most, finding a pairing for a strict call that a loose one could have taken', () => {
    const calls = [
      { tool: 'calc_add', match: 'ignore' as const },
      { tool: 'calc_add', arguments: { a: 1, b: 2 } },
    ];
    const result = matchTrajectory({ mode: 'unordered', calls }, [addCall, made('calc_add', { a: 5, b: 5 })]);
    expect(result).toEqual({ matched: true, precision: 1, recall: 1, problems: [] });
  });

  it('leaves rejected calls out: the runtime refused them, so they were not made', () => {
    const run = [made('files_delete', { path: '/' }, 'rejected'), addCall, made('calc_add', { a: 'x' }, 'rejected')];
    expect(matchTrajectory({ mode: 'strict', calls: [add] }, run)).toEqual({ matched: true, precision: 1, recall: 1, problems: [] });
  });

  it('counts failed calls as made', () => {
    expect(matchTrajectory({ mode: 'strict', calls: [add] }, [made('calc_add', { a: 1, b: 2 }, 'error')]).matched).toBe(true);
  });

  it('gives precision and recall of 1 for no call expected and none made, precision 0 for calls expected and none made', () => {
    expect(matchTrajectory({ mode: 'unordered', calls: [] }, [])).toEqual({ matched: true, precision: 1, recall: 1, problems: [] });
    expect(matchTrajectory({ mode: 'superset', calls: [add] }, [])).toMatchObject({ matched: false, precision: 0, recall: 0 });
    expect(matchTrajectory({ mode: 'subset', calls: [] }, [addCall])).toMatchObject({ matched: false, precision: 0, recall: 1 });
  });

  it('gives the share of matched calls as precision and recall', () => {
    const result = matchTrajectory({ mode: 'unordered', calls: [add, mul, { tool: 'files_read' }, { tool: 'files_write' }] }, [addCall, mulCall, made('db_query')]);
    expect(result.precision).toBeCloseTo(2 / 3);
    expect(result.recall).toBeCloseTo(2 / 4);
  });
});
