import { describe, expect, it } from 'vitest';
import { usdText } from '../../evaluation/usdText.ts';

describe('usdText', () => {
  it('writes cents with four decimals at most and amounts under a cent with six, trailing zeros dropped', () => {
    expect(usdText(1.5)).toBe('$1.50');
    expect(usdText(0.0132)).toBe('$0.0132');
    expect(usdText(0.000363)).toBe('$0.000363');
    expect(usdText(0)).toBe('$0.00');
  });

  it('puts the sign of a negative difference before the dollar, and reads a rounding error of zero as zero', () => {
    expect(usdText(-0.0012)).toBe('-$0.0012');
    expect(usdText(-1e-18)).toBe('$0.00');
  });
});
