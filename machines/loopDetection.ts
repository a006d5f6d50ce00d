import * as z from 'zod';
import type { LedgerEntry } from './ledger.ts';

/** When the session calls an agent's behaviour a loop, configured per agent. */
export const LoopThresholds = z.object({
  /** The same tool with the same arguments this many times in the window. */
  repeatedCall: z.number().int().min(2).default(3),
  /** A,B,A,B,… at the end of the window: this many full A→B cycles. */
  alternation: z.number().int().min(2).default(3),
  /** Consecutive turns, at the end of the ledger, whose every result was already seen in an earlier turn. */
  turnsWithoutProgress: z.number().int().min(2).default(4),
  /** How many most recent ledger entries the repeat and alternation checks look at. */
  window: z.number().int().min(2).default(12),
});
export type LoopThresholds = z.infer<typeof LoopThresholds>;
export type LoopThresholdsInput = z.input<typeof LoopThresholds>;

/**
 * What loop detection reads of a ledger entry. `resultDigest` is a digest of the tool's result or
 * error, computed by the session when it records the entry; an entry without one counts as progress.
 */
export type LoopLedgerEntry = Pick<LedgerEntry, 'turn' | 'tool' | 'arguments'> & { resultDigest?: string };

/**
 * Why the session believes the agent is going in circles. `turns` lists the turns involved, ascending
 * and without duplicates. `sameResult` on a repeated call is true when every repetition returned the
 * same known result digest.
 */
export type LoopEvidence =
  | { kind: 'repeated_call'; tool: string; arguments: unknown; count: number; turns: number[]; sameResult?: boolean }
  | { kind: 'alternation'; tools: [string, string]; cycles: number; turns: number[] }
  | { kind: 'no_progress'; turns: number[] };

/**
 * Stable JSON for a call's arguments: object keys sorted recursively, so `{"a":1,"b":2}` and
 * `{"b":2,"a":1}` are the same call. Follows JSON.stringify for plain data (undefined, functions and
 * symbols are dropped from objects and become null in arrays and at the top level; non-finite numbers
 * become null); bigints become strings and a circular reference becomes "[Circular]". Never throws.
 */
export function canonicalArguments(args: unknown): string {
  return canonical(args, new Set()) ?? 'null';
}

function canonical(value: unknown, ancestors: Set<object>): string | undefined {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return JSON.stringify(value.toString());
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return 'null';
  const object = value as object;
  if (ancestors.has(object)) return '"[Circular]"';
  ancestors.add(object);
  let text: string;
  if (Array.isArray(object)) {
    text = `[${object.map((item: unknown) => canonical(item, ancestors) ?? 'null').join(',')}]`;
  } else {
    const record = object as Record<string, unknown>;
    const members: string[] = [];
    for (const key of Object.keys(record).sort()) {
      const member = canonical(record[key], ancestors);
      if (member !== undefined) members.push(`${JSON.stringify(key)}:${member}`);
    }
    text = `{${members.join(',')}}`;
  }
  ancestors.delete(object);
  return text;
}

/**
 * The loop the ledger shows, or undefined. Pure and deterministic; the ledger is read in order
 * (oldest first). Only entries with `turn >= sinceTurn` are read at all, so the session can ignore
 * what happened before it last intervened. Calls are compared by tool name and canonical arguments;
 * rejected calls count like any other. When several kinds hold, a repeated call is reported first,
 * then an alternation, then turns without progress.
 */
export function detectLoop(
  ledger: readonly LoopLedgerEntry[],
  thresholds: LoopThresholds,
  sinceTurn?: number,
): LoopEvidence | undefined {
  const entries = sinceTurn === undefined ? ledger : ledger.filter((entry) => entry.turn >= sinceTurn);
  const window = entries.slice(-thresholds.window).map((entry) => ({ entry, key: callKey(entry) }));
  return (
    repeatedCall(window, thresholds.repeatedCall) ??
    alternation(window, thresholds.alternation) ??
    noProgress(entries, thresholds.turnsWithoutProgress)
  );
}

interface KeyedEntry {
  entry: LoopLedgerEntry;
  key: string;
}

function callKey(entry: LoopLedgerEntry): string {
  // The tool name is JSON-quoted so no tool name can run into the arguments.
  return `${JSON.stringify(entry.tool)} ${canonicalArguments(entry.arguments)}`;
}

/** The most repeated call in the window at or above the threshold; ties go to the call seen first. */
function repeatedCall(window: readonly KeyedEntry[], threshold: number): LoopEvidence | undefined {
  const groups = new Map<string, LoopLedgerEntry[]>();
  for (const { entry, key } of window) {
    const group = groups.get(key);
    if (group) group.push(entry);
    else groups.set(key, [entry]);
  }
  let chosen: LoopLedgerEntry[] | undefined;
  for (const group of groups.values()) {
    if (group.length >= threshold && (!chosen || group.length > chosen.length)) chosen = group;
  }
  if (!chosen) return undefined;
  const first = chosen[0]!;
  const digest = first.resultDigest;
  return {
    kind: 'repeated_call',
    tool: first.tool,
    arguments: first.arguments,
    count: chosen.length,
    turns: turnsOf(chosen),
    sameResult: digest !== undefined && chosen.every((entry) => entry.resultDigest === digest),
  };
}

/**
 * Strict alternation of two distinct calls at the end of the window: every entry differs from the one
 * before it and equals the one two before it. Only whole cycles count, taken from the end.
 */
function alternation(window: readonly KeyedEntry[], threshold: number): LoopEvidence | undefined {
  const last = window.length - 1;
  if (last < 1 || window[last]!.key === window[last - 1]!.key) return undefined;
  let length = 2;
  while (length < window.length) {
    const i = window.length - 1 - length;
    if (window[i]!.key !== window[i + 2]!.key) break;
    length += 1;
  }
  const cycles = Math.floor(length / 2);
  if (cycles < threshold) return undefined;
  const involved = window.slice(window.length - cycles * 2).map(({ entry }) => entry);
  return {
    kind: 'alternation',
    tools: [involved[0]!.tool, involved[1]!.tool],
    cycles,
    turns: turnsOf(involved),
  };
}

/**
 * The run of turns at the end of the ledger in which every entry returned a digest already returned in
 * an earlier turn. A turn number missing from the ledger breaks the run: nothing is known about it.
 */
function noProgress(entries: readonly LoopLedgerEntry[], threshold: number): LoopEvidence | undefined {
  const byTurn = new Map<number, LoopLedgerEntry[]>();
  for (const entry of entries) {
    const group = byTurn.get(entry.turn);
    if (group) group.push(entry);
    else byTurn.set(entry.turn, [entry]);
  }
  const turns = [...byTurn.keys()].sort((a, b) => a - b);
  const seen = new Set<string>();
  let run: number[] = [];
  for (const turn of turns) {
    const group = byTurn.get(turn)!;
    const stalled = group.every((entry) => entry.resultDigest !== undefined && seen.has(entry.resultDigest));
    const continues = run.length > 0 && run[run.length - 1] === turn - 1;
    run = stalled ? (continues ? [...run, turn] : [turn]) : [];
    for (const entry of group) if (entry.resultDigest !== undefined) seen.add(entry.resultDigest);
  }
  return run.length >= threshold ? { kind: 'no_progress', turns: run } : undefined;
}

function turnsOf(entries: readonly LoopLedgerEntry[]): number[] {
  return [...new Set(entries.map((entry) => entry.turn))].sort((a, b) => a - b);
}

const maxArgumentsInDescription = 200;

/** One sentence, addressed to the model, that says what the loop is; also fit for logs and UIs. */
export function describeLoop(evidence: LoopEvidence): string {
  const turns = describeTurns(evidence.turns);
  switch (evidence.kind) {
    case 'repeated_call': {
      let args = canonicalArguments(evidence.arguments);
      if (args.length > maxArgumentsInDescription) args = `${args.slice(0, maxArgumentsInDescription)}…`;
      const same = evidence.sameResult ? ' with the same result' : '';
      return `You called ${evidence.tool} with ${args} ${evidence.count} times (${turns})${same}.`;
    }
    case 'alternation': {
      const [a, b] = evidence.tools;
      const between = a === b ? `two calls to ${a}` : `${a} and ${b}`;
      return `You went back and forth between ${between} ${evidence.cycles} times (${turns}) without getting anywhere.`;
    }
    case 'no_progress':
      return `Your last ${evidence.turns.length} turns (${turns}) only returned results you had already seen.`;
  }
}

function describeTurns(turns: readonly number[]): string {
  return `${turns.length === 1 ? 'turn' : 'turns'} ${turns.join(', ')}`;
}
