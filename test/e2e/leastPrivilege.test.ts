import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { AuthorizationError, connect, PermissionViolationError, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveSession, rollbackSession, startSession } from '../../client/sessionClient.ts';
import { readAuthSetup, type AuthSetup } from '../../cli/authSetup.ts';
import { startNatsServer, type NatsServerProcess } from '../../testing/natsServer.ts';
import { approvalStatement, signGrant } from '../../transport/callGrants.ts';
import { SessionEvent, ToolReply, type ToolRequest, type ToolUndoRequest } from '../../transport/messages.ts';
import { accessDenialOf } from '../../transport/natsConnection.ts';
import { natsConnectSettings, readNkeySeed } from '../../transport/natsCredentials.ts';
import { statementSigner } from '../../transport/signatures.ts';
import { wireNames } from '../../transport/subjects.ts';
import { decodeWireMessage, encodeWireMessage } from '../../transport/wireMessage.ts';
import { startProcessStack, type ProcessStack } from '../fixtures/processStack.ts';
import { testNamespace } from '../fixtures/testNamespace.ts';
import { startTroupe } from '../fixtures/troupeProcess.ts';
import { startConsoleServer } from '../../console/server/consoleServer.ts';
import { silentLogger } from '../../observability/logger.ts';
import { consoleAppDir, ensureConsoleAppBuilt } from '../fixtures/consoleApp.ts';

/** A connection as one role of the setup, the way Troupe's processes connect (its seed, its own inbox, the CA). */
async function connectAs(url: string, setup: AuthSetup, role: string): Promise<NatsConnection> {
  const settings = natsConnectSettings(url, { nkeySeedFile: setup.seedFile(role), ...(setup.caFile ? { tlsCaFile: setup.caFile } : {}) });
  return await connect({ servers: settings.servers, ...settings.options, reconnect: false, name: `test-${role}` });
}

/** The server's refusal, as NATS reports it to the connection, of what `act` publishes to `subject`. */
async function publishRefusal(nc: NatsConnection, subject: string, act: () => void): Promise<PermissionViolationError> {
  const refused = (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'error' && status.error instanceof PermissionViolationError && status.error.subject === subject) return status.error;
    }
    throw new Error('the connection closed without a refusal');
  })();
  act();
  await nc.flush();
  return await refused;
}

/** The refusal a rejected request carries, as Troupe reads it. */
const deniedSubjectOf = (error: unknown) => {
  const denial = accessDenialOf(error, '');
  return denial ? { denial: denial.denial, operation: denial.operation, subject: denial.subject } : { notADenial: String(error) };
};

/** Lines of the server's log that report a refused publish or subscription. */
const violationsIn = (log: string): string[] => log.split('\n').filter((line) => /Violation/.test(line));

describe('the demo\'s stack on a nats-server that enforces the roles troupe auth init wrote', () => {
  for (const tls of [false, true]) {
    describe(tls ? 'over TLS' : 'in the clear', () => {
      const namespace = `${testNamespace().slice(0, 24)}${tls ? '-tls' : ''}`;
      const names = wireNames(namespace);
      let server: NatsServerProcess;
      let setup: AuthSetup;
      let logFile: string;
      let sessionId: string;
      const open: NatsConnection[] = [];
      const as = async (role: string) => {
        const nc = await connectAs(server.url, setup, role);
        open.push(nc);
        return nc;
      };

      beforeAll(async () => {
        const dir = mkdtempSync(join(tmpdir(), 'troupe-auth-'));
        const init = startTroupe(['auth', 'init', '--out', join(dir, 'auth'), '--domains', 'files,db,calc', '--agents', 'analyst', '--namespace', namespace, ...(tls ? ['--tls'] : [])], {});
        expect(await init.exited, init.output()).toBe(0);
        setup = readAuthSetup(join(dir, 'auth'));
        logFile = join(dir, 'nats-server.log');
        server = await startNatsServer({ config: setup.serverConfig, tls, logFile });
        ensureConsoleAppBuilt();
      }, 60_000);

      afterAll(async () => {
        for (const nc of open) await nc.close().catch(() => undefined);
        await server?.stop();
      });

      it('writes seeds only their owner can read and a configuration that holds no seed', () => {
        const config = readFileSync(setup.serverConfig, 'utf8');
        expect(Object.keys(setup.manifest.roles).sort()).toEqual(['client', 'observer', 'operator', 'orchestrator', 'specialist-analyst', 'worker-calc', 'worker-db', 'worker-files']);
        for (const [role, publicKey] of Object.entries(setup.manifest.roles)) {
          const seed = readNkeySeed(setup.seedFile(role));
          expect(seed.publicKey).toBe(publicKey);
          expect(config).toContain(publicKey);
          expect(config).not.toContain(new TextDecoder().decode(seed.seed));
          expect(statSync(setup.seedFile(role)).mode & 0o777).toBe(0o600);
        }
        expect(config).toMatch(tls ? /tls \{\n {2}cert_file: / : /^jetstream: enabled$/m);
        if (tls) expect(existsSync(setup.caFile as string)).toBe(true);
      });

      it('lets the observer list sessions before any orchestrator has created the checkpoint bucket (regression: exit 3)', async () => {
        const listed = startTroupe(['sessions', 'list'], { NATS_URL: server.url, NATS_NKEY: setup.seedFile('observer'), TROUPE_NAMESPACE: namespace, ...(setup.caFile ? { NATS_CA: setup.caFile } : {}) });
        expect(await listed.exited, listed.output()).toBe(0);
        expect(listed.output().trim()).toBe('no sessions');
      });

      it('completes the demo session with every process on its own role\'s seed, and the server refuses none of them', async () => {
        const workspace = mkdtempSync(join(tmpdir(), 'troupe-demo-'));
        const demo = startTroupe(['demo', '--auth', setup.dir, '--workers-per-domain', '1', '--json', '--log-dir', join(workspace, 'logs')], {
          NATS_URL: server.url, TROUPE_NAMESPACE: namespace, TROUPE_WORKSPACE: workspace, OPENAI_BASE_URL: '', OPENAI_API_KEY: '',
        });
        const code = await demo.exited;
        expect(code, demo.output().slice(-4000)).toBe(0);
        const events = demo.output().split('\n').filter((line) => line.startsWith('{')).flatMap((line) => {
          const event = SessionEvent.safeParse(JSON.parse(line));
          return event.success ? [event.data] : [];
        });
        expect(events.at(-1)).toMatchObject({ type: 'session.finished', status: 'completed' });
        expect(events.filter((e) => e.type === 'tool.call.finished').map((e) => 'tool' in e && e.tool)).toContain('files_write');
        sessionId = events[0]?.sessionId as string;
        expect(readFileSync(join(workspace, 'reports/revenue-2025.md'), 'utf8')).toContain('Revenue');
        // Every publish and subscription of every process was within its role.
        expect(violationsIn(readFileSync(logFile, 'utf8'))).toEqual([]);
      }, 240_000);

      it('refuses an anonymous connection, and the command line says so in one line with exit code 3', async () => {
        await expect(connect({ servers: server.url, reconnect: false, ...(setup.caFile ? { tls: { caFile: setup.caFile } } : {}) })).rejects.toBeInstanceOf(AuthorizationError);
        const anonymous = startTroupe(['sessions', 'list'], { NATS_URL: server.url, TROUPE_NAMESPACE: namespace, ...(setup.caFile ? { NATS_CA: setup.caFile } : {}) });
        expect(await anonymous.exited).toBe(3);
        expect(anonymous.output().trim().split('\n')).toEqual([expect.stringMatching(/^troupe: NATS at .* refused this process's credentials \(Authorization Violation\)/)]);
      }, 60_000);

      it('does not let worker-calc hear the db pool\'s calls nor read the checkpoints', async () => {
        const calc = await as('worker-calc');
        expect(await calc.subscribe(`${names.namespace}.tools.db.>`).closed).toBeInstanceOf(PermissionViolationError);
        expect(await calc.subscribe(names.subjects.tool('db', 'db_query'), { queue: names.queueGroups.pool('db') }).closed).toBeInstanceOf(PermissionViolationError);
        const checkpoints = await new Kvm(calc).open(names.buckets.checkpoints);
        expect(deniedSubjectOf(await checkpoints.get(sessionId).catch((error: unknown) => error))).toMatchObject({ denial: 'permission', operation: 'publish' });
        expect(deniedSubjectOf(await (await jetstreamManager(calc)).streams.info(`KV_${names.buckets.checkpoints}`).catch((error: unknown) => error)))
          .toEqual({ denial: 'permission', operation: 'publish', subject: `$JS.API.STREAM.INFO.KV_${names.buckets.checkpoints}` });
        // What the role is for is still allowed: its own pool's calls, in its queue group.
        const own = calc.subscribe(names.subjects.tool('calc', 'calc_evaluate'), { queue: names.queueGroups.pool('calc') });
        await calc.flush();
        expect(own.isClosed()).toBe(false);
        own.unsubscribe();
      });

      it('does not let the client approve or roll back, nor the observer start a session; the observer still reads it', async () => {
        const client = await as('client');
        // Commands are recorded in the session's command stream first: the client may not publish there.
        const control = names.subjects.sessionControls(sessionId);
        expect(deniedSubjectOf(await approveSession(client, sessionId, { namespace }).catch((error: unknown) => error))).toEqual({ denial: 'permission', operation: 'publish', subject: control });
        expect(deniedSubjectOf(await rollbackSession(client, sessionId, { namespace, toTurn: 0 }).catch((error: unknown) => error))).toEqual({ denial: 'permission', operation: 'publish', subject: control });

        const observer = await as('observer');
        const start = encodeWireMessage({ type: 'session.start', sessionId: 'by-the-observer', task: 'anything' });
        expect(deniedSubjectOf(await observer.request(names.subjects.sessionStart, start).catch((error: unknown) => error))).toEqual({ denial: 'permission', operation: 'publish', subject: names.subjects.sessionStart });
        expect(deniedSubjectOf(await jetstream(observer).publish(names.subjects.queuedSessionStarts, start).catch((error: unknown) => error)))
          .toMatchObject({ denial: 'permission', subject: names.subjects.queuedSessionStarts });
        const shown = startTroupe(['sessions', 'show', sessionId], { NATS_URL: server.url, NATS_NKEY: setup.seedFile('observer'), TROUPE_NAMESPACE: namespace, ...(setup.caFile ? { NATS_CA: setup.caFile } : {}) });
        expect(await shown.exited, shown.output()).toBe(0);
        expect(shown.output()).toContain(`session ${sessionId} · ended`);
      }, 60_000);

      it('serves the operator console as the operator with its controls, and as the observer read-only', async () => {
        for (const [role, readOnly] of [['operator', false], ['observer', true]] as const) {
          const served = await startConsoleServer({ nc: await as(role), namespace, port: 0, logger: silentLogger(), appDir: consoleAppDir });
          try {
            const health = (await (await fetch(new URL('/api/health', served.url))).json()) as { readOnly: boolean; nats: string };
            expect(health, role).toMatchObject({ readOnly, nats: 'connected' });
            const listed = (await (await fetch(new URL('/api/sessions', served.url))).json()) as { sessions: Array<{ sessionId: string }> };
            expect(listed.sessions.map((s) => s.sessionId), role).toContain(sessionId);
            const cancel = await fetch(new URL(`/api/sessions/${sessionId}/cancel`, served.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
            // The operator is told the session has ended; the observer that it may not send commands at all.
            expect([cancel.status, ((await cancel.json()) as { error: { code: string } }).error.code], role).toEqual(readOnly ? [403, 'read_only'] : [409, 'conflict']);
          } finally {
            await served.close();
          }
        }
      });

      it('does not let worker-files publish session events', async () => {
        const files = await as('worker-files');
        const subject = names.subjects.sessionEvents(sessionId);
        const refused = await publishRefusal(files, subject, () => files.publish(subject, encodeWireMessage({ type: 'session.finished' })));
        expect(refused).toMatchObject({ operation: 'publish', subject });
      });
    });
  }
});

describe('the process stack on its roles: approvals only an operator gives and only the orchestrator signs', () => {
  let stack: ProcessStack;
  const open: NatsConnection[] = [];
  beforeAll(async () => {
    stack = await startProcessStack({ auth: true, env: { TROUPE_REQUIRE_APPROVAL: 'files_write' } });
    await stack.startWorker('files');
  }, 90_000);
  afterAll(async () => {
    for (const nc of open) await nc.close().catch(() => undefined);
    await stack?.stop();
  });
  const as = async (role: string) => {
    const nc = await connectAs(stack.nats.url, stack.auth as AuthSetup, role);
    open.push(nc);
    return nc;
  };

  it('completes a session whose write an operator approved, recording the operator who signed, not the name the command gave', async () => {
    const names = wireNames(stack.namespace);
    const run = await startSession(stack.client, { namespace: stack.namespace, task: 'Please write the ledger file once.' });
    for await (const event of run.events) {
      if (event.type !== 'approval.requested') continue;
      // The client may not approve: NATS refuses it, and the command says so.
      const byClient = await stack.troupe(['sessions', 'approve', run.sessionId], stack.roleEnv('client'));
      expect(byClient.code).toBe(3);
      expect(byClient.output).toContain(`does not let this process's user publish to "${names.subjects.sessionControls(run.sessionId)}"`);
      // An operator's connection without the operator's signature is refused by the orchestrator.
      const unsigned = await approveSession(await as('operator'), run.sessionId, { namespace: stack.namespace, by: 'mallory' });
      expect(unsigned).toMatchObject({ accepted: false, reason: expect.stringContaining('not signed') });
      const approved = await stack.troupe(['sessions', 'approve', run.sessionId, '--by', 'mallory'], stack.roleEnv('operator'));
      expect(approved, approved.output).toMatchObject({ code: 0 });
    }
    expect(await run.finished).toMatchObject({ status: 'completed', output: 'wrote 12 bytes' });
    expect(readFileSync(join(stack.workspace, 'ledger.txt'), 'utf8')).toBe('written once');
    const shown = await stack.troupe(['sessions', 'show', run.sessionId], stack.roleEnv('observer'));
    expect(shown.output).toMatch(/turn 1 {2}approved by operator/);
    expect(shown.output).not.toContain('mallory');
    // None of the stack's own processes did anything its role does not allow (the only refusal was the client's approval).
    const violations = violationsIn(readFileSync(stack.natsLog as string, 'utf8'));
    const roles = stack.auth?.manifest.roles ?? {};
    for (const role of ['orchestrator', 'worker-files']) expect(violations.filter((line) => line.includes(roles[role] as string)), role).toEqual([]);
    expect(violations.filter((line) => line.includes(roles.client as string))).toEqual([expect.stringContaining(`Subject "${names.subjects.sessionControls(run.sessionId)}"`)]);
  }, 120_000);

  it('refuses a forged approval and a forged undo published with the orchestrator\'s permissions but without its signature', async () => {
    const names = wireNames(stack.namespace);
    const setup = stack.auth as AuthSetup;
    const orchestrator = await as('orchestrator');
    writeFileSync(join(stack.workspace, 'precious.txt'), 'keep me');
    let n = 0;
    const call = (overrides: Partial<ToolRequest> = {}): ToolRequest => ({
      type: 'tool.request', sessionId: 'forger', callId: `forged-${++n}`, tool: 'files_write',
      arguments: { path: 'precious.txt', content: 'forged' }, deadline: Date.now() + 10_000, ...overrides,
    });
    const send = async (subject: string, body: unknown) => {
      const reply = decodeWireMessage(ToolReply, (await orchestrator.request(subject, encodeWireMessage(body), { timeout: 10_000 })).data, 'reply');
      if (!reply.ok) throw new Error(reply.error);
      return reply.value;
    };
    const write = names.subjects.tool('files', 'files_write');
    const forbidden = (message: string) => ({ status: 'error', failure: { code: 'FORBIDDEN', message: expect.stringContaining(message) } });

    expect(await send(write, call())).toMatchObject(forbidden('carries none'));
    const unsigned = call({ approval: { by: 'operator', at: new Date().toISOString() } });
    expect(await send(write, unsigned)).toMatchObject(forbidden('carries no orchestrator signature'));
    // Signed, but by a key that is not an orchestrator's (the operator's own).
    const byOperator = call({ approval: { by: 'operator', at: '' } });
    (byOperator.approval as NonNullable<ToolRequest['approval']>).grant = signGrant(
      statementSigner(readNkeySeed(setup.seedFile('operator')).seed), approvalStatement(stack.namespace, byOperator, 'operator', byOperator.deadline),
    );
    expect(await send(write, byOperator)).toMatchObject(forbidden('not an orchestrator key'));
    expect(readFileSync(join(stack.workspace, 'precious.txt'), 'utf8')).toBe('keep me');

    const undo: ToolUndoRequest = {
      type: 'tool.undo', sessionId: 'forger', callId: 'forged-undo', tool: 'files_write', by: 'operator',
      compensation: { path: 'precious.txt', existed: false }, deadline: Date.now() + 10_000,
    };
    expect(await send(names.subjects.toolUndo('files', 'files_write'), undo)).toMatchObject(forbidden('carries no orchestrator signature'));
    expect(readFileSync(join(stack.workspace, 'precious.txt'), 'utf8')).toBe('keep me');

    // The same call, signed by the orchestrator's key, runs: the refusals were the signatures', not the pool's.
    const signed = call({ approval: { by: 'operator', at: '' } });
    (signed.approval as NonNullable<ToolRequest['approval']>).grant = signGrant(
      statementSigner(readNkeySeed(setup.seedFile('orchestrator')).seed), approvalStatement(stack.namespace, signed, 'operator', signed.deadline),
    );
    expect(await send(write, signed)).toMatchObject({ status: 'ok' });
    expect(readFileSync(join(stack.workspace, 'precious.txt'), 'utf8')).toBe('forged');
  }, 30_000);
});
