import { describe, expect, it } from 'vitest';
import {
  checkFaultSpecification,
  FaultInjector,
  faultSpecificationFromEnv,
  FaultSpecificationError,
  parseFaultSpecification,
  unknownFaultTools,
  type FaultSpecificationInput,
} from '../../../actors/worker/workerFaults.ts';
import { MemoryFaultCounts, type FaultCounts, type FaultRuleRef } from '../../../actors/worker/faultCounts.ts';

/** A random source that returns the given values in order and fails loudly when over-used. */
function scriptedRandom(values: number[]): () => number {
  let i = 0;
  return () => {
    if (i >= values.length) throw new Error(`random() called ${i + 1} times; only ${values.length} values scripted`);
    return values[i++] as number;
  };
}

const neverRandom = (): number => {
  throw new Error('random() must not be called for rules without a probability below 1');
};

function injector(spec: FaultSpecificationInput, random: () => number = neverRandom): FaultInjector {
  return new FaultInjector(checkFaultSpecification(spec), { random });
}

function parseError(json: string): FaultSpecificationError {
  try {
    parseFaultSpecification(json);
  } catch (error) {
    expect(error).toBeInstanceOf(FaultSpecificationError);
    return error as FaultSpecificationError;
  }
  throw new Error(`expected ${json} to be refused`);
}

describe('parseFaultSpecification', () => {
  it('accepts the documented example and fills defaults', () => {
    const spec = parseFaultSpecification(
      JSON.stringify({
        files_write: [{ kind: 'drop_reply', times: 1 }],
        calc_evaluate: [
          { kind: 'error', code: 'UNAVAILABLE', times: 2 },
          { kind: 'delay', delayMs: 200, probability: 0.5 },
        ],
        '*': [{ kind: 'crash', afterCalls: 3 }, { kind: 'timeout' }, { kind: 'error' }],
      }),
    );
    expect(spec.files_write).toEqual([{ kind: 'drop_reply', times: 1 }]);
    expect(spec.calc_evaluate?.[0]).toEqual({ kind: 'error', code: 'UNAVAILABLE', times: 2 });
    expect(spec['*']?.[2]).toEqual({ kind: 'error', code: 'INTERNAL' });
  });

  it('refuses an unknown kind, naming its path', () => {
    const error = parseError('{"calc_evaluate":[{"kind":"error"},{"kind":"explode"}]}');
    expect(error.path).toBe('calc_evaluate[1].kind');
    expect(error.message).toContain('calc_evaluate[1].kind');
  });

  it('refuses negative times', () => {
    expect(parseError('{"files_write":[{"kind":"drop_reply","times":-1}]}').path).toBe('files_write[0].times');
  });

  it('refuses a probability above 1', () => {
    const error = parseError('{"*":[{"kind":"crash","probability":1.5}]}');
    expect(error.path).toBe('*[0].probability');
    expect(error.issues[0]).toMatchObject({ path: '*[0].probability', code: 'too_big' });
  });

  it('refuses an unknown error code, a missing delayMs and a misspelt field', () => {
    expect(parseError('{"t_x":[{"kind":"error","code":"OOPS"}]}').path).toBe('t_x[0].code');
    expect(parseError('{"t_x":[{"kind":"delay"}]}').path).toBe('t_x[0].delayMs');
    expect(parseError('{"t_x":[{"kind":"crash","afterCall":2}]}').message).toContain('afterCall');
  });

  it('refuses a non-object and rules that are not a list', () => {
    expect(parseError('[1]').path).toBe('');
    expect(parseError('{"t_x":{"kind":"crash"}}').path).toBe('t_x');
  });

  it('refuses text that is not JSON, naming the source', () => {
    const error = parseError('{files_write: []');
    expect(error.path).toBe('');
    expect(error.message).toMatch(/^TROUPE_FAULTS is not valid JSON/);
  });
});

describe('faultSpecificationFromEnv', () => {
  it('reads TROUPE_FAULTS and ignores it when unset or blank', () => {
    expect(faultSpecificationFromEnv({})).toBeUndefined();
    expect(faultSpecificationFromEnv({ TROUPE_FAULTS: '  ' })).toBeUndefined();
    expect(faultSpecificationFromEnv({ TROUPE_FAULTS: '{"*":[{"kind":"crash"}]}' })).toEqual({ '*': [{ kind: 'crash', at: 'before_claim' }] });
    expect(() => faultSpecificationFromEnv({ TROUPE_FAULTS: '{' })).toThrow(FaultSpecificationError);
  });
});

describe('unknownFaultTools', () => {
  it('lists named tools the worker does not serve, never "*"', () => {
    const spec = checkFaultSpecification({ calc_add: [], calc_evalute: [], '*': [] });
    expect(unknownFaultTools(spec, ['calc_add', 'calc_evaluate'])).toEqual(['calc_evalute']);
  });
});

describe('FaultInjector', () => {
  it('injects nothing into tools without rules', () => {
    const faults = injector({ calc_add: [{ kind: 'crash' }] });
    expect(faults.next('files_read')).toBeUndefined();
  });

  it('applies a rule to its first `times` calls, then lets calls through', () => {
    const faults = injector({ calc_evaluate: [{ kind: 'error', code: 'UNAVAILABLE', times: 2 }] });
    const fault = { kind: 'error', code: 'UNAVAILABLE', message: 'Injected fault: calc_evaluate failed with UNAVAILABLE.' };
    expect(faults.next('calc_evaluate')).toEqual(fault);
    expect(faults.next('calc_evaluate')).toEqual(fault);
    expect(faults.next('calc_evaluate')).toBeUndefined();
    expect(faults.next('calc_evaluate')).toBeUndefined();
  });

  it('keeps the configured error message', () => {
    const faults = injector({ db_query: [{ kind: 'error', code: 'FORBIDDEN', message: 'nope' }] });
    expect(faults.next('db_query')).toEqual({ kind: 'error', code: 'FORBIDDEN', message: 'nope' });
  });

  it('applies a rule without times to every call', () => {
    const faults = injector({ calc_add: [{ kind: 'delay', delayMs: 200 }] });
    for (let i = 0; i < 5; i++) expect(faults.next('calc_add')).toEqual({ kind: 'delay', delayMs: 200 });
  });

  it('treats times 0 as a disabled rule', () => {
    expect(injector({ calc_add: [{ kind: 'crash', times: 0 }] }).next('calc_add')).toBeUndefined();
  });

  it('skips the first afterCalls calls to the tool', () => {
    const faults = injector({ files_write: [{ kind: 'crash', afterCalls: 2, times: 1 }] });
    expect(faults.next('files_write')).toBeUndefined();
    expect(faults.next('files_read')).toBeUndefined(); // another tool's calls do not count
    expect(faults.next('files_write')).toBeUndefined();
    expect(faults.next('files_write')).toEqual({ kind: 'crash', at: 'before_claim' });
    expect(faults.next('files_write')).toBeUndefined();
  });

  it('counts every tool for afterCalls on a "*" rule', () => {
    const faults = injector({ '*': [{ kind: 'crash', afterCalls: 3 }] });
    expect(faults.next('calc_add')).toBeUndefined();
    expect(faults.next('files_read')).toBeUndefined();
    expect(faults.next('calc_add')).toBeUndefined();
    expect(faults.next('db_query')).toEqual({ kind: 'crash', at: 'before_claim' });
  });

  it('draws the random source for a probability, hitting when it falls below', () => {
    const faults = injector({ calc_evaluate: [{ kind: 'delay', delayMs: 50, probability: 0.5 }] }, scriptedRandom([0.2, 0.5, 0.9, 0.49]));
    expect(faults.next('calc_evaluate')).toEqual({ kind: 'delay', delayMs: 50 });
    expect(faults.next('calc_evaluate')).toBeUndefined();
    expect(faults.next('calc_evaluate')).toBeUndefined();
    expect(faults.next('calc_evaluate')).toEqual({ kind: 'delay', delayMs: 50 });
  });

  it('counts only hits towards times when a probability misses', () => {
    const faults = injector({ calc_add: [{ kind: 'timeout', times: 1, probability: 0.3 }] }, scriptedRandom([0.8, 0.1]));
    expect(faults.next('calc_add')).toBeUndefined();
    expect(faults.next('calc_add')).toEqual({ kind: 'timeout' });
    expect(faults.next('calc_add')).toBeUndefined(); // spent: random is not consulted again
  });

  it('never hits with probability 0', () => {
    const faults = injector({ calc_add: [{ kind: 'crash', probability: 0 }] }, () => 0);
    expect(faults.next('calc_add')).toBeUndefined();
  });

  it('tries the tool rules in order before the "*" rules', () => {
    const faults = injector({
      '*': [{ kind: 'delay', delayMs: 10, times: 1 }, { kind: 'drop_reply' }],
      files_write: [{ kind: 'error', code: 'UNAVAILABLE', times: 1 }, { kind: 'timeout', times: 1 }],
    });
    expect(faults.next('files_write')).toMatchObject({ kind: 'error' });
    expect(faults.next('files_write')).toEqual({ kind: 'timeout' });
    expect(faults.next('files_write')).toEqual({ kind: 'delay', delayMs: 10 });
    expect(faults.next('files_write')).toEqual({ kind: 'drop_reply' });
    expect(faults.next('calc_add')).toEqual({ kind: 'drop_reply' });
  });

  it('keeps each tool`s rules and counters independent', () => {
    const faults = injector({
      calc_add: [{ kind: 'error', times: 1 }],
      calc_evaluate: [{ kind: 'error', code: 'TIMEOUT', times: 1, afterCalls: 1 }],
    });
    expect(faults.next('calc_add')).toMatchObject({ kind: 'error', code: 'INTERNAL' });
    expect(faults.next('calc_evaluate')).toBeUndefined();
    expect(faults.next('calc_add')).toBeUndefined();
    expect(faults.next('calc_evaluate')).toMatchObject({ kind: 'error', code: 'TIMEOUT' });
  });

  it('keeps counters per injector', () => {
    const spec = checkFaultSpecification({ calc_add: [{ kind: 'crash', times: 1 }] });
    const first = new FaultInjector(spec, { random: neverRandom });
    const second = new FaultInjector(spec, { random: neverRandom });
    expect(first.next('calc_add')).toEqual({ kind: 'crash', at: 'before_claim' });
    expect(first.next('calc_add')).toBeUndefined();
    expect(second.next('calc_add')).toEqual({ kind: 'crash', at: 'before_claim' });
  });
});

describe('FaultInjector with shared counts', () => {
  /** Two injectors (two members of a pool) with the same rules, counting `times` in one store. */
  function pool(spec: FaultSpecificationInput, counts: FaultCounts = new MemoryFaultCounts(), random: () => number = neverRandom): [FaultInjector, FaultInjector] {
    const checked = checkFaultSpecification(spec);
    return [new FaultInjector(checked, { random, counts }), new FaultInjector(checked, { random, counts })];
  }

  it('fires a times:1 crash once in the whole pool, whichever member takes the call', () => {
    const [first, second] = pool({ calc_add: [{ kind: 'crash', times: 1 }] });
    expect(first.next('calc_add')).toEqual({ kind: 'crash', at: 'before_claim' });
    // The retry reaches the other member, which lets it through.
    expect(second.next('calc_add')).toBeUndefined();
    expect(first.next('calc_add')).toBeUndefined();
  });

  it('fires a times:2 error twice in total across the members', () => {
    const [first, second] = pool({ calc_evaluate: [{ kind: 'error', code: 'UNAVAILABLE', times: 2 }] });
    const hits = [second.next('calc_evaluate'), first.next('calc_evaluate'), second.next('calc_evaluate'), first.next('calc_evaluate')];
    expect(hits.map((fault) => fault?.kind)).toEqual(['error', 'error', undefined, undefined]);
  });

  it('falls through to the next rule once another member spent one', () => {
    const [first, second] = pool({ files_write: [{ kind: 'error', times: 1 }, { kind: 'delay', delayMs: 5 }] });
    expect(first.next('files_write')).toMatchObject({ kind: 'error' });
    expect(second.next('files_write')).toEqual({ kind: 'delay', delayMs: 5 });
  });

  it('keeps afterCalls per member', () => {
    const [first, second] = pool({ files_write: [{ kind: 'crash', afterCalls: 1, times: 1 }] });
    expect(first.next('files_write')).toBeUndefined();
    expect(second.next('files_write')).toBeUndefined(); // its own first call, not the pool's second
    expect(second.next('files_write')).toEqual({ kind: 'crash', at: 'before_claim' });
    expect(first.next('files_write')).toBeUndefined();
  });

  it('claims nothing for a rule without times', () => {
    const counts: FaultCounts = { claim: () => { throw new Error('claim() must not be called for a rule without times'); } };
    const [first] = pool({ '*': [{ kind: 'drop_reply' }] }, counts);
    expect(first.next('calc_add')).toEqual({ kind: 'drop_reply' });
  });

  it('asks the store nothing for a probability miss, and nothing more once it knows a rule is spent', () => {
    const claims: FaultRuleRef[] = [];
    const shared = new MemoryFaultCounts();
    const counts: FaultCounts = { claim: (rule, times) => (claims.push({ scope: rule.scope, index: rule.index }), shared.claim(rule, times)) };
    const [first, second] = pool({ calc_add: [{ kind: 'delay', delayMs: 1, times: 1 }], '*': [{ kind: 'timeout', times: 1, probability: 0.5 }] }, counts, scriptedRandom([0.9, 0.1]));
    expect(first.next('calc_add')).toEqual({ kind: 'delay', delayMs: 1 }); // calc_add[0], firing 1 of 1: spent here
    expect(second.next('calc_add')).toBeUndefined(); // calc_add[0] taken; *[0] misses its draw (0.9)
    expect(second.next('calc_add')).toEqual({ kind: 'timeout' }); // calc_add[0] known spent: not asked again; *[0] hits (0.1)
    expect(claims).toEqual([{ scope: 'calc_add', index: 0 }, { scope: 'calc_add', index: 0 }, { scope: '*', index: 0 }]);
  });
});
