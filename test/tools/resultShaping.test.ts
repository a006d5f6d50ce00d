import { describe, expect, it } from 'vitest';
import { jsonBytes, ResultShapingLimits, shapeOf, shapeToolResult, type ResultSummary } from '../../tools/resultShaping.ts';

const limits = ResultShapingLimits.parse({ maxBytes: 1_000, previewItems: 2, previewStringChars: 20 });

describe('shapeToolResult', () => {
  it('returns a small result untouched', () => {
    const result = { rows: [1, 2, 3] };
    expect(shapeToolResult('c1', result, limits, true)).toBe(result);
  });

  it('summarises a large result: size, shape, a preview and every omission', () => {
    const result = { columns: ['id', 'note'], rows: Array.from({ length: 500 }, (_, id) => ({ id, note: 'x'.repeat(50) })) };
    const summary = shapeToolResult('c1', result, limits, true) as ResultSummary;
    expect(summary).toMatchObject({ truncated: true, callId: 'c1', bytes: jsonBytes(result) });
    expect(summary.shape).toBe('object { columns: array(2) of string(2), rows: array(500) of object { id: number, note: string(50) } }');
    expect(summary.preview).toEqual({ columns: ['id', 'note'], rows: [{ id: 0, note: `${'x'.repeat(20)}…` }, { id: 1, note: `${'x'.repeat(20)}…` }] });
    expect(summary.omitted).toEqual([
      { path: 'rows', total: 500, shown: 2 },
      { path: 'rows[0].note', total: 50, shown: 20 },
      { path: 'rows[1].note', total: 50, shown: 20 },
    ]);
    expect(summary.note).toContain('results_fetch');
    expect(jsonBytes(summary)).toBeLessThan(limits.maxBytes);
  });

  it('says so when the full result could not be kept', () => {
    const summary = shapeToolResult('c1', 'y'.repeat(5_000), limits, false) as ResultSummary;
    expect(summary.note).toContain('could not be kept');
    expect(summary.omitted).toEqual([{ path: '(result)', total: 5_000, shown: 20 }]);
  });

  it('falls back to the shape alone when even the preview is too large', () => {
    const wide = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`key${i}`, i]));
    const summary = shapeToolResult('c1', wide, limits, true) as ResultSummary;
    expect(summary.preview).toBe('(too large to preview; see shape)');
    expect(summary.shape).toContain('… 288 more keys');
  });
});

describe('shapeOf', () => {
  it('describes nested values to a bounded depth', () => {
    expect(shapeOf([[[[1]]]])).toBe('array(1) of array(1) of array(1) of array(1)');
    expect(shapeOf(null)).toBe('null');
    expect(shapeOf([])).toBe('array(0)');
  });
});
