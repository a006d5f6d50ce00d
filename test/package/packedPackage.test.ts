import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startNatsServer, type NatsServerProcess } from '../../testing/natsServer.ts';

const checkout = fileURLToPath(new URL('../..', import.meta.url));
const execFileAsync = promisify(execFile);
// The project's Node and npm, first on PATH, as a user's would be: `#!/usr/bin/env node` finds it.
const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false', NO_COLOR: '1' };
delete env.NODE_OPTIONS;
delete env.TROUPE_AGENTS;

// The machine's own Node, when it is older than Troupe supports (Debian's is): the bin must say so.
const systemNode = '/usr/bin/node';
const systemNodeVersion = existsSync(systemNode) ? execFileSync(systemNode, ['--version']).toString().trim() : '';
const systemNodeIsTooOld = /^v(1\d|2[01])\.|^v22\.(\d|1[0-7])\./.test(systemNodeVersion);

async function sh(command: string, args: string[], cwd: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number; output: string; stdout: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(command, args, { cwd, env: { ...env, ...extraEnv }, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, output: stdout + stderr, stdout };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : 1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}`, stdout: failed.stdout ?? '' };
  }
}

async function succeed(command: string, args: string[], cwd: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<string> {
  const { code, output } = await sh(command, args, cwd, extraEnv);
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} (in ${cwd}) exited with ${code}:\n${output.slice(-4000)}`);
  return output;
}

const fxModule = `import { defineTool } from 'troupe';
import * as z from 'zod';

export const convert = defineTool({
  name: 'fx_convert',
  description: 'Converts an amount between currencies.',
  input: z.object({ amount: z.number(), from: z.string(), to: z.string() }),
  output: z.object({ amount: z.number() }),
  handler: ({ amount, from, to }) => ({ amount: from === 'EUR' && to === 'USD' ? amount * 1.08 : amount }),
});
`;

// A user's own process, written against the public API only: connect, serve a pool, drain on SIGTERM.
const poolScript = `import { connectToNats, createLogger, defineTool, startWorker } from 'troupe';
import * as z from 'zod';

const lookup = defineTool({
  name: 'kb_lookup',
  description: 'Looks a word up.',
  input: z.object({ word: z.string() }),
  output: z.object({ meaning: z.string() }),
  handler: ({ word }) => ({ meaning: word === 'troupe' ? 'a company of players' : 'unknown' }),
});
const logger = createLogger({ name: 'kb-pool' });
const nc = await connectToNats({ url: process.env.NATS_URL, name: 'kb-pool', logger });
const worker = await startWorker({ domain: 'kb', tools: [lookup], nats: nc, logger, namespace: process.env.TROUPE_NAMESPACE });
console.log('kb pool ready');
process.once('SIGTERM', async () => { await worker.stop(); await nc.drain(); });
`;

const agentsModule = `import { defineAgent } from 'troupe';
export const cashier = defineAgent({ name: 'cashier', instructions: 'Convert money with fx_convert.', tools: ['fx_*'] });
`;

const script = {
  name: 'packed-convert',
  match: { userIncludes: 'packed convert' },
  steps: [
    { toolCalls: [{ id: 'call_fx', name: 'fx_convert', arguments: { amount: 100, from: 'EUR', to: 'USD' } }] },
    { content: 'That is {{tool:call_fx:result.amount}} USD.' },
  ],
};

const lookupScript = {
  name: 'packed-lookup',
  match: { userIncludes: 'packed lookup' },
  steps: [
    { toolCalls: [{ id: 'call_kb', name: 'kb_lookup', arguments: { word: 'troupe' } }] },
    { content: 'A troupe is {{tool:call_kb:result.meaning}}.' },
  ],
};

const consumerSource = `import { defineAgent, defineTool, startWorker, startOrchestrator, startSession, connectToNats, createLogger, type ToolDefinition, type SessionRun } from 'troupe';
import { startTestDeployment, startNatsServer, type TestDeployment } from 'troupe/testing';
import * as z from 'zod';

const lookup: ToolDefinition = defineTool({
  name: 'kb_lookup',
  description: 'Looks a key up.',
  input: z.object({ key: z.string() }),
  output: z.object({ value: z.string() }),
  handler: ({ key }, { signal }) => ({ value: signal.aborted ? '' : key.toUpperCase() }),
});
const agent = defineAgent({ name: 'helper', instructions: 'Help.', tools: ['kb_*'] });
const deployment: Promise<TestDeployment> = startTestDeployment({ domains: { kb: [lookup] }, agents: [agent] });
const started: (run: SessionRun) => string = (run) => run.sessionId;
export { deployment, started, startWorker, startOrchestrator, startSession, connectToNats, createLogger, startNatsServer };
`;

/**
 * Troupe as its users get it: the tarball npm would publish, installed into a fresh project with
 * production dependencies only, and used there with plain Node — no checkout, no wrapper.
 */
describe('the packed package', () => {
  const work = mkdtempSync(join(tmpdir(), 'troupe-packed-'));
  const project = join(work, 'project');
  let tarball: string;
  let nats: NatsServerProcess;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    // `npm pack` runs prepack, which builds dist/ from this checkout.
    await succeed('npm', ['pack', '--pack-destination', work], checkout);
    tarball = join(work, readdirSync(work).find((f) => f.endsWith('.tgz')) ?? 'no tarball was written');
    mkdirSync(project);
    await succeed('npm', ['init', '-y'], project);
    await succeed('npm', ['pkg', 'set', 'type=module'], project);
    await succeed('npm', ['install', '--omit=dev', tarball], project);
    nats = await startNatsServer();
  }, 300_000);

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await nats?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('holds the built code and what it reads, and no tests, fixtures, benchmarks or sources', async () => {
    const listing = await succeed('tar', ['tzf', tarball], work);
    const files = listing.trim().split('\n').map((f) => f.replace(/^package\//, ''));
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'bin/troupe.cjs', 'dist/index.js', 'dist/index.d.ts', 'dist/testing/index.js', 'dist/cli/main.js', 'dist/domains/db/shop.sql', 'dist/scriptedModel/scripts/echo.json', 'dist/starter/tools/fx.ts', 'dist/console/app/dist/index.html']));
    // The starter's own test is a template the user gets, not a test of Troupe's.
    const shipped = files.filter((f) => !f.startsWith('dist/starter/'));
    expect(shipped.filter((f) => /(^|\/)(test|tests|fixtures|bench|\.troupe|\.toolchain|node_modules)\//.test(f) || /\.test\.[jt]s$/.test(f))).toEqual([]);
    expect(shipped.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    console.info(`troupe tarball: ${(statSync(tarball).size / 1024).toFixed(0)} kB, ${files.length} files`);
  });

  it('imports the public API and troupe/testing with plain node', async () => {
    const output = await succeed('node', ['--input-type=module', '-e', `
      const troupe = await import('troupe');
      const testing = await import('troupe/testing');
      console.log(JSON.stringify({ main: ['defineTool', 'defineAgent', 'startWorker', 'startOrchestrator', 'startSession', 'connectToNats', 'startTelemetry'].filter((n) => typeof troupe[n] !== 'function'), testing: Object.keys(testing).sort() }));
    `], project);
    expect(JSON.parse(output)).toEqual({ main: [], testing: ['bundledScriptsDir', 'freePort', 'loadScripts', 'startNatsCluster', 'startNatsServer', 'startScriptedModelServer', 'startTestDeployment'] });
  });

  it('runs sessions on a pool served from the user\'s module by the installed troupe command, and on a pool the user\'s own script serves', async () => {
    writeFileSync(join(project, 'fx.mjs'), fxModule);
    writeFileSync(join(project, 'pool.mjs'), poolScript);
    writeFileSync(join(project, 'agents.mjs'), agentsModule);
    mkdirSync(join(project, 'scripts'));
    writeFileSync(join(project, 'scripts', 'convert.json'), JSON.stringify(script));
    writeFileSync(join(project, 'scripts', 'lookup.json'), JSON.stringify(lookupScript));
    const troupe = join(project, 'node_modules', '.bin', 'troupe');
    const modelPort = await freePort();
    const deployment = { NATS_URL: nats.url, OPENAI_BASE_URL: `http://127.0.0.1:${modelPort}/v1`, OPENAI_API_KEY: 'scripted', TROUPE_MODEL: 'scripted', TROUPE_NAMESPACE: 'packed' };
    const outputs = new Map<ChildProcess, string>();
    const start = (args: string[], command = troupe) => {
      const child = spawn(command, args, { cwd: project, env: { ...env, ...deployment }, stdio: ['ignore', 'pipe', 'pipe'] });
      outputs.set(child, '');
      child.stdout?.on('data', (c: Buffer) => outputs.set(child, outputs.get(child) + c.toString()));
      child.stderr?.on('data', (c: Buffer) => outputs.set(child, outputs.get(child) + c.toString()));
      children.push(child);
      return child;
    };
    const until = async (child: ChildProcess, text: string) => {
      const deadline = Date.now() + 30_000;
      while (!outputs.get(child)?.includes(text)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`"${text}" never appeared:\n${outputs.get(child)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await until(start(['model', 'serve', '--port', String(modelPort), '--scripts', './scripts']), 'scripted model listening');
    await until(start(['worker', 'fx', '--module', './fx.mjs']), 'worker serving fx');
    await until(start(['pool.mjs'], 'node'), 'kb pool ready');
    await until(start(['orchestrator', '--agents', './agents.mjs']), 'orchestrator ready');
    const run = await sh(troupe, ['run', '--json', '--timeout', '60', 'a packed convert of 100 EUR'], project, deployment);
    const finished = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}');
    expect({ code: run.code, status: finished.status, output: finished.output, toolCalls: finished.toolCalls }).toEqual({ code: 0, status: 'completed', output: 'That is 108 USD.', toolCalls: 1 });
    const lookup = await sh(troupe, ['run', '--json', '--agent', 'assistant', '--timeout', '60', 'a packed lookup of troupe'], project, deployment);
    const lookedUp = JSON.parse(lookup.stdout.trim().split('\n').at(-1) ?? '{}');
    expect({ code: lookup.code, status: lookedUp.status, output: lookedUp.output }).toEqual({ code: 0, status: 'completed', output: 'A troupe is a company of players.' });

    // The operator console the package ships: its page built in, its API over the same deployment.
    const consolePort = await freePort();
    await until(start(['console', '--port', String(consolePort)]), 'operator console at');
    const page = await fetch(`http://127.0.0.1:${consolePort}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script');
    const listed = (await (await fetch(`http://127.0.0.1:${consolePort}/api/sessions`)).json()) as { sessions: Array<{ sessionId: string; outcome: string }> };
    expect(listed.sessions.map((s) => s.outcome)).toEqual(['completed', 'completed']);
    expect(listed.sessions.map((s) => s.sessionId).sort()).toEqual([finished.sessionId, lookedUp.sessionId].sort());
  }, 120_000);

  it('stops with one clear line (exit 2) on a module that cannot be served', async () => {
    writeFileSync(join(project, 'wrong.mjs'), fxModule.replace("'fx_convert'", "'money_convert'"));
    const troupe = join(project, 'node_modules', '.bin', 'troupe');
    const outside = await sh(troupe, ['worker', 'fx', '--module', './wrong.mjs'], project, { NATS_URL: nats.url });
    expect(outside.code).toBe(2);
    expect(outside.output.trim().split('\n')).toEqual([expect.stringMatching(/^troupe: --module: tool "money_convert" .* belongs to domain "money", not "fx"/)]);
    const missing = await sh(troupe, ['worker', 'fx', '--module', './absent.mjs'], project, { NATS_URL: nats.url });
    expect({ code: missing.code, output: missing.output.trim() }).toEqual({ code: 2, output: `troupe: --module: cannot load ${join(project, 'absent.mjs')}: there is no such file.` });
  });

  it('type-checks a TypeScript consumer against the shipped declarations', async () => {
    writeFileSync(join(project, 'consumer.ts'), consumerSource);
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'es2024', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: false,
        types: ['node'], typeRoots: [join(checkout, 'node_modules', '@types')],
      },
      files: ['consumer.ts'],
    }));
    await succeed(join(checkout, 'node_modules', '.bin', 'tsc'), ['--noEmit', '-p', '.'], project);
  }, 120_000);

  it.skipIf(!systemNodeIsTooOld)('says which Node to install on an older one (exit 2)', async () => {
    const old = await sh(systemNode, [join(project, 'node_modules', 'troupe', 'bin', 'troupe.cjs'), '--help'], project);
    expect(old.code).toBe(2);
    expect(old.output).toMatch(/^troupe: Node\.js 22\.18\.0 or newer is needed \(this is \d+\.\d+\.\d+\)\.\nInstall Node\.js 24 LTS/);
  });

  it('writes a starter with npx troupe init whose own test passes', async () => {
    await succeed('npx', ['troupe', 'init', 'starter'], project);
    const starter = join(project, 'starter');
    // Troupe is not on the registry in this test: the starter takes the tarball in its place.
    await succeed('npm', ['install', tarball], starter);
    await succeed('npm', ['run', 'typecheck'], starter);
    const tested = await succeed('npm', ['test'], starter);
    expect(tested).toMatch(/Tests\s+2 passed/);
  }, 300_000);
});
