import { namespacePattern, namespaceRule } from '../transport/subjects.ts';
import { UsageError } from './usageError.ts';

/**
 * Takes `--namespace <ns>` (or `--namespace=<ns>`) out of a command line, wherever it stands
 * before a `--`, and makes it the `TROUPE_NAMESPACE` of `env`: every command then reads it from
 * the environment like any other setting, their own argument parsing never sees it, and the
 * processes `troupe demo|up` start inherit it. Returns the arguments without it; throws a
 * UsageError for a missing or malformed namespace.
 */
export function takeNamespaceArg(argv: string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg !== '--namespace' && !arg.startsWith('--namespace=')) {
      rest.push(arg);
      continue;
    }
    const value = arg === '--namespace' ? argv[++i] : arg.slice('--namespace='.length);
    if (value === undefined || value.startsWith('-')) throw new UsageError('--namespace needs a value, e.g. --namespace staging');
    if (!namespacePattern.test(value)) throw new UsageError(`--namespace "${value}" is not a namespace: use ${namespaceRule}`);
    env.TROUPE_NAMESPACE = value;
  }
  return rest;
}
