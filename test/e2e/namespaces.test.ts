import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToolCatalog } from '../../actors/toolCalls/toolCatalog.ts';
import { orchestratorAnswers } from '../../client/orchestratorProbe.ts';
import { SessionEvent } from '../../transport/messages.ts';
import { testScriptsDir } from '../fixtures/inProcessStack.ts';
import { testNamespace } from '../fixtures/testNamespace.ts';
import { eventually, startTroupe, type TroupeProcess, processStartTimeoutMs } from '../fixtures/troupeProcess.ts';
import { freePort, startNatsServer, type NatsServerProcess } from '../../testing/natsServer.ts';

const finishedOf = (output: string) =>
  output.split('\n').filter((l) => l.startsWith('{')).map((l) => SessionEvent.parse(JSON.parse(l))).find((e) => e.type === 'session.finished');

describe('two deployments started from the command line on one nats-server', () => {
  let nats: NatsServerProcess;
  let nc: NatsConnection;
  const services: TroupeProcess[] = [];
  // Deployment a takes its namespace from TROUPE_NAMESPACE, deployment b from --namespace, which wins over it.
  const a = `${testNamespace()}-a`;
  const b = `${testNamespace()}-b`;
  let env: NodeJS.ProcessEnv;
  const troupe = async (args: string[]) => {
    const run = startTroupe(args, env);
    return { code: await run.exited, output: run.output() };
  };

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    const modelPort = await freePort();
    env = { NATS_URL: nats.url, TROUPE_NAMESPACE: a, OPENAI_BASE_URL: `http://127.0.0.1:${modelPort}/v1`, OPENAI_API_KEY: 'scripted', TROUPE_SCRIPTED_MODEL: '1' };
    services.push(startTroupe(['model', 'serve', '--port', String(modelPort), '--scripts', testScriptsDir], env));
    // The same pool and agent in both deployments; only the files pool's sandbox tells them apart.
    for (const [namespace, flag] of [[a, []], [b, ['--namespace', b]]] as const) {
      const workspace = mkdtempSync(join(tmpdir(), `troupe-${namespace}-`));
      writeFileSync(join(workspace, 'note.txt'), `written for ${namespace}`);
      const own = { ...env, TROUPE_WORKSPACE: workspace };
      services.push(startTroupe(['worker', 'files', ...flag], own), startTroupe([...flag, 'orchestrator'], own));
    }
    for (const namespace of [a, b]) {
      const catalog = new ToolCatalog({ nats: nc, namespace });
      await eventually(`the files pool of ${namespace}`, async () => {
        await catalog.refresh();
        return catalog.get('files_read') !== undefined;
      }, 30_000, services);
      await eventually(`the orchestrator of ${namespace}`, () => orchestratorAnswers(nc, { namespace }), processStartTimeoutMs, services);
    }
    await eventually('the scripted model answering', async () => (await fetch(`http://127.0.0.1:${modelPort}/healthz`).catch(() => undefined))?.ok === true, 30_000, services);
  }, 120_000);

  afterAll(async () => {
    for (const service of services.reverse()) await service.stop();
    await nc?.close();
    await nats?.stop();
  });

  it('runs each session on its own deployment\'s pool, and lists it only there', async () => {
    const inA = await troupe(['run', '--json', 'Please read the deployment note.']);
    const inB = await troupe(['run', '--json', '--namespace', b, 'Please read the deployment note.']);
    expect(finishedOf(inA.output)).toMatchObject({ status: 'completed', output: `the note says written for ${a}` });
    expect(finishedOf(inB.output)).toMatchObject({ status: 'completed', output: `the note says written for ${b}` });

    const listed = await troupe(['sessions', 'list', '--json', `--namespace=${b}`]);
    expect(listed.code).toBe(0);
    expect(listed.output.trim().split('\n').map((l) => (JSON.parse(l) as { sessionId: string }).sessionId)).toEqual([finishedOf(inB.output)?.sessionId]);
  }, 60_000);

  it('refuses a namespace that cannot prefix NATS names, before connecting to anything', async () => {
    const refused = await troupe(['sessions', 'list', '--namespace', 'Prod.EU']);
    expect(refused.code).toBe(2);
    expect(refused.output.trim()).toBe('troupe: --namespace "Prod.EU" is not a namespace: use a lower-case letter, then lower-case letters, digits, "-" or "_", at most 32 characters');
  });
});
