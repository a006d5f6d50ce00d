/** One problem found in a script file, as zod reports it: where, and what. */
export interface ScriptIssue {
  readonly path: string;
  readonly message: string;
}

/**
 * A script directory or file that cannot be used: unreadable, not JSON, not a valid script, or a
 * name already taken. The script author's fault; thrown by `loadScripts` before any server starts.
 */
export class ScriptLoadError extends Error {
  readonly file: string;
  readonly issues: readonly ScriptIssue[];

  constructor(file: string, message: string, options: { issues?: readonly ScriptIssue[]; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.file = file;
    this.issues = options.issues ?? [];
  }
}
