import { describe, expect, it } from 'vitest';
import { takeNamespaceArg } from '../../cli/namespaceArg.ts';
import { UsageError } from '../../cli/usageError.ts';

describe('takeNamespaceArg', () => {
  it('takes --namespace <ns> or --namespace=<ns> from anywhere before "--" and sets TROUPE_NAMESPACE', () => {
    for (const argv of [
      ['--namespace', 'staging', 'run', 'a task', '--json'],
      ['run', '--namespace=staging', 'a task', '--json'],
      ['run', 'a task', '--json', '--namespace', 'staging'],
    ]) {
      const env: NodeJS.ProcessEnv = { TROUPE_NAMESPACE: 'production' };
      expect(takeNamespaceArg(argv, env)).toEqual(['run', 'a task', '--json']);
      expect(env.TROUPE_NAMESPACE).toBe('staging');
    }
  });

  it('leaves the command line and the environment alone without the flag, and after "--"', () => {
    const env: NodeJS.ProcessEnv = {};
    expect(takeNamespaceArg(['sessions', 'list'], env)).toEqual(['sessions', 'list']);
    expect(takeNamespaceArg(['run', '--', '--namespace', 'x'], env)).toEqual(['run', '--', '--namespace', 'x']);
    expect(env).toEqual({});
  });

  it('refuses a missing or malformed namespace with a usage error naming the rule', () => {
    expect(() => takeNamespaceArg(['run', '--namespace'], {})).toThrow(new UsageError('--namespace needs a value, e.g. --namespace staging'));
    expect(() => takeNamespaceArg(['--namespace', '--json'], {})).toThrow(UsageError);
    expect(() => takeNamespaceArg(['--namespace=Prod.EU'], {})).toThrow(
      new UsageError('--namespace "Prod.EU" is not a namespace: use a lower-case letter, then lower-case letters, digits, "-" or "_", at most 32 characters'),
    );
  });
});
