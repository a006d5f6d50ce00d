import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUser } from '@nats-io/nkeys';
import { PermissionViolationError } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeAuthSetup, type AuthSetup } from '../../cli/authSetup.ts';
import { createLogger } from '../../observability/logger.ts';
import { freePort, startNatsServer, type NatsServerProcess } from '../../testing/natsServer.ts';
import { connectToNats, NatsAccessDeniedError, NatsUnreachableError } from '../../transport/natsConnection.ts';
import { wireNames } from '../../transport/subjects.ts';
import { testNamespace } from '../fixtures/testNamespace.ts';

/** connectToNats against a server that enforces roles: refusals are told apart from network loss and never retried. */
describe('connectToNats', () => {
  let server: NatsServerProcess;
  let setup: AuthSetup;
  const names = wireNames(testNamespace());
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ name: 'test', destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });

  beforeAll(async () => {
    setup = writeAuthSetup({ out: mkdtempSync(join(tmpdir(), 'troupe-auth-')), namespace: names.namespace, domains: ['calc'], agents: [], tls: false });
    server = await startNatsServer({ config: setup.serverConfig });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('throws a NatsAccessDeniedError for credentials the server refuses, naming no secret', async () => {
    const stranger = join(setup.dir, 'stranger.nk');
    writeFileSync(stranger, new TextDecoder().decode(createUser().getSeed()));
    const refused = await connectToNats({ url: server.url, name: 'test', logger, credentials: { nkeySeedFile: stranger } }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(NatsAccessDeniedError);
    expect(refused).toMatchObject({ denial: 'authentication', message: expect.stringContaining('refused this process\'s credentials') });
    const withPassword = await connectToNats({ url: server.url.replace('nats://', 'nats://ada:hunter2@'), name: 'test', logger }).catch((error: unknown) => error);
    expect(withPassword).toBeInstanceOf(NatsAccessDeniedError);
    expect((withPassword as Error).message).not.toContain('hunter2');
  });

  it('says a server cannot be reached without quoting the URL\'s credentials', async () => {
    const url = `nats://ada:hunter2@127.0.0.1:${await freePort()}`;
    const unreachable = await connectToNats({ url, name: 'test', logger }).catch((error: unknown) => error);
    expect(unreachable).toBeInstanceOf(NatsUnreachableError);
    expect((unreachable as Error).message).toMatch(/^Could not reach NATS at nats:\/\/\[redacted\]@127\.0\.0\.1:\d+/);
  });

  it('turns a subject the role may not use into an access denial when asked to, once, and only logs it otherwise', async () => {
    const denials: NatsAccessDeniedError[] = [];
    const strict = await connectToNats({
      url: server.url, name: 'strict', logger, credentials: { nkeySeedFile: setup.seedFile('worker-calc') }, permissionViolations: 'fatal', onAccessDenied: (error) => denials.push(error),
    });
    const forbidden = `${names.namespace}.tools.db.>`;
    expect(await strict.subscribe(forbidden).closed).toBeInstanceOf(PermissionViolationError);
    await strict.flush();
    expect(denials).toMatchObject([{ denial: 'permission', operation: 'subscription', subject: forbidden }]);
    await strict.close();

    const lenient = await connectToNats({
      url: server.url, name: 'lenient', logger, credentials: { nkeySeedFile: setup.seedFile('worker-calc') }, onAccessDenied: (error) => denials.push(error),
    });
    expect(await lenient.subscribe(forbidden).closed).toBeInstanceOf(PermissionViolationError);
    await lenient.flush();
    expect(denials).toHaveLength(1);
    expect(lines.filter((line) => line.nats === 'permission violation' && line.subject === forbidden)).toHaveLength(1);
    await lenient.close();
  });
});

/** Async traces cost an Error with a stack per request: off unless asked for, for debugging. */
describe('connectToNats, where a failed request was made from', () => {
  let server: NatsServerProcess;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const failedRequestStack = async (asyncTraces: boolean | undefined): Promise<string> => {
    const nc = await connectToNats({ url: server.url, name: 'traces', logger: createLogger({ name: 'test', destination: { write: () => {} } }), ...(asyncTraces === undefined ? {} : { asyncTraces }) });
    // A subscriber that never answers: the request times out.
    const silent = nc.subscribe('traces.silent');
    async function aCallSiteToFind(): Promise<unknown> {
      return await nc.request('traces.silent', '', { timeout: 50 }).catch((error: unknown) => error);
    }
    const error = await aCallSiteToFind();
    silent.unsubscribe();
    await nc.close();
    return String((error as Error).stack);
  };

  it('leaves the request\'s call site out of the error by default, and puts it in with asyncTraces', async () => {
    expect(await failedRequestStack(undefined)).not.toContain('aCallSiteToFind');
    expect(await failedRequestStack(true)).toContain('aCallSiteToFind');
  });
});
