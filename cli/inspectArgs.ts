import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './usageError.ts';

/** The `--inspect [--inspect-port N]` options, for the commands whose processes run statecharts. */
export const inspectOptions = {
  inspect: { type: 'boolean', default: false },
  'inspect-port': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

/**
 * Parses a command's flags strictly: an unknown flag, a missing value or a stray argument is a
 * {@link UsageError} carrying the command's usage, never ignored.
 */
export function parseCommandArgs<const Options extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: Options, usage: string, allowPositionals = false) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (error) {
    throw new UsageError(`${error instanceof Error ? error.message : String(error)}\n${usage}`);
  }
}

/** What `--inspect [--inspect-port N]` asked for; undefined without `--inspect`. */
export function inspectionOf(values: { inspect?: boolean | undefined; 'inspect-port'?: string | undefined }, usage: string): { port: number } | undefined {
  const rawPort = values['inspect-port'];
  if (rawPort !== undefined && !values.inspect) throw new UsageError(`--inspect-port needs --inspect\n${usage}`);
  if (!values.inspect) return undefined;
  const port = Number(rawPort ?? 8080);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new UsageError(`--inspect-port must be a port number, not "${rawPort}"\n${usage}`);
  return { port };
}

/** `--inspect [--inspect-port N]` and nothing else; undefined without `--inspect`. */
export function parseInspectArgs(args: string[], usage: string): { port: number } | undefined {
  return inspectionOf(parseCommandArgs(args, inspectOptions, usage).values, usage);
}
