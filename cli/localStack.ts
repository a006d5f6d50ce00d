import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AuthorizationError, connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { ToolCatalog } from '../actors/toolCalls/toolCatalog.ts';
import { delegateToolName } from '../agents/defineAgent.ts';
import { exampleDomains, type ExampleDomain } from '../domains/exampleDomains.ts';
import { orchestratorAnswers } from '../client/orchestratorProbe.ts';
import { connectToNats, NatsAccessDeniedError, NatsAccessDenial } from '../transport/natsConnection.ts';
import { freePort } from '../testing/natsServer.ts';
import { startNatsCluster, type NatsCluster } from '../testing/natsCluster.ts';
import { automaticReplicasLimit } from '../transport/jetStreamReplicas.ts';
import { redactUrlCredentials } from '../observability/redactUrl.ts';
import { natsConnectSettings, type NatsCredentials } from '../transport/natsCredentials.ts';
import { readEnvironment, type Environment } from './environment.ts';
import { roleEnvironment, type AuthSetup } from './authSetup.ts';
import { natsCredentialsOf } from './natsSettings.ts';
import { UsageError } from './usageError.ts';

// main.ts in a checkout, main.js in the built package: whichever this module is.
const cliMain = fileURLToPath(new URL(`./main${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

/** A stack a `troupe demo` or `troupe up` started; {@link stop} ends exactly what it started. */
export interface LocalStack {
  readonly natsUrl: string;
  /** The operator console's page, when started with `console`. */
  readonly consoleUrl?: string;
  readonly modelUrl: string;
  readonly scriptedModel: boolean;
  readonly logDir: string;
  /** A connection for the caller's own client, closed by {@link stop}. */
  readonly nats: NatsConnection;
  stop(): Promise<void>;
}

/** What the stack could not start, said so a person knows what to do. */
export class StackStartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Whether a server answers at `url`; a server that refuses the credentials is there, and says so. */
async function reachable(url: string, credentials: NatsCredentials): Promise<boolean> {
  const settings = natsConnectSettings(url, credentials);
  try {
    const nc = await connect({ servers: settings.servers, timeout: 1_000, reconnect: false, ...settings.options });
    await nc.close();
    return true;
  } catch (error) {
    if (error instanceof AuthorizationError) throw new NatsAccessDeniedError(NatsAccessDenial.authentication, url, error);
    return false;
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, child?: ManagedProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.process.exitCode !== null) throw new StackStartError(`${what} exited during start-up; see ${child.logFile}`);
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new StackStartError(`${what} was not ready after ${timeoutMs / 1000} s${child ? `; see ${child.logFile}` : ''}`);
}

interface ManagedProcess {
  readonly name: string;
  readonly process: ChildProcess;
  readonly logFile: string;
}

/** The pool `--mcp-example` adds: the reference MCP server's tools as `everything_<tool>`. */
export const mcpExampleDomain = 'everything';
const mcpExamplePackage = '@modelcontextprotocol/server-everything';
const mcpExampleVersion = '2026.8.31';

/**
 * How the `--mcp-example` pool starts its server: with this Node, from the copy installed beside
 * Troupe (a checkout's dev dependency, or the Docker image's), else with npx from the npm registry.
 */
export function mcpExampleServerCommand(): string[] {
  try {
    const manifest = createRequire(import.meta.url).resolve(`${mcpExamplePackage}/package.json`);
    return [process.execPath, join(dirname(manifest), 'dist', 'index.js'), 'stdio'];
  } catch {
    return ['npx', '-y', `${mcpExamplePackage}@${mcpExampleVersion}`, 'stdio'];
  }
}

/**
 * The pool `--refund-desk` adds. Not started by default: the default assistant is offered every
 * tool the running pools serve, and issuing refunds is not something to offer it unasked.
 */
export const refundDeskDomain = 'refunds' satisfies ExampleDomain;

/** The example domains a stack starts a pool for: all of them but the refund desk's, unless `refundDesk`. */
export function stackDomains(options: { refundDesk?: boolean }): ExampleDomain[] {
  return (Object.keys(exampleDomains) as ExampleDomain[]).filter((domain) => domain !== refundDeskDomain || options.refundDesk === true);
}

let exampleToolNamesSeen: Map<string, string[]> | undefined;

/**
 * The tool names of the example pools `domains`, found by building every domain's tools once per
 * process: building `db`'s opens a copy of the sample shop that lives as long as the process, so
 * `troupe eval`, which starts a stack per case with faults, would otherwise keep one per stack.
 */
function exampleToolNames(workspace: string, domains: readonly ExampleDomain[]): string[] {
  exampleToolNamesSeen ??= new Map(Object.entries(exampleDomains).map(([domain, tools]) => [domain, tools({ workspace }).map((t) => t.name)]));
  const seen = exampleToolNamesSeen;
  return domains.flatMap((domain) => seen.get(domain) ?? []);
}

/** How many servers `troupe demo|up --cluster` starts: the fewest that keep a majority with one down. */
export const localClusterNodes = 3;

/**
 * The client ports `--cluster` gives its first servers: those of `natsUrl` (a `NATS_URL` a person
 * set; none when unset), 4222 for a server that names none. Throws a {@link UsageError} for a
 * `NATS_URL` that names a server on another machine or more servers than the cluster has: the
 * stack would not be on the cluster it says it started.
 */
export function localClusterPorts(natsUrl: string | undefined): number[] {
  if (natsUrl === undefined) return [];
  const shown = redactUrlCredentials(natsUrl);
  const servers = natsUrl.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '').map((entry) => {
    const parsed = new URL(entry.replace(/^[a-z]+:\/\//, 'http://'));
    return { host: parsed.hostname, port: Number(parsed.port || '4222') };
  });
  if (servers.some((s) => !['127.0.0.1', 'localhost'].includes(s.host))) {
    throw new UsageError(`--cluster starts its servers on this machine, but NATS_URL names ${shown}: leave out --cluster to use that NATS, or unset NATS_URL.`);
  }
  if (servers.length > localClusterNodes) {
    throw new UsageError(`--cluster starts ${localClusterNodes} servers, but NATS_URL names ${servers.length} (${shown}): name at most ${localClusterNodes}, or none.`);
  }
  return servers.map((s) => s.port);
}

/**
 * Starts the `--cluster` servers: {@link localClusterNodes} `nats-server`s on loopback, clustered,
 * each with its JetStream store under `logDir/nats-cluster` (kept between runs, as a single
 * server's is) and its log beside the stack's. With `NATS_URL` set (`natsUrl`), the first servers
 * take the ports it names ({@link localClusterPorts}), the rest free ones; without it, all take
 * free ones, so a NATS already on the default port is no obstacle. A `NATS_URL` that already
 * answers is a {@link StackStartError}: the stack would not be on the cluster it says it started.
 */
async function startLocalCluster(natsUrl: string | undefined, logDir: string, credentials: NatsCredentials, auth: AuthSetup | undefined): Promise<NatsCluster> {
  const ports = localClusterPorts(natsUrl);
  if (natsUrl !== undefined && (await reachable(natsUrl, credentials))) {
    throw new StackStartError(`--cluster starts its own ${localClusterNodes} servers, but NATS already answers at ${redactUrlCredentials(natsUrl)}: stop it, or leave out --cluster to use it as it is.`);
  }
  try {
    return await startNatsCluster({
      nodes: localClusterNodes,
      name: 'troupe-local',
      ports,
      storeRoot: join(logDir, 'nats-cluster'),
      logDir,
      ...(auth ? { config: auth.serverConfig, tls: auth.caFile !== undefined } : {}),
      readyWithinMs: 60_000,
    });
  } catch (error) {
    throw new StackStartError(
      `could not start a ${localClusterNodes}-node NATS cluster: ${error instanceof Error ? error.message : String(error)}. Is nats-server installed (Debian/Ubuntu: apt-get install -y nats-server; macOS: brew install nats-server)?`,
      { cause: error },
    );
  }
}

/**
 * Starts whatever of the local stack is not already running: a `nats-server` when `NATS_URL` is
 * unreachable (with `cluster`, always a three-node cluster of them on loopback, which every process
 * of the stack reaches through all three URLs), the scripted model unless a real endpoint is
 * configured, an orchestrator and `workersPerDomain` workers per example domain ({@link stackDomains}:
 * `refunds` only with `refundDesk`) and as many `analyst` specialists, each a separate process
 * logging to `logDir`. With `auth` (what `troupe auth init` wrote) the servers it starts enforce
 * the roles, and every process runs on its own role's seed: the stack's own connection (the
 * caller's client) as `client`.
 */
const consoleUrlOf = (port: number | undefined) => `http://127.0.0.1:${port ?? 7070}/`;

export async function startLocalStack(options: {
  env: Environment;
  logger: Logger;
  logDir: string;
  /** Members of each example pool and of the analyst's (2); as a function, by pool (`files`, …, `analyst`). */
  workersPerDomain?: number | ((pool: string) => number);
  auth?: AuthSetup;
  /** Start a three-node NATS cluster on loopback instead of one server. */
  cluster?: boolean;
  /** Also start the `everything` pool, backed by the reference MCP server (see {@link mcpExampleServerCommand}). */
  mcpExample?: boolean;
  /** Also start the `refunds` pool ({@link refundDeskDomain}), whose refunds_issue every agent offered all tools can then call. */
  refundDesk?: boolean;
  /** Also serve the operator console (`troupe console`) on this port of 127.0.0.1, as the operator role. */
  console?: { port: number };
  /** Variables for every process it starts, over this process's own (`TROUPE_FAULTS`, `TROUPE_SCRIPTS`, …); undefined removes one. */
  childEnv?: NodeJS.ProcessEnv;
  say: (line: string) => void;
}): Promise<LocalStack> {
  const { env, say, auth } = options;
  if (auth && auth.manifest.namespace !== env.TROUPE_NAMESPACE) {
    throw new StackStartError(`the auth setup in ${auth.dir} is for namespace ${auth.manifest.namespace}, not ${env.TROUPE_NAMESPACE}: its permissions name the other namespace's subjects`);
  }
  // Without a setup, every process connects as the environment says (NATS_NKEY, NATS_USER, … or nothing).
  const asRole = (role: string): NodeJS.ProcessEnv => (auth ? roleEnvironment(auth, role) : {});
  const clientCredentials = auth ? natsCredentialsOf(readEnvironment({ ...process.env, ...asRole('client') })) : natsCredentialsOf(env);
  const logDir = resolve(options.logDir);
  mkdirSync(logDir, { recursive: true });
  const children: ManagedProcess[] = [];
  const launch = (name: string, command: string, args: string[], childEnv: NodeJS.ProcessEnv): Promise<ManagedProcess> => {
    const logFile = join(logDir, `${name}.log`);
    const fd = openSync(logFile, 'a');
    const child = spawn(command, args, { env: childEnv, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const managed = { name, process: child, logFile };
    children.push(managed);
    return new Promise((ok, fail) => {
      child.once('spawn', () => ok(managed));
      child.once('error', (error) => fail(error));
    });
  };
  let cluster: NatsCluster | undefined;
  const stopAll = async () => {
    // Orchestrator first (sessions finish), then workers (they drain), then the model and NATS.
    for (const managed of [...children].reverse()) {
      const child = managed.process;
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    // The cluster last: every process above used it. Its stores stay, as a single server's does.
    await cluster?.stop({ keepStore: true });
  };

  try {
    let natsUrl = env.NATS_URL;
    if (options.cluster) {
      // The ports a person asked for, if any: the default URL's port may well be taken by another NATS.
      cluster = await startLocalCluster(process.env.NATS_URL ? natsUrl : undefined, logDir, clientCredentials, auth);
      natsUrl = cluster.servers;
      await waitFor('the NATS cluster', () => reachable(natsUrl, clientCredentials), 10_000);
      say(`started a ${cluster.nodes.length}-node NATS cluster on ${natsUrl} (${cluster.nodes.map((n) => n.name).join(', ')}; JetStream stores in ${join(logDir, 'nats-cluster')}, logs beside the stack's; streams and buckets at ${env.TROUPE_JETSTREAM_REPLICAS ?? Math.min(cluster.nodes.length, automaticReplicasLimit)} replicas${auth ? `; roles enforced by ${auth.serverConfig}` : ''})`);
    } else if (!(await reachable(natsUrl, clientCredentials))) {
      const url = new URL(natsUrl.replace(/^nats:/, 'http:'));
      if (!['127.0.0.1', 'localhost'].includes(url.hostname)) {
        throw new StackStartError(`NATS is not reachable at ${redactUrlCredentials(natsUrl)}, and it is not a local address this command could start a server on.`);
      }
      const port = url.port || '4222';
      natsUrl = `${auth?.caFile ? 'tls' : 'nats'}://127.0.0.1:${port}`;
      const store = join(logDir, 'nats-store');
      try {
        const config = auth ? ['-c', auth.serverConfig] : [];
        const managed = await launch('nats-server', 'nats-server', [...config, '-a', '127.0.0.1', '-p', port, '-js', '-sd', store], process.env);
        await waitFor('nats-server', () => reachable(natsUrl, clientCredentials), 10_000, managed);
      } catch (error) {
        if (error instanceof StackStartError) throw error;
        throw new StackStartError(
          `NATS is not reachable at ${natsUrl} and nats-server is not installed. Install it (Debian/Ubuntu: apt-get install -y nats-server; macOS: brew install nats-server) or set NATS_URL to a running server.`,
          { cause: error },
        );
      }
      say(`started nats-server on ${natsUrl} (JetStream store in ${store}${auth ? `, roles enforced by ${auth.serverConfig}` : ''})`);
    } else {
      say(`using NATS at ${redactUrlCredentials(natsUrl)}`);
    }

    const scriptedModel = !env.OPENAI_BASE_URL && !env.OPENAI_API_KEY;
    let modelUrl = env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1';
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...options.childEnv, NATS_URL: natsUrl, TROUPE_NAMESPACE: env.TROUPE_NAMESPACE };
    if (scriptedModel) {
      const port = await freePort();
      // The model server never touches NATS: it gets no role.
      const managed = await launch('model', process.execPath, [cliMain, 'model', 'serve', '--port', String(port)], childEnv);
      modelUrl = `http://127.0.0.1:${port}/v1`;
      await waitFor('the scripted model', async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok === true, 15_000, managed);
      Object.assign(childEnv, { OPENAI_BASE_URL: modelUrl, OPENAI_API_KEY: 'scripted', TROUPE_SCRIPTED_MODEL: '1' });
      say(`started the scripted model on ${modelUrl} (set OPENAI_BASE_URL or OPENAI_API_KEY to use a real one)`);
    } else {
      say(`using the model endpoint ${modelUrl}`);
    }

    const given = options.workersPerDomain ?? 2;
    const membersOf = typeof given === 'number' ? () => given : given;
    const domains = stackDomains({ refundDesk: options.refundDesk === true });
    for (const domain of domains) {
      for (let i = 1; i <= membersOf(domain); i++) await launch(`worker-${domain}-${i}`, process.execPath, [cliMain, 'worker', domain], { ...childEnv, ...asRole(`worker-${domain}`) });
    }
    for (let i = 1; i <= membersOf('analyst'); i++) {
      await launch(`specialist-analyst-${i}`, process.execPath, [cliMain, 'worker', '--agent', 'analyst'], { ...childEnv, ...asRole('specialist-analyst') });
    }
    if (options.mcpExample) {
      for (let i = 1; i <= membersOf(mcpExampleDomain); i++) {
        await launch(`worker-${mcpExampleDomain}-${i}`, process.execPath, [cliMain, 'worker', mcpExampleDomain, '--mcp', '--', ...mcpExampleServerCommand()], { ...childEnv, ...asRole(`worker-${mcpExampleDomain}`) });
      }
    }
    const orchestrator = await launch('orchestrator', process.execPath, [cliMain, 'orchestrator'], { ...childEnv, ...asRole('orchestrator') });
    const consoleProcess = options.console
      ? await launch('console', process.execPath, [cliMain, 'console', '--port', String(options.console.port)], { ...childEnv, ...asRole('operator') })
      : undefined;

    const nats = await connectToNats({ url: natsUrl, name: 'troupe-stack', logger: options.logger, credentials: clientCredentials });
    const catalog = new ToolCatalog({ nats, namespace: env.TROUPE_NAMESPACE, logger: options.logger });
    const expected = [...exampleToolNames(resolve(env.TROUPE_WORKSPACE), domains), delegateToolName('analyst'), ...(options.mcpExample ? [`${mcpExampleDomain}_echo`] : [])];
    // Generous: seven Node processes starting at once on a small, busy machine can take most of a minute.
    const readyWithinMs = 90_000;
    try {
      await catalog.waitFor(expected, readyWithinMs);
      await waitFor(
        'the orchestrator',
        () => orchestratorAnswers(nats, { namespace: env.TROUPE_NAMESPACE }),
        readyWithinMs,
        orchestrator,
      );
      if (consoleProcess) {
        await waitFor('the operator console', async () => (await fetch(`${consoleUrlOf(options.console?.port)}api/health`).catch(() => undefined))?.ok === true, readyWithinMs, consoleProcess);
      }
    } finally {
      catalog.stop();
    }
    const members = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
    const pools = typeof given === 'number'
      ? `${members(given, 'worker')} for each of ${domains.join(', ')} and ${members(given, 'analyst specialist')}`
      : `workers (${domains.map((d) => `${d} ×${membersOf(d)}`).join(', ')}) and ${members(membersOf('analyst'), 'analyst specialist')}`;
    if (options.mcpExample) say(`started ${members(membersOf(mcpExampleDomain), 'member')} of the ${mcpExampleDomain} pool, each serving its own reference MCP server (${mcpExampleServerCommand().join(' ')}) as ${mcpExampleDomain}_<tool>`);
    if (options.refundDesk) say(`started ${members(membersOf(refundDeskDomain), 'member')} of the ${refundDeskDomain} pool (--refund-desk): refunds_issue records each order's one refund in ${join(resolve(childEnv.TROUPE_WORKSPACE ?? env.TROUPE_WORKSPACE), 'refunds')}, and agents offered every tool, the assistant too, can call it`);
    say(`started an orchestrator, ${pools} in namespace ${env.TROUPE_NAMESPACE} (logs in ${logDir})`);
    return {
      natsUrl,
      ...(options.console ? { consoleUrl: consoleUrlOf(options.console.port) } : {}),
      modelUrl,
      scriptedModel,
      logDir,
      nats,
      async stop() {
        await nats.drain().catch(() => undefined);
        await stopAll();
      },
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
