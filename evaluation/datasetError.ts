import * as path from 'node:path';

/** One thing wrong with the eval datasets: where it is, as precisely as known. */
export interface DatasetProblem {
  /** Absolute path of the file (or the path as given, when it names nothing that exists). */
  file: string;
  /** 1-based line, where the parser knows it. */
  line?: number;
  caseId?: string;
  /** The case's field, as a path: `expect.trajectory.mode`, `expect.trajectory.calls[0].tool`. */
  field?: string;
  message: string;
}

/**
 * Thrown by `loadDatasets` before anything runs, carrying every problem found in every file, not
 * just the first. The message lists them one per line as `file[:line] case <id>: <field>: <message>`,
 * with paths relative to the working directory when they are under it.
 */
export class DatasetError extends Error {
  readonly problems: DatasetProblem[];

  constructor(problems: DatasetProblem[]) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    super(`The eval datasets have ${count}:\n${problems.map(describeProblem).join('\n')}`);
    this.name = new.target.name;
    this.problems = problems;
  }
}

/** One problem as a line a person reads: `evals/calc.yaml:12 case add-two: expect.trajectory.mode: …`. */
export function describeProblem(problem: DatasetProblem): string {
  let where = displayPath(problem.file);
  if (problem.line !== undefined) where += `:${problem.line}`;
  if (problem.caseId !== undefined) where += ` case ${problem.caseId}`;
  return `${where}: ${problem.field === undefined ? '' : `${problem.field}: `}${problem.message}`;
}

function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative === '' || relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}
