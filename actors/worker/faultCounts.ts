import { accessSync, constants, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * The environment variable naming a directory where the workers of one machine share how many
 * times each fault rule with `times` has fired (see {@link DirectoryFaultCounts}).
 */
export const faultCountsEnvVariable = 'TROUPE_FAULT_COUNTS_DIR';

/** Which rule of a fault specification: its key (a tool name or `*`) and its place in that key's list. */
export interface FaultRuleRef {
  readonly scope: string;
  readonly index: number;
}

/**
 * Where the firings of rules with `times` are counted. One store per process keeps each worker's
 * own count; a store several injectors (or processes) share makes `times` hold for all of them
 * together, e.g. a `crash` with `times: 1` kills one member of a pool, not every member in turn.
 */
export interface FaultCounts {
  /**
   * Takes the next free firing of `rule` among its first `times`, atomically for everyone sharing
   * this store: two callers never get the same one. Returns the firing's number (1 to `times`),
   * or `undefined` when all are taken and the rule is spent. A taken firing is never given back,
   * so it must be claimed only once the caller has decided to fire.
   */
  claim(rule: FaultRuleRef, times: number): number | undefined;
}

const ruleKey = (rule: FaultRuleRef): string => `${rule.scope}[${rule.index}]`;

/** Counts in memory: shared by the injectors given the same instance, within one process. */
export class MemoryFaultCounts implements FaultCounts {
  readonly #fired = new Map<string, number>();

  claim(rule: FaultRuleRef, times: number): number | undefined {
    const key = ruleKey(rule);
    const fired = this.#fired.get(key) ?? 0;
    if (fired >= times) return undefined;
    this.#fired.set(key, fired + 1);
    return fired + 1;
  }
}

/** The counts directory cannot be used: it is missing, not a directory, or not writable. */
export class FaultCountsDirectoryError extends Error {
  readonly directory: string;

  constructor(message: string, directory: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.directory = directory;
  }
}

/**
 * Counts in a directory shared by every process of one machine that opens it. Firing `k` of a
 * rule is the file `<tool or *>[<rule index>].<k>`, made with an exclusive create: the process
 * whose create succeeds fires, the others find it taken and try `k + 1`. The file exists as soon
 * as `claim` returns, so a process that fires a `crash` has recorded it before it kills itself,
 * and a member started again in its place finds the rule spent. Files are never removed: give a
 * run of pools a fresh directory.
 */
export class DirectoryFaultCounts implements FaultCounts {
  readonly directory: string;

  private constructor(directory: string) {
    this.directory = directory;
  }

  /**
   * Opens an existing, writable directory; throws {@link FaultCountsDirectoryError} otherwise, so
   * a misconfigured worker stops at start-up rather than at its first fault.
   */
  static open(directory: string, source = faultCountsEnvVariable): DirectoryFaultCounts {
    const path = resolve(directory);
    let isDirectory: boolean;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch (error) {
      throw new FaultCountsDirectoryError(`${source} names ${path}, which does not exist: create it first (one directory per run of the pools).`, path, { cause: error });
    }
    if (!isDirectory) throw new FaultCountsDirectoryError(`${source} names ${path}, which is not a directory.`, path);
    try {
      accessSync(path, constants.W_OK | constants.X_OK);
    } catch (error) {
      throw new FaultCountsDirectoryError(`${source} names ${path}, which this process cannot write to.`, path, { cause: error });
    }
    return new DirectoryFaultCounts(path);
  }

  claim(rule: FaultRuleRef, times: number): number | undefined {
    // Encoded so a tool name cannot leave the directory; `[` is encoded too, so the first one ends the scope.
    const prefix = `${encodeURIComponent(rule.scope)}[${rule.index}]`;
    for (let firing = 1; firing <= times; firing++) {
      try {
        // Who took it, for whoever reads the directory after a run.
        writeFileSync(join(this.directory, `${prefix}.${firing}`), `${JSON.stringify({ pid: process.pid, at: new Date().toISOString() })}\n`, { flag: 'wx' });
        return firing;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
    return undefined;
  }
}

/**
 * The shared counts `TROUPE_FAULT_COUNTS_DIR` names, or `undefined` when it is unset or blank;
 * throws {@link FaultCountsDirectoryError} for a directory that cannot be used.
 */
export function faultCountsFromEnv(env: NodeJS.ProcessEnv = process.env): DirectoryFaultCounts | undefined {
  const directory = env[faultCountsEnvVariable];
  if (directory === undefined || directory.trim() === '') return undefined;
  return DirectoryFaultCounts.open(directory);
}
