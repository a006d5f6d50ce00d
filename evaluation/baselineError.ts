/** A baseline report that cannot be compared against: not JSON, not a report, or of another schema version. */
export class BaselineError extends Error {
  /** The offending field, e.g. `cases[3].scores.costUsd`; undefined for the whole file. */
  readonly field: string | undefined;

  constructor(message: string, field?: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.field = field;
  }
}
