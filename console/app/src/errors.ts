import type { ApiError } from '../../consoleApi.ts';

/** Why a request to the console failed. Each subclass says whose fault it is; `message` is written for the operator. */
export class ConsoleRequestError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The console refused, with an `ApiError` body (or, from something in between, without one). */
export class ConsoleRefusal extends ConsoleRequestError {
  readonly status: number;
  readonly code: ApiError['error']['code'] | 'unexpected';
  readonly issues: Array<{ path: string; message: string }>;

  constructor(status: number, code: ConsoleRefusal['code'], message: string, issues: ConsoleRefusal['issues'] = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.issues = issues;
  }
}

/** The console answered something the contract (consoleApi.ts) does not allow: a server and page of different versions, or a bug on one side. */
export class ContractMismatch extends ConsoleRequestError {
  readonly issues: string[];

  constructor(what: string, issues: string[]) {
    super(`${what} does not match the console's API contract: ${issues.join('; ')}`);
    this.issues = issues;
  }
}

/** The console could not be reached at all (it stopped, or the network dropped). */
export class ConsoleUnreachable extends ConsoleRequestError {}

/** The operator's own input is wrong (a JSON argument that is not an object, an empty instruction); nothing was sent. */
export class InvalidInput extends ConsoleRequestError {}

/** What to show for anything thrown: the message of a known failure, else the error's text. */
export function describeFailure(error: unknown): string {
  if (error instanceof ConsoleRefusal && error.issues.length > 0) return `${error.message} (${error.issues.map((i) => `${i.path}: ${i.message}`).join('; ')})`;
  if (error instanceof Error) return error.message;
  return String(error);
}
