import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './natsServer.ts';

/** One server of a {@link NatsCluster}: its ports and store stay the same across kills and restarts. */
export interface NatsClusterNode {
  /** The server's name (`server_name`), as JetStream reports stream leaders and replicas. */
  readonly name: string;
  /** Where clients reach this server alone. */
  readonly url: string;
  readonly port: number;
  /** Where the other servers route to it. */
  readonly clusterPort: number;
  /** Its HTTP monitoring endpoint (`/healthz`, `/jsz`, `/routez`). */
  readonly monitorUrl: string;
  readonly storeDir: string;
  /** The running process's id; undefined while it is down. */
  readonly pid: number | undefined;
  /** Kills the server with SIGKILL, as a crashed machine would stop it; resolves once it has exited. */
  kill(): Promise<void>;
  /**
   * Starts the server again (killing it first if it runs) on the same ports and store, and
   * resolves once it has rejoined: its JetStream in contact with the meta leader, its copies of
   * streams caught up (`/healthz`), and the whole cluster in its view.
   */
  restart(): Promise<void>;
}

/** A cluster of `nats-server` processes a test (or `troupe up --cluster`) owns. */
export interface NatsCluster {
  /** The cluster's name (`cluster.name`). */
  readonly name: string;
  /** Every server's client URL. */
  readonly urls: readonly string[];
  /** The same, comma-separated: a `NATS_URL` that reaches whichever servers are up. */
  readonly servers: string;
  readonly nodes: readonly NatsClusterNode[];
  /** Stops every server (SIGTERM, then SIGKILL) and removes their stores unless `keepStore`. */
  stop(options?: { keepStore?: boolean }): Promise<void>;
}

/** How to start a cluster. */
export interface NatsClusterOptions {
  /** How many servers; 3 by default (JetStream needs a majority: with three, one may be down). */
  nodes?: number;
  /** The cluster's name; also the prefix of the servers' names (`<name>-n1`, …). */
  name?: string;
  /** A configuration file every server reads (`-c`), e.g. `troupe auth init`'s; ports, routes and stores come from the command line. */
  config?: string;
  /** The configuration requires TLS: the client URLs are `tls://…`. */
  tls?: boolean;
  /** The folder holding each server's store (`<storeRoot>/<server name>`); a fresh temporary one by default, removed by `stop()`. */
  storeRoot?: string;
  /** Where each server logs (`<logDir>/<server name>.log`); nowhere by default. */
  logDir?: string;
  /** Client ports to use, in node order; free ones for the rest. */
  ports?: readonly number[];
  /** How long to wait for the cluster to form; 60 s by default. */
  readyWithinMs?: number;
}

interface Health {
  ok: boolean;
  detail: string;
}

async function monitored<T>(monitorUrl: string, path: string): Promise<T> {
  const response = await fetch(`${monitorUrl}${path}`, { signal: AbortSignal.timeout(1_000) });
  return (await response.json()) as T;
}

/**
 * Whether the server is a full member of a cluster of `size`: healthy (`/healthz`: JetStream in
 * contact with the meta leader, its copies caught up), in a meta group of `size` servers with a
 * leader (`/jsz`), and telling clients about all `size` servers (`/varz` `connect_urls`: what
 * the replica count Troupe picks is read from).
 */
async function memberOf(monitorUrl: string, size: number): Promise<Health> {
  try {
    const health = await monitored<{ status?: string; error?: string }>(monitorUrl, '/healthz');
    if (health.status !== 'ok') return { ok: false, detail: health.error ?? health.status ?? 'unhealthy' };
    const meta = (await monitored<{ meta_cluster?: { leader?: string; cluster_size?: number } }>(monitorUrl, '/jsz')).meta_cluster;
    if (!meta?.leader) return { ok: false, detail: 'no JetStream meta leader yet' };
    if ((meta.cluster_size ?? 0) < size) return { ok: false, detail: `a meta group of ${meta.cluster_size ?? 0} of ${size} servers` };
    const advertised = new Set((await monitored<{ connect_urls?: string[] }>(monitorUrl, '/varz')).connect_urls ?? []).size;
    if (advertised < size) return { ok: false, detail: `${advertised} of ${size} servers advertised to clients` };
    return { ok: true, detail: `meta leader ${meta.leader}` };
  } catch (error) {
    return { ok: false, detail: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * Starts `nodes` `nats-server` processes (from `PATH`, or `NATS_SERVER_BIN`) on loopback, on free
 * ports: routes between every pair, one cluster name, a server name and a JetStream store of its
 * own for each. Resolves once the cluster has formed: every server healthy (`/healthz`: JetStream
 * in contact with a meta leader), in a meta group of all `nodes` servers and advertising all of
 * them to clients, so a stream of `nodes` replicas can be placed at once and a client connecting
 * anywhere sees the whole cluster. The caller stops it; nothing outlives `stop()`. For
 * tests and `troupe up --cluster`: a deployment runs its own NATS.
 *
 * @example
 * const cluster = await startNatsCluster();
 * try { ... connect({ servers: [...cluster.urls] }) ... await cluster.nodes[0].kill() ... } finally { await cluster.stop(); }
 */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const count = options.nodes ?? 3;
  if (!Number.isInteger(count) || count < 1) throw new Error(`a NATS cluster has a whole number of servers, at least 1, not ${count}`);
  const clusterName = options.name ?? 'troupe-test';
  const ownStoreRoot = options.storeRoot === undefined;
  const storeRoot = options.storeRoot ?? mkdtempSync(join(tmpdir(), 'troupe-nats-cluster-'));
  // A loaded machine (a CI run starting several clusters while another is killed) took over 30 s to elect a meta leader.
  const readyWithinMs = options.readyWithinMs ?? 60_000;
  const binary = process.env.NATS_SERVER_BIN ?? 'nats-server';
  if (options.logDir) mkdirSync(options.logDir, { recursive: true });

  const layout: Array<{ name: string; port: number; clusterPort: number; monitorPort: number; storeDir: string }> = [];
  for (let i = 0; i < count; i++) {
    const name = `${clusterName}-n${i + 1}`;
    layout.push({
      name,
      port: options.ports?.[i] ?? (await freePort()),
      clusterPort: await freePort(),
      monitorPort: await freePort(),
      storeDir: join(storeRoot, name),
    });
  }
  const routes = (self: string) => layout.filter((n) => n.name !== self).map((n) => `nats-route://127.0.0.1:${n.clusterPort}`).join(',');
  const scheme = options.tls ? 'tls' : 'nats';

  const nodes = layout.map((spec) => {
    let child: ChildProcess | undefined;
    let exited: Promise<void> = Promise.resolve();
    const monitorUrl = `http://127.0.0.1:${spec.monitorPort}`;
    const logFile = options.logDir ? join(options.logDir, `${spec.name}.log`) : undefined;
    const args = [
      ...(options.config ? ['-c', options.config] : []),
      '-a', '127.0.0.1', '-p', String(spec.port), '-m', String(spec.monitorPort), '-n', spec.name,
      '--cluster_name', clusterName, '--cluster', `nats://127.0.0.1:${spec.clusterPort}`,
      ...(count > 1 ? ['--routes', routes(spec.name)] : []),
      '-js', '-sd', spec.storeDir,
      ...(logFile ? ['-l', logFile] : []),
    ];
    const running = () => child !== undefined && child.exitCode === null && child.signalCode === null;
    const node = {
      name: spec.name,
      url: `${scheme}://127.0.0.1:${spec.port}`,
      port: spec.port,
      clusterPort: spec.clusterPort,
      monitorUrl,
      storeDir: spec.storeDir,
      get pid() {
        return running() ? child?.pid : undefined;
      },
      /** Spawns the process; resolves once it is running, not once it is ready. */
      async launch(): Promise<void> {
        if (running()) return;
        const started = spawn(binary, args, { stdio: 'ignore' });
        child = started;
        exited = new Promise<void>((resolve) => started.once('exit', () => resolve()));
        await new Promise<void>((resolve, reject) => {
          started.once('spawn', () => resolve());
          started.once('error', (error) => reject(new Error(`could not start ${binary} (install it: apt-get install -y nats-server)`, { cause: error })));
        });
      },
      /** Resolves once `check` passes for this server, failing early if it exits. */
      async waitFor(what: string, check: () => Promise<Health>, deadline: number): Promise<void> {
        let last = 'not asked yet';
        while (Date.now() < deadline) {
          if (!running()) throw new Error(`nats-server ${spec.name} exited (code ${child?.exitCode ?? child?.signalCode}) before ${what}${logFile ? `; see ${logFile}` : ''}`);
          const health = await check();
          if (health.ok) return;
          last = health.detail;
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error(`nats-server ${spec.name} did not get ${what} within ${readyWithinMs} ms (last: ${last})${logFile ? `; see ${logFile}` : ''}`);
      },
      async kill(): Promise<void> {
        if (!running()) return;
        // By PID, as the brief of a crash test asks: nothing gets the chance to flush or say goodbye.
        process.kill(child?.pid as number, 'SIGKILL');
        await exited;
      },
      async stopGracefully(): Promise<void> {
        if (!running()) return;
        child?.kill('SIGTERM');
        const timer = setTimeout(() => child?.kill('SIGKILL'), 3_000);
        await exited;
        clearTimeout(timer);
      },
      async restart(): Promise<void> {
        await node.kill();
        await node.launch();
        await node.waitFor('back in the cluster with its JetStream caught up', () => memberOf(monitorUrl, count), Date.now() + readyWithinMs);
      },
    };
    return node;
  });

  const stop = async ({ keepStore = false }: { keepStore?: boolean } = {}) => {
    await Promise.all(nodes.map((n) => n.stopGracefully()));
    if (!keepStore) {
      if (ownStoreRoot) rmSync(storeRoot, { recursive: true, force: true });
      else for (const n of nodes) rmSync(n.storeDir, { recursive: true, force: true });
    }
  };
  try {
    for (const node of nodes) await node.launch();
    const deadline = Date.now() + readyWithinMs;
    for (const node of nodes) await node.waitFor(`into a cluster of ${count} with a JetStream meta leader`, () => memberOf(node.monitorUrl, count), deadline);
  } catch (error) {
    await stop();
    throw error;
  }
  const urls = nodes.map((n) => n.url);
  return {
    name: clusterName,
    urls,
    servers: urls.join(','),
    nodes: nodes.map(({ name, url, port, clusterPort, monitorUrl, storeDir, kill, restart }, i) => ({
      name, url, port, clusterPort, monitorUrl, storeDir, kill, restart,
      get pid() {
        return nodes[i]?.pid;
      },
    })),
    stop,
  };
}
