import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, type Pair, type YAMLMap } from 'yaml';
import type { DatasetProblem } from './datasetError.ts';

/** One case as the file holds it, not yet validated, with a way back to its lines. */
export interface RawCase {
  value: unknown;
  /** The line the case starts on. */
  line: number | undefined;
  /**
   * The line of the field at `path` inside the case (of its nearest ancestor present in the file
   * when the field is missing), or of the key `unknownKey` of the object at `path`.
   */
  lineAt(path: readonly PropertyKey[], unknownKey?: string): number | undefined;
}

/** The cases a dataset file holds, and what kept any of them from being read. */
export interface DatasetText {
  cases: RawCase[];
  problems: DatasetProblem[];
}

/**
 * Reads the text of a dataset file: `.jsonl` one case per non-empty line, anything else YAML (a
 * list of cases, or a mapping whose only key is `cases`). A syntax error keeps the whole file of a
 * YAML dataset out (its structure is unknown past it), only its own line of a JSONL one.
 */
export function parseDatasetText(file: string, text: string): DatasetText {
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  return file.endsWith('.jsonl') ? parseJsonLines(file, source) : parseYaml(file, source);
}

function parseJsonLines(file: string, text: string): DatasetText {
  const cases: RawCase[] = [];
  const problems: DatasetProblem[] = [];
  text.split(/\r?\n/).forEach((content, index) => {
    if (content.trim() === '') return;
    const line = index + 1;
    try {
      cases.push({ value: JSON.parse(content), line, lineAt: () => line });
    } catch (error) {
      problems.push({ file, line, message: `not valid JSON: ${error instanceof Error ? error.message : String(error)}` });
    }
  });
  if (cases.length === 0 && problems.length === 0) problems.push({ file, message: 'the file holds no cases' });
  return { cases, problems };
}

function parseYaml(file: string, text: string): DatasetText {
  const lineCounter = new LineCounter();
  // prettyErrors off: its messages carry a multi-line excerpt; the problem names the line instead.
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  const lineOf = (offset: number) => lineCounter.linePos(offset).line;
  if (document.errors.length > 0) {
    return { cases: [], problems: document.errors.map((error) => ({ file, line: lineOf(error.pos[0]), message: `not valid YAML: ${error.message}` })) };
  }
  const nodeLine = (node: unknown) => (isNode(node) && node.range ? lineOf(node.range[0]) : undefined);
  const keyLine = (pair: Pair) => nodeLine(pair.key) ?? nodeLine(pair.value);

  let list: unknown = document.contents;
  const problems: DatasetProblem[] = [];
  if (isMap(list)) {
    const map: YAMLMap = list;
    for (const pair of map.items) {
      if (keyName(pair) !== 'cases') problems.push({ file, line: keyLine(pair), field: keyName(pair), message: 'unknown field (a dataset file is a list of cases, or a mapping with only `cases`)' });
    }
    list = map.items.find((pair) => keyName(pair) === 'cases')?.value;
  }
  if (list === null || list === undefined || (isScalar(list) && list.value === null)) {
    problems.push({ file, message: 'the file holds no cases' });
    return { cases: [], problems };
  }
  if (!isSeq(list)) {
    problems.push({ file, line: nodeLine(list), message: 'expected a list of cases, or a mapping with `cases:` and a list' });
    return { cases: [], problems };
  }

  const cases = list.items.map((item): RawCase => ({
    value: isNode(item) ? item.toJS(document) : item,
    line: nodeLine(item),
    lineAt(path, unknownKey) {
      let node: unknown = item;
      let line = nodeLine(item);
      for (const segment of path) {
        if (isMap(node)) {
          const pair = node.items.find((p) => keyName(p) === String(segment));
          if (pair === undefined) break;
          // A block value starts on the line after its key; the key's line reads better.
          line = keyLine(pair) ?? line;
          node = pair.value;
        } else if (isSeq(node) && typeof segment === 'number' && segment < node.items.length) {
          node = node.items[segment];
          line = nodeLine(node) ?? line;
        } else {
          break;
        }
      }
      if (unknownKey !== undefined && isMap(node)) {
        const pair = node.items.find((p) => keyName(p) === unknownKey);
        if (pair !== undefined) line = keyLine(pair) ?? line;
      }
      return line;
    },
  }));
  return { cases, problems };
}

function keyName(pair: Pair): string {
  return isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
}
