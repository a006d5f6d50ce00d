import { describe, expect, it } from 'vitest';
import {
  canonicalArguments,
  describeLoop,
  detectLoop,
  LoopThresholds,
  type LoopLedgerEntry,
  type LoopThresholdsInput,
} from '../../machines/loopDetection.ts';
import type { LedgerEntry } from '../../machines/ledger.ts';
import { seededRandom, pick, int } from '../fixtures/seededRandom.ts';

const thresholds = (overrides: LoopThresholdsInput = {}): LoopThresholds => LoopThresholds.parse(overrides);

/** One entry per turn unless a turn is given; digests default to unique, so no_progress stays quiet. */
function call(turn: number, tool: string, args: unknown = {}, resultDigest: string | undefined = `r${turn}-${tool}`): LoopLedgerEntry {
  return resultDigest === undefined ? { turn, tool, arguments: args } : { turn, tool, arguments: args, resultDigest };
}

describe('LoopThresholds', () => {
  it('has the documented defaults', () => {
    expect(thresholds()).toEqual({ repeatedCall: 3, alternation: 3, turnsWithoutProgress: 4, window: 12 });
  });

  it('rejects thresholds below two', () => {
    expect(LoopThresholds.safeParse({ repeatedCall: 1 }).success).toBe(false);
    expect(LoopThresholds.safeParse({ window: 1 }).success).toBe(false);
  });
});

describe('canonicalArguments', () => {
  it('sorts object keys recursively, in nested objects and inside arrays', () => {
    expect(canonicalArguments({ b: { y: 1, x: [{ d: 2, c: 1 }] }, a: 'z' })).toBe('{"a":"z","b":{"x":[{"c":1,"d":2}],"y":1}}');
  });

  it('keeps array order', () => {
    expect(canonicalArguments([3, 1, 2])).toBe('[3,1,2]');
    expect(canonicalArguments([3, 1, 2])).not.toBe(canonicalArguments([1, 2, 3]));
  });

  it('follows JSON for primitives, undefined and non-finite numbers', () => {
    expect(canonicalArguments('a"b')).toBe('"a\\"b"');
    expect(canonicalArguments(null)).toBe('null');
    expect(canonicalArguments(undefined)).toBe('null');
    expect(canonicalArguments({ a: undefined, b: 1 })).toBe('{"b":1}');
    expect(canonicalArguments([undefined, Number.NaN])).toBe('[null,null]');
    expect(canonicalArguments(10n)).toBe('"10"');
  });

  it('does not throw on a circular structure', () => {
    const loop: Record<string, unknown> = { a: 1 };
    loop['self'] = loop;
    expect(canonicalArguments(loop)).toBe('{"a":1,"self":"[Circular]"}');
  });

  it('treats shared, non-circular references as plain repeats', () => {
    const shared = { x: 1 };
    expect(canonicalArguments({ a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
  });
});

describe('detectLoop', () => {
  describe('repeated calls', () => {
    it('reports a call repeated exactly the threshold number of times', () => {
      const ledger = [call(1, 'files_read', { path: 'a.txt' }), call(2, 'files_read', { path: 'a.txt' }), call(3, 'files_read', { path: 'a.txt' })];
      expect(detectLoop(ledger, thresholds())).toEqual({
        kind: 'repeated_call',
        tool: 'files_read',
        arguments: { path: 'a.txt' },
        count: 3,
        turns: [1, 2, 3],
        sameResult: false,
      });
    });

    it('stays quiet one below the threshold', () => {
      const ledger = [call(1, 'files_read', { path: 'a.txt' }), call(2, 'files_read', { path: 'a.txt' })];
      expect(detectLoop(ledger, thresholds())).toBeUndefined();
      expect(detectLoop(ledger, thresholds({ repeatedCall: 2 }))?.kind).toBe('repeated_call');
    });

    it('ignores the order of argument keys', () => {
      const ledger = [call(1, 'search', { q: 'x', limit: 5 }), call(2, 'search', { limit: 5, q: 'x' }), call(3, 'search', { q: 'x', limit: 5 })];
      expect(detectLoop(ledger, thresholds())).toMatchObject({ kind: 'repeated_call', count: 3 });
    });

    it('treats different arguments as different calls', () => {
      const ledger = [call(1, 'files_read', { path: 'a.txt' }), call(2, 'files_read', { path: 'b.txt' }), call(3, 'files_read', { path: 'a.txt' })];
      expect(detectLoop(ledger, thresholds())).toBeUndefined();
    });

    it('treats the same arguments to different tools as different calls', () => {
      const ledger = [call(1, 'files_read', { path: 'a' }), call(2, 'files_stat', { path: 'a' }), call(3, 'files_read', { path: 'a' })];
      expect(detectLoop(ledger, thresholds())).toBeUndefined();
    });

    it('counts calls that were rejected or failed like any other', () => {
      const entry = (turn: number, status: LedgerEntry['status']): LedgerEntry & { resultDigest?: string } => ({
        turn,
        callId: null,
        toolCallId: `t${turn}`,
        tool: 'math_add',
        arguments: { a: 'one' },
        status,
        resultDigest: 'invalid',
      });
      const ledger = [entry(1, 'rejected'), entry(2, 'rejected'), entry(3, 'error')];
      expect(detectLoop(ledger, thresholds())).toMatchObject({ kind: 'repeated_call', tool: 'math_add', count: 3 });
    });

    it('lists each turn once when a turn repeats a call', () => {
      const ledger = [call(1, 'ping'), call(1, 'ping'), call(2, 'ping')];
      expect(detectLoop(ledger, thresholds())).toMatchObject({ count: 3, turns: [1, 2] });
    });

    it('says the result was the same only when every repetition returned the same digest', () => {
      const same = [call(1, 'ping', {}, 'd'), call(2, 'ping', {}, 'd'), call(3, 'ping', {}, 'd')];
      expect(detectLoop(same, thresholds())).toMatchObject({ sameResult: true });
      const unknown = [call(1, 'ping', {}, 'd'), call(2, 'ping', {}, 'd'), call(3, 'ping', {}, undefined)];
      expect(detectLoop(unknown, thresholds())).toMatchObject({ sameResult: false });
    });

    it('looks only at the most recent window of entries', () => {
      const ledger = [call(1, 'ping'), call(2, 'ping'), call(3, 'a'), call(4, 'b'), call(5, 'c'), call(6, 'ping')];
      expect(detectLoop(ledger, thresholds({ window: 5 }))).toBeUndefined();
      expect(detectLoop(ledger, thresholds({ window: 6 }))).toMatchObject({ kind: 'repeated_call', turns: [1, 2, 6] });
    });

    it('reports the most repeated call, and the earliest on a tie', () => {
      const ledger = [call(1, 'a'), call(2, 'b'), call(3, 'b'), call(4, 'a'), call(5, 'b'), call(6, 'a'), call(7, 'b')];
      expect(detectLoop(ledger, thresholds({ alternation: 10 }))).toMatchObject({ tool: 'b', count: 4 });
      const tie = [call(1, 'b'), call(2, 'a'), call(3, 'b'), call(4, 'a'), call(5, 'a'), call(6, 'b')];
      expect(detectLoop(tie, thresholds())).toMatchObject({ tool: 'b', count: 3 });
    });
  });

  describe('alternation', () => {
    // A high repeatedCall threshold keeps the repetition inside an alternation from being reported first.
    const alternationOnly = thresholds({ repeatedCall: 10 });

    it('reports exactly the threshold number of full A→B cycles', () => {
      const ledger = [call(1, 'a'), call(2, 'b'), call(3, 'a'), call(4, 'b'), call(5, 'a'), call(6, 'b')];
      expect(detectLoop(ledger, alternationOnly)).toEqual({ kind: 'alternation', tools: ['a', 'b'], cycles: 3, turns: [1, 2, 3, 4, 5, 6] });
    });

    it('stays quiet one cycle below the threshold', () => {
      const ledger = [call(1, 'a'), call(2, 'b'), call(3, 'a'), call(4, 'b'), call(5, 'a')];
      expect(detectLoop(ledger, alternationOnly)).toBeUndefined();
    });

    it('counts only whole cycles taken from the end', () => {
      const ledger = [call(1, 'a'), call(2, 'b'), call(3, 'a'), call(4, 'b'), call(5, 'a'), call(6, 'b'), call(7, 'a')];
      expect(detectLoop(ledger, alternationOnly)).toEqual({ kind: 'alternation', tools: ['b', 'a'], cycles: 3, turns: [2, 3, 4, 5, 6, 7] });
    });

    it('requires the alternation to reach the end of the window', () => {
      const ledger = [call(1, 'a'), call(2, 'b'), call(3, 'a'), call(4, 'b'), call(5, 'a'), call(6, 'b'), call(7, 'c')];
      expect(detectLoop(ledger, alternationOnly)).toBeUndefined();
    });

    it('is not fooled by two tools used often without strict alternation', () => {
      const ledger = [call(1, 'a'), call(2, 'a'), call(3, 'b'), call(4, 'b'), call(5, 'a'), call(6, 'b'), call(7, 'b'), call(8, 'a')];
      expect(detectLoop(ledger, alternationOnly)).toBeUndefined();
    });

    it('compares calls, not tools: the same tool with two argument sets alternates', () => {
      const ledger = [1, 2, 3, 4, 5, 6].map((turn) => call(turn, 'files_read', { path: turn % 2 ? 'a' : 'b' }));
      expect(detectLoop(ledger, alternationOnly)).toMatchObject({ kind: 'alternation', tools: ['files_read', 'files_read'], cycles: 3 });
      const varied = [1, 2, 3, 4, 5, 6].map((turn) => call(turn, turn % 2 ? 'a' : 'b', { n: turn }));
      expect(detectLoop(varied, alternationOnly)).toBeUndefined();
    });

    it('is reported after a repeated call when both hold', () => {
      const ledger = [call(1, 'a'), call(2, 'b'), call(3, 'a'), call(4, 'b'), call(5, 'a'), call(6, 'b')];
      expect(detectLoop(ledger, thresholds())?.kind).toBe('repeated_call');
    });
  });

  describe('turns without progress', () => {
    // Each turn calls a new query, so only the results repeat.
    const stalled = (turn: number, digest: string) => call(turn, 'search', { q: `q${turn}` }, digest);

    it('reports exactly the threshold number of consecutive turns that only return seen results', () => {
      const ledger = [stalled(1, 'x'), stalled(2, 'x'), stalled(3, 'x'), stalled(4, 'x'), stalled(5, 'x')];
      expect(detectLoop(ledger, thresholds())).toEqual({ kind: 'no_progress', turns: [2, 3, 4, 5] });
    });

    it('stays quiet one turn below the threshold', () => {
      const ledger = [stalled(1, 'x'), stalled(2, 'x'), stalled(3, 'x'), stalled(4, 'x')];
      expect(detectLoop(ledger, thresholds())).toBeUndefined();
    });

    it('resets when a turn in between makes progress', () => {
      const ledger = [stalled(1, 'x'), stalled(2, 'x'), stalled(3, 'x'), stalled(4, 'new'), stalled(5, 'x'), stalled(6, 'x')];
      expect(detectLoop(ledger, thresholds())).toBeUndefined();
    });

    it('counts a turn as progress when any of its entries returns something new', () => {
      const ledger = [stalled(1, 'x'), stalled(2, 'x'), stalled(3, 'x'), stalled(4, 'x'), call(5, 'other', {}, 'x'), call(5, 'more', {}, 'fresh')];
      expect(detectLoop(ledger, thresholds())).toBeUndefined();
    });

    it('counts an entry without a digest as progress', () => {
      const ledger = [stalled(1, 'x'), stalled(2, 'x'), stalled(3, 'x'), stalled(4, 'x'), call(5, 'other', {}, undefined)];
      expect(detectLoop(ledger, thresholds())).toBeUndefined();
    });

    it('does not count results seen earlier in the same turn', () => {
      const ledger = [call(1, 'a', {}, 'x'), call(1, 'b', {}, 'x'), stalled(2, 'x'), stalled(3, 'x')];
      expect(detectLoop(ledger, thresholds({ turnsWithoutProgress: 3 }))).toBeUndefined();
      expect(detectLoop(ledger, thresholds({ turnsWithoutProgress: 2 }))).toEqual({ kind: 'no_progress', turns: [2, 3] });
    });

    it('breaks the run at a turn missing from the ledger', () => {
      const ledger = [stalled(1, 'x'), stalled(2, 'x'), stalled(3, 'x'), stalled(5, 'x'), stalled(6, 'x')];
      expect(detectLoop(ledger, thresholds({ turnsWithoutProgress: 3 }))).toBeUndefined();
    });

    it('is reported after a repeated call and an alternation', () => {
      const ledger = [call(1, 'a', {}, 'x'), call(2, 'b', {}, 'x'), call(3, 'a', {}, 'x'), call(4, 'b', {}, 'x'), call(5, 'a', {}, 'x'), call(6, 'b', {}, 'x')];
      expect(detectLoop(ledger, thresholds({ turnsWithoutProgress: 2 }))?.kind).toBe('repeated_call');
      expect(detectLoop(ledger, thresholds({ turnsWithoutProgress: 2, repeatedCall: 10 }))?.kind).toBe('alternation');
      expect(detectLoop(ledger, thresholds({ turnsWithoutProgress: 2, repeatedCall: 10, alternation: 10 }))?.kind).toBe('no_progress');
    });
  });

  describe('sinceTurn', () => {
    it('excludes older entries from repeated calls', () => {
      const ledger = [call(1, 'ping'), call(2, 'ping'), call(3, 'ping'), call(4, 'ping')];
      expect(detectLoop(ledger, thresholds(), 2)).toMatchObject({ kind: 'repeated_call', count: 3, turns: [2, 3, 4] });
      expect(detectLoop(ledger, thresholds(), 3)).toBeUndefined();
    });

    it('excludes older entries from alternation', () => {
      const ledger = [call(1, 'a'), call(2, 'b'), call(3, 'a'), call(4, 'b'), call(5, 'a'), call(6, 'b')];
      expect(detectLoop(ledger, thresholds({ repeatedCall: 10 }), 3)).toBeUndefined();
    });

    it('excludes older entries, and their results, from turns without progress', () => {
      const ledger = [1, 2, 3, 4, 5, 6].map((turn) => call(turn, 'search', { q: turn }, 'x'));
      expect(detectLoop(ledger, thresholds(), 2)).toEqual({ kind: 'no_progress', turns: [3, 4, 5, 6] });
      expect(detectLoop(ledger, thresholds(), 3)).toBeUndefined();
    });
  });

  it('returns undefined for an empty ledger', () => {
    expect(detectLoop([], thresholds())).toBeUndefined();
  });

  it('returns undefined for a healthy session of 20 distinct calls', () => {
    const tools = ['files_read', 'files_write', 'search', 'math_add'];
    const ledger = Array.from({ length: 20 }, (_, i) => call(Math.floor(i / 2) + 1, tools[i % tools.length]!, { n: i }, `result-${i}`));
    expect(detectLoop(ledger, thresholds())).toBeUndefined();
    expect(detectLoop(ledger, thresholds({ repeatedCall: 2, alternation: 2, turnsWithoutProgress: 2, window: 20 }))).toBeUndefined();
  });

  it('does not change the ledger it reads', () => {
    const ledger = [call(2, 'b', { y: 1, x: 2 }), call(1, 'a'), call(2, 'b', { x: 2, y: 1 }), call(3, 'b', { x: 2, y: 1 })];
    const copy = structuredClone(ledger);
    detectLoop(ledger, thresholds(), 1);
    expect(ledger).toEqual(copy);
  });
});

describe('describeLoop', () => {
  it('describes a repeated call with its arguments and turns', () => {
    expect(
      describeLoop({ kind: 'repeated_call', tool: 'files_read', arguments: { path: 'a.txt' }, count: 3, turns: [2, 3, 4], sameResult: true }),
    ).toBe('You called files_read with {"path":"a.txt"} 3 times (turns 2, 3, 4) with the same result.');
    expect(describeLoop({ kind: 'repeated_call', tool: 'ping', arguments: {}, count: 3, turns: [7] })).toBe('You called ping with {} 3 times (turn 7).');
  });

  it('shortens long arguments', () => {
    const sentence = describeLoop({ kind: 'repeated_call', tool: 'files_write', arguments: { text: 'x'.repeat(1000) }, count: 3, turns: [1, 2, 3] });
    expect(sentence.length).toBeLessThan(300);
    expect(sentence).toContain('…');
  });

  it('describes an alternation', () => {
    expect(describeLoop({ kind: 'alternation', tools: ['files_read', 'files_write'], cycles: 3, turns: [1, 2, 3, 4, 5, 6] })).toBe(
      'You went back and forth between files_read and files_write 3 times (turns 1, 2, 3, 4, 5, 6) without getting anywhere.',
    );
    expect(describeLoop({ kind: 'alternation', tools: ['files_read', 'files_read'], cycles: 3, turns: [1, 2] })).toBe(
      'You went back and forth between two calls to files_read 3 times (turns 1, 2) without getting anywhere.',
    );
  });

  it('describes turns without progress', () => {
    expect(describeLoop({ kind: 'no_progress', turns: [5, 6, 7, 8] })).toBe(
      'Your last 4 turns (turns 5, 6, 7, 8) only returned results you had already seen.',
    );
  });

  it('describes whatever detectLoop reports as one sentence', () => {
    const evidence = detectLoop([call(1, 'ping'), call(2, 'ping'), call(3, 'ping')], thresholds());
    expect(evidence).toBeDefined();
    const sentence = describeLoop(evidence!);
    expect(sentence).toMatch(/^You .*\.$/);
    expect(sentence.split('. ')).toHaveLength(1);
  });
});

describe('detectLoop on random ledgers', () => {

  // Small pools so repeats, alternations and stalls are common; odd values check robustness.
  const toolPool = ['a', 'b', 'c', 'files_read', ''];
  const argPool: unknown[] = [{}, { x: 1 }, { x: 1, y: [1, { z: 2 }] }, { y: [1, { z: 2 }], x: 1 }, [1, 2], null, undefined, 'text', 3, { n: Number.NaN }];
  const digestPool = ['d1', 'd2', 'd3', undefined];

  function randomLedger(next: () => number): LoopLedgerEntry[] {
    const ledger: LoopLedgerEntry[] = [];
    let turn = 1;
    const length = int(next, 0, 30);
    for (let i = 0; i < length; i += 1) {
      if (next() < 0.5) turn += next() < 0.9 ? 1 : 2;
      const digest = pick(next, digestPool);
      const entry: LoopLedgerEntry = { turn, tool: pick(next, toolPool), arguments: pick(next, argPool) };
      if (digest !== undefined) entry.resultDigest = digest;
      ledger.push(entry);
    }
    // Strict alternation is rare by chance, so half the ledgers end in a few A,B pairs.
    if (next() < 0.5) {
      const pair = [
        { tool: pick(next, toolPool), arguments: pick(next, argPool) },
        { tool: pick(next, toolPool), arguments: pick(next, argPool) },
      ];
      const pairs = int(next, 1, 5);
      for (let i = 0; i < pairs * 2; i += 1) ledger.push({ turn: (turn += 1), ...pair[i % 2]! });
    }
    return ledger;
  }

  function randomThresholds(next: () => number): LoopThresholds {
    return thresholds({ repeatedCall: int(next, 2, 5), alternation: int(next, 2, 4), turnsWithoutProgress: int(next, 2, 5), window: int(next, 2, 16) });
  }

  const seeds = Array.from({ length: 500 }, (_, i) => i + 1);

  it('never throws, and every report is well formed and describable', () => {
    for (const seed of seeds) {
      const next = seededRandom(seed);
      const ledger = randomLedger(next);
      const limits = randomThresholds(next);
      const sinceTurn = next() < 0.3 ? int(next, 1, 10) : undefined;
      const evidence = detectLoop(ledger, limits, sinceTurn);
      if (!evidence) continue;
      expect(evidence.turns.length, `seed ${seed}`).toBeGreaterThan(0);
      expect([...evidence.turns].sort((a, b) => a - b), `seed ${seed}`).toEqual(evidence.turns);
      expect(new Set(evidence.turns).size, `seed ${seed}`).toBe(evidence.turns.length);
      if (sinceTurn !== undefined) expect(Math.min(...evidence.turns), `seed ${seed}`).toBeGreaterThanOrEqual(sinceTurn);
      expect(describeLoop(evidence), `seed ${seed}`).toMatch(/^You.*\.$/);
    }
  });

  it('names a repeated call only when it really appears at least the threshold number of times in the window', () => {
    let reported = 0;
    for (const seed of seeds) {
      const next = seededRandom(seed);
      const ledger = randomLedger(next);
      const limits = randomThresholds(next);
      const evidence = detectLoop(ledger, limits);
      if (evidence?.kind !== 'repeated_call') continue;
      reported += 1;
      const window = ledger.slice(-limits.window);
      const same = window.filter(
        (entry) => entry.tool === evidence.tool && canonicalArguments(entry.arguments) === canonicalArguments(evidence.arguments),
      );
      expect(same.length, `seed ${seed}`).toBe(evidence.count);
      expect(evidence.count, `seed ${seed}`).toBeGreaterThanOrEqual(limits.repeatedCall);
      expect(evidence.turns, `seed ${seed}`).toEqual([...new Set(same.map((entry) => entry.turn))]);
    }
    // The generator must actually exercise the property.
    expect(reported).toBeGreaterThan(20);
  });

  it('reports an alternation only where the window really ends in that many strict cycles', () => {
    let reported = 0;
    for (const seed of seeds) {
      const next = seededRandom(seed);
      const ledger = randomLedger(next);
      const limits = thresholds({ ...randomThresholds(next), repeatedCall: 100 });
      const evidence = detectLoop(ledger, limits);
      if (evidence?.kind !== 'alternation') continue;
      reported += 1;
      const tail = ledger.slice(-evidence.cycles * 2).map((entry) => `${entry.tool} ${canonicalArguments(entry.arguments)}`);
      expect(evidence.cycles, `seed ${seed}`).toBeGreaterThanOrEqual(limits.alternation);
      expect(evidence.cycles * 2, `seed ${seed}`).toBeLessThanOrEqual(limits.window);
      expect(tail[0], `seed ${seed}`).not.toBe(tail[1]);
      tail.forEach((key, i) => expect(key, `seed ${seed}`).toBe(tail[i % 2]));
    }
    expect(reported).toBeGreaterThan(0);
  });

  it('gives the same answer for the same ledger', () => {
    for (const seed of seeds.slice(0, 50)) {
      const a = seededRandom(seed);
      const b = seededRandom(seed);
      expect(detectLoop(randomLedger(a), randomThresholds(a))).toEqual(detectLoop(randomLedger(b), randomThresholds(b)));
    }
  });
});
