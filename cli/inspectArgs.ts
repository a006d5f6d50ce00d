import { parseArgs } from 'node:util';
import { UsageError } from './usageError.ts';

/** `--inspect [--inspect-port N]`, for the processes that run statecharts; undefined without `--inspect`. */
export function parseInspectArgs(args: string[], usage: string): { port: number } | undefined {
  let values;
  try {
    ({ values } = parseArgs({ args, options: { inspect: { type: 'boolean', default: false }, 'inspect-port': { type: 'string' } }, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new UsageError(`${error instanceof Error ? error.message : String(error)}\n${usage}`);
  }
  const rawPort = values['inspect-port'];
  if (rawPort !== undefined && !values.inspect) throw new UsageError(`--inspect-port needs --inspect\n${usage}`);
  if (!values.inspect) return undefined;
  const port = Number(rawPort ?? 8080);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new UsageError(`--inspect-port must be a port number, not "${rawPort}"\n${usage}`);
  return { port };
}
