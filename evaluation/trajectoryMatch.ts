import * as z from 'zod';
import type { RunToolCall } from './caseRun.ts';
import { ArgumentMatch, TrajectoryMode, type ExpectedCall, type TrajectoryExpectation } from './evalCase.ts';
import { isRecord, jsonEqual } from './jsonEqual.ts';

/** How a run's tool calls compare with the expected ones. */
export const TrajectoryMatch = z.object({
  /** The trajectory expectation holds in its mode. */
  matched: z.boolean(),
  /** Calls the run made that were paired with an expected one, over the calls it made. */
  precision: z.number().min(0).max(1),
  /** Expected calls paired with one the run made, over the expected calls. */
  recall: z.number().min(0).max(1),
  /** Why it did not match, one sentence each; empty when it did. */
  problems: z.array(z.string()),
});
export type TrajectoryMatch = z.infer<typeof TrajectoryMatch>;

/** A trajectory expectation as written or as parsed (`arguments` defaults to `exact`). */
export type TrajectoryExpectationInput = z.input<typeof TrajectoryExpectation>;

/**
 * Compares the calls a run made with `expected`, in its mode.
 *
 * Rejected calls (status `rejected`) are left out before anything is compared: the model asked and
 * the runtime refused, so the call was not made. Calls are numbered among the ones made.
 *
 * Pairing for precision and recall: in `strict` mode by position (call N with expected call N); in
 * the other modes a maximum one-to-one pairing of expected and made calls that fit each other (same
 * tool, arguments equal in the call's argument mode), so one expected call never accounts for two
 * made ones. Precision is 1 when the run made no call and none was expected, 0 when it made none
 * but some were; recall is 1 when none was expected.
 */
export function matchTrajectory(expected: TrajectoryExpectationInput, actual: readonly RunToolCall[]): TrajectoryMatch {
  const made = actual.filter((call) => call.status !== 'rejected');
  const calls = expected.calls;
  const defaultMode = expected.arguments ?? ArgumentMatch.exact;
  const modeOf = (call: ExpectedCall) => call.match ?? defaultMode;
  const fits = (want: ExpectedCall, call: RunToolCall) => want.tool === call.tool && argumentsMatch(modeOf(want), want.arguments, call.arguments) && inPhase(want, call);
  const describe = (want: ExpectedCall) =>
    `${modeOf(want) === ArgumentMatch.ignore || want.arguments === undefined ? want.tool : callText(want.tool, want.arguments)}${want.phase ? ` in phase ${want.phase}` : ''}`;
  // The argument mode is worth naming only when it is what failed: same tool, a looser mode than exact.
  const hint = (want: ExpectedCall, call: RunToolCall) =>
    !inPhase(want, call) ? ` in phase ${call.phase ?? '(none)'}`
    : want.tool !== call.tool || want.arguments === undefined || modeOf(want) === ArgumentMatch.exact || modeOf(want) === ArgumentMatch.ignore ? '' : ` (arguments compared as ${modeOf(want)})`;

  const problems: string[] = [];
  let paired = 0;
  if (expected.mode === TrajectoryMode.strict) {
    for (let i = 0; i < Math.max(calls.length, made.length); i++) {
      const want = calls[i];
      const call = made[i];
      if (want !== undefined && call !== undefined) {
        if (fits(want, call)) paired++;
        else problems.push(`call ${i + 1}: expected ${describe(want)}, the run called ${callText(call.tool, call.arguments)}${hint(want, call)}`);
      } else if (want !== undefined) {
        problems.push(`call ${i + 1}: expected ${describe(want)}, the run made no more calls`);
      } else if (call !== undefined) {
        problems.push(`call ${i + 1}: the run called ${callText(call.tool, call.arguments)}, beyond the ${calls.length} expected`);
      }
    }
    return { matched: problems.length === 0, ...ratios(paired, calls.length, made.length), problems };
  }

  const pairOfMade = maximumPairing(calls, made, fits);
  paired = pairOfMade.filter((pair) => pair !== undefined).length;
  const unmatchedCalls = calls.filter((_, i) => !pairOfMade.includes(i));
  const spareMade = new Set(made.flatMap((_, i) => (pairOfMade[i] === undefined ? [i] : [])));
  // Missing expected calls are a problem in unordered and superset modes, extra made calls in
  // unordered and subset modes; a missing and an extra call of the same tool are one problem in
  // every mode (a wrong argument), told as such.
  const missingCounts = expected.mode !== TrajectoryMode.subset;
  const extraCounts = expected.mode !== TrajectoryMode.superset;
  for (const want of unmatchedCalls) {
    const partner = [...spareMade].find((i) => made[i]?.tool === want.tool);
    const call = partner === undefined ? undefined : made[partner];
    if (partner !== undefined && call !== undefined) {
      spareMade.delete(partner);
      problems.push(`expected ${describe(want)}, the run called ${callText(call.tool, call.arguments)}${hint(want, call)}`);
    } else if (missingCounts) {
      problems.push(made.some((c) => c.tool === want.tool) ? `expected ${describe(want)} once more than the run called it` : `expected ${describe(want)}, the run never called ${want.tool}`);
    }
  }
  if (extraCounts) {
    for (const i of spareMade) {
      const call = made[i];
      if (call === undefined) continue;
      problems.push(
        calls.some((want) => want.tool === call.tool)
          ? `the run called ${callText(call.tool, call.arguments)} once more than expected`
          : `the run called ${callText(call.tool, call.arguments)}, which is not among the expected calls`,
      );
    }
  }
  return { matched: problems.length === 0, ...ratios(paired, calls.length, made.length), problems };
}

/** Whether a call was made in the phase the expected call names (any of the phases active then); true when it names none. */
function inPhase(want: ExpectedCall, call: RunToolCall): boolean {
  return want.phase === undefined || (call.phase?.split(' › ') ?? []).includes(want.phase);
}

/** Whether a made call's arguments fit the expected ones in `mode` (see ArgumentMatch). */
export function argumentsMatch(mode: ArgumentMatch, expected: Record<string, unknown> | undefined, actual: unknown): boolean {
  if (mode === ArgumentMatch.ignore || expected === undefined) return true;
  if (mode === ArgumentMatch.exact) return jsonEqual(expected, actual);
  if (!isRecord(actual)) return false;
  const [inner, outer] = mode === ArgumentMatch.subset ? [actual, expected] : [expected, actual];
  return Object.keys(inner).every((key) => Object.hasOwn(outer, key) && jsonEqual(inner[key], outer[key]));
}

/**
 * Kuhn's augmenting paths: for each made call, the index of the expected call it is paired with.
 * Maximum, so that a loose expected call (arguments ignored) taking a made call first cannot leave
 * a stricter one unpaired when a pairing of both exists. Deterministic: tries calls in order.
 */
function maximumPairing<E, M>(expected: readonly E[], made: readonly M[], fits: (want: E, call: M) => boolean): Array<number | undefined> {
  const pairOfMade: Array<number | undefined> = made.map(() => undefined);
  const assign = (wantIndex: number, seen: boolean[]): boolean => {
    const want = expected[wantIndex];
    if (want === undefined) return false;
    for (let i = 0; i < made.length; i++) {
      const call = made[i];
      if (seen[i] || call === undefined || !fits(want, call)) continue;
      seen[i] = true;
      const previous = pairOfMade[i];
      if (previous === undefined || assign(previous, seen)) {
        pairOfMade[i] = wantIndex;
        return true;
      }
    }
    return false;
  };
  expected.forEach((_, i) => assign(i, made.map(() => false)));
  return pairOfMade;
}

function ratios(paired: number, expected: number, made: number): { precision: number; recall: number } {
  return {
    precision: made === 0 ? (expected === 0 ? 1 : 0) : paired / made,
    recall: expected === 0 ? 1 : paired / expected,
  };
}

const maxArgumentsText = 160;

/** `calc_add({"a":1,"b":2})`, long arguments cut. */
function callText(tool: string, args: unknown): string {
  const text = JSON.stringify(args) ?? '';
  return `${tool}(${text.length > maxArgumentsText ? `${text.slice(0, maxArgumentsText - 1)}…` : text})`;
}
