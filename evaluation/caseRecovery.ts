import type { FaultSpecification } from '../actors/worker/workerFaults.ts';
import type { CaseRecovery, CaseResult } from './caseScore.ts';

/** The fault kinds a specification injects, each once, in the order first named. */
export function faultKindsOf(faults: FaultSpecification): string[] {
  return [...new Set(Object.values(faults).flatMap((rules) => rules.map((rule) => rule.kind)))];
}

/**
 * A faulted case's recovery, against its fault-free runs (`control`): recovered when every faulted
 * run met the expectations; extra steps and cost as the faulted mean less the fault-free mean.
 */
export function recoveryOf(faults: FaultSpecification, faulted: CaseResult, control: CaseResult): CaseRecovery {
  return {
    faultKinds: faultKindsOf(faults),
    recovered: faulted.passed,
    extraSteps: faulted.scores.steps - control.scores.steps,
    extraCostUsd: faulted.scores.costUsd - control.scores.costUsd,
    controlPassed: control.passed,
    duplicatedSideEffects: faulted.runs.reduce((sum, run) => sum + run.toolCalls.filter((call) => (call.handlerRuns ?? 0) > 1).length, 0),
  };
}
