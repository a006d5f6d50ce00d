/**
 * The JSON paths of `expect.output.json`: `$` (the whole value) followed by `.key` for a property
 * (letters, digits, `_`, `$`, `-`), `[N]` for an array index, or `["key"]` for a property with any
 * other characters (JSON string escapes allowed). `$.items[0].total`, `$["unit price"]`. No
 * wildcards, filters or slices: a check names one value.
 */
export type JsonPathSegment = string | number;

const segmentPattern = /\.([A-Za-z0-9_$-]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/y;

/** The segments of `path`, or undefined when it is not a path of the syntax above. */
export function parseJsonPath(path: string): JsonPathSegment[] | undefined {
  if (!path.startsWith('$')) return undefined;
  const segments: JsonPathSegment[] = [];
  segmentPattern.lastIndex = 1;
  while (segmentPattern.lastIndex < path.length) {
    const match = segmentPattern.exec(path);
    if (match === null) return undefined;
    const [, key, index, quoted] = match;
    if (key !== undefined) segments.push(key);
    else if (index !== undefined) segments.push(Number(index));
    else if (quoted !== undefined) {
      try {
        segments.push(String(JSON.parse(quoted)));
      } catch {
        return undefined;
      }
    }
  }
  return segments;
}

/**
 * The value `segments` name inside `value`, or `found: false`. An index reads only arrays and a key
 * only objects (an own property, never the prototype's), so `$.length` of an array is not found.
 */
export function valueAtJsonPath(value: unknown, segments: readonly JsonPathSegment[]): { found: true; value: unknown } | { found: false } {
  let current = value;
  for (const segment of segments) {
    if (typeof segment === 'number') {
      if (!Array.isArray(current) || segment >= current.length) return { found: false };
      current = current[segment];
    } else {
      if (typeof current !== 'object' || current === null || Array.isArray(current) || !Object.hasOwn(current, segment)) return { found: false };
      current = (current as Record<string, unknown>)[segment];
    }
  }
  return { found: true, value: current };
}
