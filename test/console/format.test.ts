import { describe, expect, it } from 'vitest';
import { age, clock, count, duration, fullDate, oneLine, plural, prettyJson, usd } from '../../console/app/src/format.ts';

describe('usd', () => {
  it('writes dollars to four decimals, rounding what is below', () => {
    expect(usd(0.0075)).toBe('$0.0075');
    expect(usd(0.00004)).toBe('$0.0000');
    expect(usd(12)).toBe('$12.0000');
  });
});

describe('count and plural', () => {
  it('separates thousands and drops fractions', () => {
    expect(count(1234567)).toBe('1,234,567');
    expect(count(999.6)).toBe('1,000');
  });

  it('adds an s to every count but one', () => {
    expect(plural(1, 'event')).toBe('1 event');
    expect(plural(0, 'event')).toBe('0 events');
    expect(plural(2500, 'token')).toBe('2,500 tokens');
  });
});

describe('age', () => {
  it('writes seconds, then minutes, then hours and minutes, then days and hours', () => {
    expect(age(59_999)).toBe('59 s');
    expect(age(60_000)).toBe('1 min');
    expect(age(59 * 60_000 + 59_999)).toBe('59 min');
    expect(age(2 * 3_600_000 + 5 * 60_000)).toBe('2 h 5 min');
    expect(age(24 * 3_600_000)).toBe('1 d 0 h');
    expect(age(3 * 86_400_000 + 4 * 3_600_000 + 59 * 60_000)).toBe('3 d 4 h');
  });

  it('writes a negative age (a clock behind the server’s) as none', () => {
    expect(age(-5000)).toBe('0 s');
  });
});

describe('duration', () => {
  it('writes milliseconds below a second, seconds above with fewer decimals past ten', () => {
    expect(duration(812.4)).toBe('812 ms');
    expect(duration(1000)).toBe('1.00 s');
    expect(duration(2345)).toBe('2.35 s');
    expect(duration(12_345)).toBe('12.3 s');
  });
});

describe('clock and fullDate', () => {
  it('write a timestamp as the local time of day and as date and time', () => {
    const at = new Date(2025, 0, 15, 9, 5, 7);

    expect(clock(at.toISOString())).toBe('09:05:07');
    expect(clock(at.getTime())).toBe('09:05:07');
    expect(fullDate(at.toISOString())).toBe('15/01/2025, 09:05:07');
  });

  it('give back text that is not a date as it is, and nothing for anything else', () => {
    expect(clock('soon')).toBe('soon');
    expect(fullDate('soon')).toBe('soon');
    expect(clock(undefined)).toBe('');
    expect(fullDate(null)).toBe('');
    expect(clock({ at: 1 })).toBe('');
  });
});

describe('prettyJson', () => {
  it('indents a payload, and leaves a string as it is', () => {
    expect(prettyJson({ a: [1] })).toBe('{\n  "a": [\n    1\n  ]\n}');
    expect(prettyJson('{"raw": true}')).toBe('{"raw": true}');
  });

  it('falls back to text for what JSON cannot write', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;

    expect(prettyJson(undefined)).toBe('undefined');
    expect(prettyJson(cyclic)).toBe('[object Object]');
    expect(prettyJson(10n)).toBe('10');
  });
});

describe('oneLine', () => {
  it('puts a payload on one line, whitespace collapsed', () => {
    expect(oneLine({ q: 'a\nb' })).toBe('{"q":"a\\nb"}');
    expect(oneLine('first line\n\n  second\tline')).toBe('first line second line');
  });

  it('cuts at the limit with an ellipsis, the result no longer than the limit', () => {
    const cut = oneLine('x'.repeat(200), 20);

    expect(cut).toBe(`${'x'.repeat(19)}…`);
    expect(cut).toHaveLength(20);
    expect(oneLine('x'.repeat(20), 20)).toBe('x'.repeat(20));
    expect(oneLine('y'.repeat(161))).toHaveLength(160);
  });

  it('falls back to text for what JSON cannot write', () => {
    expect(oneLine(undefined)).toBe('undefined');
    expect(oneLine(10n)).toBe('10');
  });
});
