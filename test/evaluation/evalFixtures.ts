import type { CaseRun, RunToolCall } from '../../evaluation/caseRun.ts';
import type { LoadedCase } from '../../evaluation/datasetLoader.ts';
import { EvalCase, type EvalCaseInput } from '../../evaluation/evalCase.ts';

/** A call the run made, `ok` unless told. */
export const made = (tool: string, args: unknown = {}, status: RunToolCall['status'] = 'ok'): RunToolCall => ({ tool, arguments: args, status });

/** A case as the loader would hand it: `spec` parsed (defaults filled) and placed in /evals/calc.yaml. */
export function loadedCase(spec: Partial<EvalCaseInput> = {}, file = '/evals/calc.yaml'): LoadedCase {
  return { ...EvalCase.parse({ id: 'calc-add', task: 'What is 1 + 2?', ...spec }), file };
}

/** A run that completed with "3" after one calc_add call, one step and a cent of cost; `overrides` change any of it. */
export function caseRun(overrides: Partial<CaseRun> = {}): CaseRun {
  return {
    caseId: 'calc-add',
    attempt: 1,
    sessionId: 'session-1',
    traceId: 'trace-1',
    status: 'completed',
    stopReason: 'answered',
    output: '3',
    toolCalls: [made('calc_add', { a: 1, b: 2 })],
    steps: 2,
    toolCallCount: 1,
    usage: { inputTokens: 100, outputTokens: 20, costUsd: 0.01 },
    durationMs: 1500,
    ...overrides,
  };
}
