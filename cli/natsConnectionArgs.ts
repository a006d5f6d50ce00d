import { resolve } from 'node:path';
import { UsageError } from './usageError.ts';

/** The NATS connection flags every command takes, as the `nats` CLI names them, and the variables they set. */
export const natsConnectionFlags = {
  '--user': 'NATS_USER',
  '--password': 'NATS_PASSWORD',
  '--token': 'NATS_TOKEN',
  '--nkey': 'NATS_NKEY',
  '--creds': 'NATS_CREDS',
  '--tlsca': 'NATS_CA',
  '--tlscert': 'NATS_CERT',
  '--tlskey': 'NATS_KEY',
} as const;
type NatsFlag = keyof typeof natsConnectionFlags;

// Flags naming files: made absolute, so processes `troupe demo|up` start find them wherever they run.
const fileFlags: ReadonlySet<NatsFlag> = new Set(['--nkey', '--creds', '--tlsca', '--tlscert', '--tlskey']);

/**
 * Takes the NATS connection flags out of a command line (wherever they stand before a `--`, as
 * `--flag value` or `--flag=value`) and makes them the `NATS_*` variables of `env`: every command
 * then connects from the environment, their own argument parsing never sees them, and the
 * processes `troupe demo|up` start inherit them. One exception keeps an older meaning: after the
 * `run` command, `--user` is still the person the session is for (its NATS user is `NATS_USER`).
 * Returns the arguments without them; throws a UsageError for a flag without a value.
 */
// Their `--token` is the one their HTTP clients must send (NATS_TOKEN is then the NATS server's).
const commandsWithOwnToken = new Set(['console', 'mcp']);

export function takeNatsConnectionArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const rest: string[] = [];
  let command: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    const name = (arg.includes('=') ? arg.slice(0, arg.indexOf('=')) : arg) as NatsFlag;
    const isFlag = Object.hasOwn(natsConnectionFlags, name) && !(name === '--user' && command === 'run') && !(name === '--token' && commandsWithOwnToken.has(command ?? ''));
    if (!isFlag) {
      if (command === undefined && !arg.startsWith('-')) command = arg;
      rest.push(arg);
      continue;
    }
    const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i];
    if (value === undefined || value === '' || (value.startsWith('-') && !arg.includes('='))) throw new UsageError(`${name} needs a value, e.g. ${name} ${fileFlags.has(name) ? '<file>' : '<value>'}`);
    env[natsConnectionFlags[name]] = fileFlags.has(name) ? resolve(value) : value;
  }
  return rest;
}
