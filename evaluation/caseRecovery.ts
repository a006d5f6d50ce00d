import type { Script } from '../scriptedModel/script.ts';
import { natsRestartFaultKind, type EvalCase } from './evalCase.ts';
import type { CaseRecovery, CaseResult } from './caseScore.ts';

/** Whether a case injects faults, so that it runs twice: with them, and without them for comparison. */
export const hasFaults = (evalCase: Pick<EvalCase, 'faults' | 'natsRestart'>): boolean => evalCase.faults !== undefined || evalCase.natsRestart !== undefined;

/** The fault kinds a case injects (its pools' kinds, then `nats_restart`), each once, in the order first named. */
export function faultKindsOf(evalCase: Pick<EvalCase, 'faults' | 'natsRestart'>): string[] {
  const poolKinds = Object.values(evalCase.faults ?? {}).flatMap((rules) => rules.map((rule) => rule.kind));
  return [...new Set([...poolKinds, ...(evalCase.natsRestart ? [natsRestartFaultKind] : [])])];
}

/**
 * The faults a script plays on the model, as fault kinds: `model_http_429`, `model_malformed_tool_call`, …
 * each once, in the order of the steps.
 */
export function modelFaultKindsOf(script: Pick<Script, 'steps'>): string[] {
  return [...new Set(script.steps.flatMap((step) => {
    const fault = step.fault;
    if (fault === undefined) return [];
    return [fault.kind === 'http_error' ? `model_http_${fault.status}` : `model_${fault.kind}`];
  }))];
}

/** Every fault kind of a case's result, `none` for a case without any: what the report's totals by fault kind group by. */
export function faultKindsOfResult(result: Pick<CaseResult, 'recovery' | 'modelFaults'>): string[] {
  const kinds = [...(result.recovery?.faultKinds ?? []), ...(result.modelFaults ?? [])];
  return kinds.length === 0 ? ['none'] : kinds;
}

/**
 * A faulted case's recovery, against its fault-free runs (`control`): recovered when every faulted
 * run met the expectations; extra steps and cost as the faulted mean less the fault-free mean.
 */
export function recoveryOf(evalCase: Pick<EvalCase, 'faults' | 'natsRestart'>, faulted: CaseResult, control: CaseResult): CaseRecovery {
  return {
    faultKinds: faultKindsOf(evalCase),
    recovered: faulted.passed,
    extraSteps: faulted.scores.steps - control.scores.steps,
    extraCostUsd: faulted.scores.costUsd - control.scores.costUsd,
    controlPassed: control.passed,
    duplicatedSideEffects: faulted.runs.reduce((sum, run) => sum + run.toolCalls.filter((call) => (call.handlerRuns ?? 0) > 1).length, 0),
  };
}
