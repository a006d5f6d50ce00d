import * as z from 'zod';

export const ResultShapingLimits = z.object({
  /** Results whose JSON is larger than this reach the model as a summary. */
  maxBytes: z.number().int().positive().default(16_384),
  /** Items of each array shown in the summary's preview. */
  previewItems: z.number().int().min(1).default(5),
  /** Characters of each string shown in the preview. */
  previewStringChars: z.number().int().min(16).default(300),
});
export type ResultShapingLimits = z.infer<typeof ResultShapingLimits>;

/** Where the summary left something out: the array or string at `path`, `shown` of `total`. */
export interface Omission {
  path: string;
  total: number;
  shown: number;
}

/** What the model reads instead of a result too large to send. */
export interface ResultSummary {
  truncated: true;
  callId: string;
  bytes: number;
  shape: string;
  preview: unknown;
  omitted: Omission[];
  note: string;
}

const encoder = new TextEncoder();
export const jsonBytes = (value: unknown): number => encoder.encode(JSON.stringify(value) ?? 'null').length;

/** A one-line description of a value's structure: `object { rows: array(10000) of object { id: number } }`. */
export function shapeOf(value: unknown, depth = 0): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    if (value.length === 0) return 'array(0)';
    return depth >= 3 ? `array(${value.length})` : `array(${value.length}) of ${shapeOf(value[0], depth + 1)}`;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (depth >= 3) return `object(${entries.length} keys)`;
    const shown = entries.slice(0, 12).map(([k, v]) => `${k}: ${shapeOf(v, depth + 1)}`);
    return `object { ${shown.join(', ')}${entries.length > 12 ? `, … ${entries.length - 12} more keys` : ''} }`;
  }
  if (typeof value === 'string') return `string(${value.length})`;
  return typeof value;
}

function preview(value: unknown, limits: ResultShapingLimits, path: string, omitted: Omission[]): unknown {
  if (Array.isArray(value)) {
    if (value.length > limits.previewItems) omitted.push({ path: path || '(result)', total: value.length, shown: limits.previewItems });
    return value.slice(0, limits.previewItems).map((item, i) => preview(item, limits, `${path}[${i}]`, omitted));
  }
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, preview(v, limits, path ? `${path}.${k}` : k, omitted)]),
    );
  }
  if (typeof value === 'string' && value.length > limits.previewStringChars) {
    omitted.push({ path: path || '(result)', total: value.length, shown: limits.previewStringChars });
    return `${value.slice(0, limits.previewStringChars)}…`;
  }
  return value;
}

/**
 * The result itself when it is small enough; otherwise a summary: its size and shape, a preview
 * with every array cut to its first items and long strings shortened, and exactly what was left
 * out, so the model knows what it has not seen and how to get more (`results_fetch`).
 */
export function shapeToolResult(callId: string, result: unknown, limits: ResultShapingLimits, fetchable: boolean): unknown {
  const bytes = jsonBytes(result);
  if (bytes <= limits.maxBytes) return result;
  const omitted: Omission[] = [];
  let shownPreview = preview(result, limits, '', omitted);
  // Wide objects can stay large even with short arrays: then the shape has to do.
  if (jsonBytes(shownPreview) > limits.maxBytes) shownPreview = '(too large to preview; see shape)';
  const summary: ResultSummary = {
    truncated: true,
    callId,
    bytes,
    shape: shapeOf(result),
    preview: shownPreview,
    omitted,
    note: fetchable
      ? `The result (${bytes} bytes) is too large to show in full. Call results_fetch with callId "${callId}", a path (e.g. "${omitted[0]?.path ?? ''}") and an offset to read more.`
      : `The result (${bytes} bytes) is too large to show in full, and could not be kept for fetching.`,
  };
  return summary;
}
