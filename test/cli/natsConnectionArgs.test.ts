import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { takeNatsConnectionArgs } from '../../cli/natsConnectionArgs.ts';
import { UsageError } from '../../cli/usageError.ts';

describe('takeNatsConnectionArgs', () => {
  it('takes the nats CLI\'s connection flags from anywhere before --, into the NATS_* variables', () => {
    const env: NodeJS.ProcessEnv = {};
    const rest = takeNatsConnectionArgs(['--nkey', 'keys/worker-calc.nk', 'worker', 'calc', '--tlsca=ca.pem', '--', '--token', 'kept'], env);
    expect(rest).toEqual(['worker', 'calc', '--', '--token', 'kept']);
    expect(env).toEqual({ NATS_NKEY: resolve('keys/worker-calc.nk'), NATS_CA: resolve('ca.pem') });
  });

  it('maps every flag to the variable the nats CLI names it by, files made absolute', () => {
    const env: NodeJS.ProcessEnv = {};
    takeNatsConnectionArgs(['sessions', 'list', '--user', 'ada', '--password', 'pw', '--token', 't', '--creds', 'a.creds', '--tlscert', 'c.pem', '--tlskey', 'k.pem'], env);
    expect(env).toEqual({
      NATS_USER: 'ada', NATS_PASSWORD: 'pw', NATS_TOKEN: 't', NATS_CREDS: resolve('a.creds'), NATS_CERT: resolve('c.pem'), NATS_KEY: resolve('k.pem'),
    });
  });

  it('leaves --user to troupe run, where it names the person the session is for', () => {
    const env: NodeJS.ProcessEnv = {};
    expect(takeNatsConnectionArgs(['run', '--user', 'ada@acme.io', '--nkey', 'client.nk', 'a task'], env)).toEqual(['run', '--user', 'ada@acme.io', 'a task']);
    expect(env).toEqual({ NATS_NKEY: resolve('client.nk') });
  });

  it('leaves --token to troupe console and troupe mcp serve, where it is their HTTP token', () => {
    const env: NodeJS.ProcessEnv = {};
    expect(takeNatsConnectionArgs(['console', '--host', '0.0.0.0', '--token', 's3cret', '--nkey', 'operator.nk'], env)).toEqual(['console', '--host', '0.0.0.0', '--token', 's3cret']);
    expect(takeNatsConnectionArgs(['mcp', 'serve', '--http', '8080', '--token=abc'], env)).toEqual(['mcp', 'serve', '--http', '8080', '--token=abc']);
    expect(env).toEqual({ NATS_NKEY: resolve('operator.nk') });
  });

  it('refuses a flag without a value', () => {
    expect(() => takeNatsConnectionArgs(['worker', 'calc', '--nkey'], {})).toThrow(UsageError);
    expect(() => takeNatsConnectionArgs(['worker', '--token', '--nkey', 'x'], {})).toThrow('--token needs a value');
  });
});
