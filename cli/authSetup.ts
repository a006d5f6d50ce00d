import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createUser } from '@nats-io/nkeys';
import * as z from 'zod';
import { roleName, roleOf, rolePermissions, type Role } from '../transport/rolePermissions.ts';
import { subjectTokenPattern, userInboxPrefix, wireNames } from '../transport/subjects.ts';
import { ConfigurationError } from './environment.ts';
import { natsServerConfig } from './natsServerConfig.ts';
import { certificateFiles, writeLocalCertificates } from './tlsCertificates.ts';

/** The files of an auth setup directory besides the seeds (`<role>.nk`) and, with TLS, the certificates. */
export const authSetupFiles = {
  serverConfig: 'nats-server.conf',
  manifest: 'troupe-auth.json',
  environment: 'troupe.env',
} as const;

/** What `troupe auth init` wrote, for whoever starts processes with it (`troupe up --auth`, tests). */
export const AuthManifest = z.object({
  version: z.literal(1),
  namespace: z.string(),
  /** Role name → its nkey public key; the seed is `<role>.nk` beside the manifest. */
  roles: z.record(z.string(), z.string()),
  tls: z.boolean(),
});
export type AuthManifest = z.infer<typeof AuthManifest>;

/** An auth setup directory, read back. */
export interface AuthSetup {
  readonly dir: string;
  readonly manifest: AuthManifest;
  /** The seed file of a role: `<dir>/<role>.nk`. */
  seedFile(role: string): string;
  /** The CA clients trust, with TLS. */
  readonly caFile?: string;
  readonly serverConfig: string;
}

/** The seed file's name of a role. */
export const seedFileName = (role: string): string => `${role}.nk`;

export interface AuthSetupOptions {
  out: string;
  namespace: string;
  /** Tool domains to make a `worker-<domain>` role for. */
  domains: readonly string[];
  /** Agents to make a `specialist-<agent>` role for. */
  agents: readonly string[];
  tls: boolean;
  /** Names and addresses the server certificate is for; 127.0.0.1 and localhost always. */
  tlsHosts?: readonly string[];
  /** Where the server sees the directory (its paths in the configuration); the directory itself when absent. */
  serverDir?: string;
  /** Replace the keys of an existing setup (every process then needs its new seed). */
  force?: boolean;
}

/**
 * Writes an auth setup into `out`: one nkey per role with its seed in `<role>.nk` (mode 0600), a
 * `nats-server.conf` that knows only their public keys and gives each role exactly its
 * permissions, the manifest and a `troupe.env` of the settings every process shares (the
 * orchestrator and operator public keys), and with `tls` a CA, a server certificate and the
 * configuration's `tls` block. Refuses to replace an existing setup's keys without `force`.
 */
export function writeAuthSetup(options: AuthSetupOptions): AuthSetup {
  const dir = resolve(options.out);
  const names = wireNames(options.namespace);
  for (const name of [...options.domains, ...options.agents]) {
    if (!subjectTokenPattern.test(name)) throw new ConfigurationError(`"${name}" cannot name a pool or agent: use letters, digits, "-" or "_"`);
  }
  const roles: Role[] = [
    { kind: 'orchestrator' },
    ...[...new Set(options.domains)].map((domain): Role => ({ kind: 'worker', domain })),
    ...[...new Set(options.agents)].map((agent): Role => ({ kind: 'specialist', agent })),
    { kind: 'client' }, { kind: 'operator' }, { kind: 'observer' },
  ];
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const existing = [authSetupFiles.manifest, ...roles.map((role) => seedFileName(roleName(role)))].filter((file) => existsSync(join(dir, file)));
  if (existing.length > 0 && !options.force) {
    throw new ConfigurationError(`${dir} already holds an auth setup (${existing.join(', ')}): --force replaces its keys, and every process then needs its new seed`);
  }
  const publicKeys: Record<string, string> = {};
  const users = roles.map((role) => {
    const pair = createUser();
    const name = roleName(role);
    const publicKey = pair.getPublicKey();
    const seedFile = join(dir, seedFileName(name));
    writeFileSync(seedFile, `${new TextDecoder().decode(pair.getSeed())}\n`, { mode: 0o600 });
    // writeFileSync's mode applies only to a new file: an older one keeps its own unless changed.
    chmodSync(seedFile, 0o600);
    publicKeys[name] = publicKey;
    return { role: name, publicKey, permissions: rolePermissions(names, role, userInboxPrefix(publicKey)) };
  });
  const serverDir = options.serverDir ?? dir;
  if (options.tls) writeLocalCertificates(dir, [...new Set(['127.0.0.1', 'localhost', ...(options.tlsHosts ?? [])])]);
  const config = natsServerConfig({
    header: [
      `Written by troupe auth init for namespace "${names.namespace}": one user per role, authenticated by its nkey`,
      '(this file holds public keys only; each seed is in <role>.nk), with exactly the subjects the role needs.',
      `Start: nats-server -c ${join(serverDir, authSetupFiles.serverConfig)} -sd <store dir> [-p <port>]`,
    ].join('\n'),
    users,
    ...(options.tls
      ? { tls: { certFile: join(serverDir, certificateFiles.serverCert), keyFile: join(serverDir, certificateFiles.serverKey), caFile: join(serverDir, certificateFiles.ca) } }
      : {}),
  });
  writeFileSync(join(dir, authSetupFiles.serverConfig), config);
  const manifest: AuthManifest = { version: 1, namespace: names.namespace, roles: publicKeys, tls: options.tls };
  writeFileSync(join(dir, authSetupFiles.manifest), `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(join(dir, authSetupFiles.environment), [
    '# What every Troupe process of this deployment shares (docker compose env_file, or `set -a; . ./troupe.env`).',
    '# Each process also needs NATS_NKEY=<its role>.nk.',
    `TROUPE_NAMESPACE=${names.namespace}`,
    `TROUPE_ORCHESTRATOR_KEYS=${publicKeys.orchestrator}`,
    `TROUPE_OPERATOR_KEYS=operator:${publicKeys.operator}`,
    '',
  ].join('\n'));
  return authSetupOf(dir, manifest);
}

function authSetupOf(dir: string, manifest: AuthManifest): AuthSetup {
  return {
    dir,
    manifest,
    seedFile: (role) => join(dir, seedFileName(role)),
    ...(manifest.tls ? { caFile: join(dir, certificateFiles.ca) } : {}),
    serverConfig: join(dir, authSetupFiles.serverConfig),
  };
}

/** Reads a setup `troupe auth init` wrote; a ConfigurationError says what is missing. */
export function readAuthSetup(dirArg: string): AuthSetup {
  const dir = resolve(dirArg);
  let parsed;
  try {
    parsed = AuthManifest.safeParse(JSON.parse(readFileSync(join(dir, authSetupFiles.manifest), 'utf8')));
  } catch (error) {
    throw new ConfigurationError(`${dir} holds no auth setup (${authSetupFiles.manifest}: ${(error as Error).message}); write one with troupe auth init --out ${dirArg}`);
  }
  if (!parsed.success) throw new ConfigurationError(`${join(dir, authSetupFiles.manifest)} is not an auth manifest: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  return authSetupOf(dir, parsed.data);
}

/**
 * The environment of a process that runs as `role` of the setup: its seed, the CA with TLS, the
 * orchestrator and operator keys, the setup's namespace; other credentials cleared, so none
 * inherited competes with the seed. Throws a ConfigurationError for a role the setup has none for.
 */
export function roleEnvironment(setup: AuthSetup, role: string): NodeJS.ProcessEnv {
  if (!roleOf(role)) throw new ConfigurationError(`"${role}" is not a role`);
  if (setup.manifest.roles[role] === undefined) {
    throw new ConfigurationError(`the auth setup in ${setup.dir} has no role ${role} (it has ${Object.keys(setup.manifest.roles).join(', ')}): write one with troupe auth init --domains/--agents naming it`);
  }
  const { orchestrator, operator } = setup.manifest.roles;
  return {
    NATS_NKEY: setup.seedFile(role),
    NATS_USER: '', NATS_PASSWORD: '', NATS_TOKEN: '', NATS_CREDS: '', NATS_CERT: '', NATS_KEY: '',
    NATS_CA: setup.caFile ?? '',
    TROUPE_NAMESPACE: setup.manifest.namespace,
    TROUPE_ORCHESTRATOR_KEYS: orchestrator ?? '',
    TROUPE_OPERATOR_KEYS: operator ? `operator:${operator}` : '',
  };
}
