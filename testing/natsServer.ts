import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as connectTcp, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';

/** A nats-server child owned by a test: started on a free port with JetStream, stopped by its PID. */
export interface NatsServerProcess {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Stops the server (SIGTERM, then SIGKILL) and removes its store unless `keepStore`. */
  stop(options?: { keepStore?: boolean }): Promise<void>;
  /** Starts a new server on the same port and store, as after a crash or an upgrade. */
  restart(): Promise<NatsServerProcess>;
}

/** A TCP port on 127.0.0.1 that nothing listens on at the moment of asking. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Whether a NATS server greets a TCP connection on `port` with its INFO, whatever it then asks of clients (credentials, TLS). */
function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('data', (data) => done(data.toString().startsWith('INFO ')));
  });
}

async function waitUntilReachable(url: string, child: ChildProcess, deadlineMs: number, configured = false): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`nats-server exited with code ${child.exitCode} before accepting connections`);
    try {
      // A configured server may refuse an anonymous client, or want TLS: that it greets is enough.
      if (configured) {
        if (await greets(Number(new URL(url.replace(/^[a-z]+:/, 'http:')).port))) return;
        throw new Error('no INFO yet');
      }
      const nc = await connect({ servers: url, timeout: 500, reconnect: false });
      await nc.close();
      return;
    } catch (error) {
      lastError = error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nats-server at ${url} did not accept connections within ${deadlineMs} ms`, { cause: lastError });
}

/** How to start a test's nats-server. */
export interface NatsServerOptions {
  port?: number;
  storeDir?: string;
  /**
   * A configuration file (`-c`), e.g. the `nats-server.conf` `troupe auth init` writes; the port,
   * address and store still come from the command line.
   */
  config?: string;
  /** The configuration requires TLS: the URL is `tls://…`. */
  tls?: boolean;
  /** Where the server logs (`-l`), to read what it refused; nowhere when absent. */
  logFile?: string;
}

/**
 * Starts `nats-server` (from `PATH`, or `NATS_SERVER_BIN`) with JetStream on a free local port and a
 * fresh store, and resolves once it accepts connections. The caller stops it; nothing outlives a
 * `stop()`. For tests: a deployment runs its own NATS.
 *
 * @example
 * const nats = await startNatsServer();
 * try { ... connect({ servers: nats.url }) ... } finally { await nats.stop(); }
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerProcess> {
  const port = options.port ?? (await freePort());
  const storeDir = options.storeDir ?? mkdtempSync(join(tmpdir(), 'troupe-nats-'));
  const binary = process.env.NATS_SERVER_BIN ?? 'nats-server';
  const args = [
    ...(options.config ? ['-c', options.config] : []), '-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir,
    ...(options.logFile ? ['-l', options.logFile] : []),
  ];
  const child = spawn(binary, args, { stdio: 'ignore' });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', (error) =>
      reject(new Error(`could not start ${binary} (install it: apt-get install -y nats-server)`, { cause: error })),
    );
  });
  const url = `${options.tls ? 'tls' : 'nats'}://127.0.0.1:${port}`;
  await waitUntilReachable(url, child, 10_000, options.config !== undefined);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stopProcess = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
    await exited;
    clearTimeout(timer);
  };
  return {
    url,
    port,
    pid: child.pid as number,
    async stop({ keepStore = false } = {}) {
      await stopProcess();
      if (!keepStore) rmSync(storeDir, { recursive: true, force: true });
    },
    async restart() {
      await stopProcess();
      return await startNatsServer({ ...options, port, storeDir });
    },
  };
}
