import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { connectToNats, type NatsAccessDeniedError } from '../transport/natsConnection.ts';
import { NatsCredentialsError, readNkeySeed, type NatsCredentials } from '../transport/natsCredentials.ts';
import { statementSigner, type StatementSigner } from '../transport/signatures.ts';
import { ConfigurationError, type Environment } from './environment.ts';

/** The credentials the `NATS_*` variables (or the flags that set them) describe. */
export function natsCredentialsOf(env: Environment): NatsCredentials {
  return {
    ...(env.NATS_USER !== undefined ? { user: env.NATS_USER } : {}),
    ...(env.NATS_PASSWORD !== undefined ? { password: env.NATS_PASSWORD } : {}),
    ...(env.NATS_TOKEN !== undefined ? { token: env.NATS_TOKEN } : {}),
    ...(env.NATS_NKEY !== undefined ? { nkeySeedFile: env.NATS_NKEY } : {}),
    ...(env.NATS_CREDS !== undefined ? { credsFile: env.NATS_CREDS } : {}),
    ...(env.NATS_CA !== undefined ? { tlsCaFile: env.NATS_CA } : {}),
    ...(env.NATS_CERT !== undefined ? { tlsCertFile: env.NATS_CERT } : {}),
    ...(env.NATS_KEY !== undefined ? { tlsKeyFile: env.NATS_KEY } : {}),
  };
}

/**
 * The signer of the process's own nkey (`NATS_NKEY`): an orchestrator signs the calls it was told
 * were approved with it, an operator its commands. Undefined without an nkey.
 */
export function nkeySignerOf(env: Environment): StatementSigner | undefined {
  if (env.NATS_NKEY === undefined) return undefined;
  try {
    return statementSigner(readNkeySeed(env.NATS_NKEY).seed);
  } catch (error) {
    throw new ConfigurationError(`NATS_NKEY: ${(error as Error).message}`);
  }
}

/**
 * What the CLI does when NATS refuses a process: one line on stderr saying which refusal, the log
 * flushed, exit code 3. Never a retry: a refusal is the deployment's configuration.
 */
export function exitOnAccessDenied(logger: Logger): (error: NatsAccessDeniedError) => void {
  return (error) => {
    process.stderr.write(`troupe: ${error.message}\n`);
    logger.flush(() => process.exit(3));
  };
}

/**
 * Connects a Troupe process to NATS with the environment's URL and credentials. A long-running
 * process (orchestrator, worker, specialist) ends on any refusal, a permission violation included,
 * rather than serve on deaf or mute; a command that runs once ends on a refusal of its
 * credentials, and a request its role may not make fails that command. Unusable credentials are a
 * {@link ConfigurationError} (exit 2).
 */
export async function connectProcess(env: Environment, options: { name: string; logger: Logger; longRunning: boolean }): Promise<NatsConnection> {
  try {
    return await connectToNats({
      url: env.NATS_URL,
      name: options.name,
      logger: options.logger,
      credentials: natsCredentialsOf(env),
      permissionViolations: options.longRunning ? 'fatal' : 'quiet',
      onAccessDenied: exitOnAccessDenied(options.logger),
      ...(env.TROUPE_JETSTREAM_REPLICAS !== undefined ? { jetStreamReplicas: env.TROUPE_JETSTREAM_REPLICAS } : {}),
      asyncTraces: env.TROUPE_NATS_ASYNC_TRACES,
    });
  } catch (error) {
    if (error instanceof NatsCredentialsError) throw new ConfigurationError(`NATS credentials: ${error.message}`);
    throw error;
  }
}
