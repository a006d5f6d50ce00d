import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { ConsoleConfigurationError, defaultConsoleAppDir, startConsoleServer } from '../console/server/consoleServer.ts';
import { ConfigurationError, readEnvironment } from './environment.ts';
import { connectProcess, nkeySignerOf } from './natsSettings.ts';
import { startProcessRole } from './processLifecycle.ts';
import { UsageError } from './usageError.ts';

const usage = `usage: troupe console [--port 7070] [--host 127.0.0.1] [--token <secret>] [--read-only]
  the operator console: every session's statechart live, its timeline, and the controls, in a browser
  --host other than this machine needs --token (or TROUPE_CONSOLE_TOKEN); open the page with ?token=<secret>
  --read-only shows everything and sends no command (also what the observer role's credentials allow)`;

/** The flags of `troupe console`, checked. */
export function parseConsoleArgs(args: string[], env: { TROUPE_CONSOLE_TOKEN?: string | undefined } = {}): { port: number; host: string; token?: string; readOnly: boolean } {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: { port: { type: 'string' }, host: { type: 'string' }, token: { type: 'string' }, 'read-only': { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n${usage}`);
  }
  if (values.help) throw new UsageError(usage);
  const port = values.port === undefined ? 7070 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new UsageError(`--port takes a port number (0 to 65535; 0 picks a free one), not ${JSON.stringify(values.port)}\n${usage}`);
  const host = values.host ?? '127.0.0.1';
  if (host.trim() === '') throw new UsageError(`--host needs an address\n${usage}`);
  // An empty TROUPE_CONSOLE_TOKEN (compose passes one through when unset) is no token.
  const token = values.token ?? (env.TROUPE_CONSOLE_TOKEN || undefined);
  if (token !== undefined && token.length < 16) throw new UsageError('the console token must be at least 16 characters: anyone who guesses it can steer sessions');
  return { port, host, readOnly: values['read-only'], ...(token ? { token } : {}) };
}

/** `troupe console`: serves the operator console until stopped (see README, "The operator console"). */
export async function consoleCommand(args: string[]): Promise<void> {
  const options = parseConsoleArgs(args, process.env);
  const env = readEnvironment();
  const role = startProcessRole('console', env.LOG_LEVEL, env.TROUPE_REDACT);
  const { logger } = role;
  // Quiet about permissions: with the observer's credentials a refused command is an answer to show, not a fault.
  buildPageInCheckout(logger);
  const nc = await connectProcess(env, { name: 'troupe-console', logger, longRunning: false });
  let server;
  try {
    server = await startConsoleServer({
      nc, logger, namespace: env.TROUPE_NAMESPACE, host: options.host, port: options.port, readOnly: options.readOnly,
      jaegerUrl: env.JAEGER_URL ?? null, ...(options.token ? { token: options.token } : {}),
      ...(nkeySignerOf(env) ? { signer: nkeySignerOf(env) } : {}),
    });
  } catch (error) {
    await nc.close();
    if (error instanceof ConsoleConfigurationError) throw new ConfigurationError(error.message);
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new ConfigurationError(`Port ${options.port} is in use on ${options.host}: pick another with --port.`);
    throw error;
  }
  role.onShutdown(async () => {
    await server.close();
    await nc.drain().catch(() => undefined);
  });
  logger.info({ url: server.url, readOnly: options.readOnly }, 'the operator console is serving');
  process.stderr.write(`troupe: operator console at ${server.url}${options.token ? '?token=<your token>' : ''}${options.readOnly ? ' (read-only)' : ''}\n`);
}

/** Builds the console's page from its sources in the checkout at `root` (`bin/build-console`, with this Node and the checkout's tools). */
export function buildConsolePage(root: string): void {
  execFileSync('bash', [join(root, 'bin', 'build-console')], {
    cwd: root, stdio: 'pipe', env: { ...process.env, PATH: `${dirname(process.execPath)}:${join(root, 'node_modules', '.bin')}:${process.env.PATH ?? ''}` },
  });
}

/**
 * In a checkout (not the package, which ships the page built), builds the page the first time, so
 * `bin/troupe up --console` works on a fresh clone; the package build and the tests build it too.
 */
function buildPageInCheckout(logger: Logger): void {
  const root = resolve(defaultConsoleAppDir, '..', '..', '..');
  if (existsSync(join(defaultConsoleAppDir, 'index.html')) || !existsSync(join(root, 'bin', 'build-console')) || !existsSync(join(root, 'console', 'app', 'index.html'))) return;
  logger.info('building the console\'s page (once, in this checkout)');
  try {
    buildConsolePage(root);
  } catch (error) {
    const output = String((error as { stderr?: Buffer }).stderr ?? '').trim().split('\n').slice(-5).join('\n');
    throw new ConfigurationError(`The console's page could not be built (bash bin/build-console): ${output || (error as Error).message}`);
  }
}
