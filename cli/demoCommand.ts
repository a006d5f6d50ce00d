import { parseArgs } from 'node:util';
import { createLogger } from '../observability/logger.ts';
import { defaultNamespace } from '../transport/subjects.ts';
import { readEnvironment } from './environment.ts';
import { readAuthSetup, type AuthSetup } from './authSetup.ts';
import { redactUrlCredentials } from '../observability/redactUrl.ts';
import { startLocalStack } from './localStack.ts';
import { followSession } from './runCommand.ts';
import { UsageError } from './usageError.ts';

/** The demo's task: it needs the database, arithmetic and the file sandbox. */
export const demoTask =
  'Using the shop database, find the revenue of paid and shipped orders in 2025 by product category, ' +
  'compute the average revenue per category, and write a short report to reports/revenue-2025.md.';

const stackOptions = {
  'log-dir': { type: 'string', default: '.troupe/logs' },
  'workers-per-domain': { type: 'string', default: '2' },
  auth: { type: 'string' },
  cluster: { type: 'boolean', default: false },
  'mcp-example': { type: 'boolean', default: false },
  'refund-desk': { type: 'boolean', default: false },
  console: { type: 'boolean', default: false },
  'console-port': { type: 'string', default: '7070' },
} as const;

/**
 * The options `troupe demo` and `troupe up` share (with `json`, the demo's `--json` too); throws a
 * {@link UsageError} for values out of range. With `--auth`, reads the setup and, unless a namespace
 * was given, makes its namespace this process's.
 */
export function parseStackArgs(args: string[], extra: { json?: boolean } = {}) {
  const { values } = parseArgs({
    args,
    options: { ...stackOptions, ...(extra.json ? { json: { type: 'boolean', default: false } } : {}) },
    strict: true,
    allowPositionals: false,
  });
  const perDomain = Number(values['workers-per-domain']);
  if (!Number.isInteger(perDomain) || perDomain < 1 || perDomain > 16) throw new UsageError('--workers-per-domain must be a whole number from 1 to 16');
  const consolePort = Number(values['console-port']);
  if (!Number.isInteger(consolePort) || consolePort < 1 || consolePort > 65_535) throw new UsageError(`--console-port takes a port number (1 to 65535), not ${JSON.stringify(values['console-port'])}`);
  const auth = values.auth !== undefined ? readAuthSetup(values.auth) : undefined;
  // The setup's namespace, unless one was given: its permissions are for that namespace's subjects.
  if (auth && !process.env.TROUPE_NAMESPACE) process.env.TROUPE_NAMESPACE = auth.manifest.namespace;
  return { logDir: values['log-dir'] as string, perDomain, cluster: values.cluster === true, mcpExample: values['mcp-example'] === true, refundDesk: values['refund-desk'] === true, ...(values.console ? { console: { port: consolePort } } : {}), json: (values as { json?: boolean }).json ?? false, ...(auth ? { auth } : {}) };
}

/** How a person reaches the stack from another terminal, as a client and as an operator. */
function connectHints(url: string, namespace: string, auth: AuthSetup | undefined): string[] {
  // What is printed is shown and kept in terminals' scrollback: never with the URL's credentials.
  const natsUrl = redactUrlCredentials(url);
  const ns = namespace === defaultNamespace ? '' : ` --namespace ${namespace}`;
  const ca = auth?.caFile ? ` NATS_CA=${auth.caFile}` : '';
  if (!auth) return [`ready. In another terminal: NATS_URL=${natsUrl} bin/troupe run${ns} "<task>"   (Ctrl-C stops everything)`];
  return [
    `ready. In another terminal, as the client: NATS_URL=${natsUrl}${ca} bin/troupe run${ns} --nkey ${auth.seedFile('client')} "<task>"`,
    `  as an operator: NATS_URL=${natsUrl}${ca} bin/troupe sessions${ns} --nkey ${auth.seedFile('operator')} list   (Ctrl-C stops everything)`,
  ];
}

/** `troupe demo`: the whole system in one command, one task through all three pools, then a clean stop. */
export async function demoCommand(args: string[]): Promise<number> {
  const options = parseStackArgs(args, { json: true });
  const env = readEnvironment();
  const say = (line: string) => (options.json ? process.stderr : process.stdout).write(`· ${line}\n`);
  const stack = await startLocalStack({
    env, logger: createLogger({ name: 'demo', level: 'warn' }), logDir: options.logDir, workersPerDomain: options.perDomain, cluster: options.cluster, mcpExample: options.mcpExample, refundDesk: options.refundDesk, say, ...(options.auth ? { auth: options.auth } : {}),
    ...(options.console ? { console: options.console } : {}),
  });
  let interrupted = false;
  const onSignal = () => (interrupted = true);
  process.once('SIGINT', onSignal);
  try {
    say(`task: ${demoTask}\n`);
    const finished = await followSession(stack.nats, { task: demoTask, json: options.json, timeoutMs: 300_000, namespace: env.TROUPE_NAMESPACE });
    return finished.status === 'completed' && !interrupted ? 0 : 1;
  } finally {
    say('stopping the stack');
    await stack.stop();
  }
}

/** `troupe up`: the same stack as the demo, left running until Ctrl-C. */
export async function upCommand(args: string[]): Promise<number> {
  const options = parseStackArgs(args);
  const env = readEnvironment();
  const say = (line: string) => process.stdout.write(`· ${line}\n`);
  const stack = await startLocalStack({
    env, logger: createLogger({ name: 'up', level: 'warn' }), logDir: options.logDir, workersPerDomain: options.perDomain, cluster: options.cluster, mcpExample: options.mcpExample, refundDesk: options.refundDesk, say, ...(options.auth ? { auth: options.auth } : {}),
    ...(options.console ? { console: options.console } : {}),
  });
  if (stack.consoleUrl) say(`operator console: ${stack.consoleUrl}`);
  for (const line of connectHints(stack.natsUrl, env.TROUPE_NAMESPACE, options.auth)) say(line);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  say('stopping the stack');
  await stack.stop();
  return 0;
}
