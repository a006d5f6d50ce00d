import { exampleAgents } from '../agents/exampleAgents.ts';
import { exampleDomains } from '../domains/exampleDomains.ts';
import { authSetupFiles, seedFileName, writeAuthSetup } from './authSetup.ts';
import { readEnvironment } from './environment.ts';
import { parseCommandArgs } from './inspectArgs.ts';
import { UsageError } from './usageError.ts';

const usage = `usage: troupe auth init --out <dir> [--domains ${Object.keys(exampleDomains).join(',')}] [--agents ${Object.keys(exampleAgents).filter((a) => a !== 'assistant').join(',')}]
                        [--tls [--tls-host <name>]… [--server-dir <dir as the server sees it>]] [--force]
  writes <dir>/nats-server.conf (one nkey user per role, least privilege), a seed per role (<role>.nk),
  troupe-auth.json and troupe.env; the namespace is --namespace (TROUPE_NAMESPACE)`;

const options = {
  out: { type: 'string' },
  domains: { type: 'string' },
  agents: { type: 'string' },
  tls: { type: 'boolean', default: false },
  'tls-host': { type: 'string', multiple: true },
  'server-dir': { type: 'string' },
  force: { type: 'boolean', default: false },
} as const;

const listOf = (flag: string, value: string): string[] => {
  const items = value.split(',').map((item) => item.trim()).filter((item) => item !== '');
  if (items.length === 0) throw new UsageError(`${flag} needs names separated by commas\n${usage}`);
  return items;
};

/**
 * `troupe auth init --out <dir> …`: everything a deployment needs to run with least privilege on
 * the bus. Prints what it wrote and how to start the server and each process with its role.
 */
export async function authCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'init') throw new UsageError(usage);
  const { values } = parseCommandArgs(rest, options, usage);
  if (!values.out) throw new UsageError(`--out <dir> is required\n${usage}`);
  if (!values.tls && values['tls-host'] !== undefined) throw new UsageError(`--tls-host goes with --tls\n${usage}`);
  const env = readEnvironment();
  const domains = values.domains !== undefined ? listOf('--domains', values.domains) : Object.keys(exampleDomains);
  const agents = values.agents !== undefined ? listOf('--agents', values.agents) : ['analyst'];
  const setup = writeAuthSetup({
    out: values.out, namespace: env.TROUPE_NAMESPACE, domains, agents, tls: values.tls, force: values.force,
    ...(values['tls-host'] ? { tlsHosts: values['tls-host'] } : {}),
    ...(values['server-dir'] ? { serverDir: values['server-dir'] } : {}),
  });
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const roles = Object.keys(setup.manifest.roles);
  say(`wrote ${setup.dir}/: ${authSetupFiles.serverConfig}, ${roles.map(seedFileName).join(', ')} (owner-only), ${authSetupFiles.manifest}, ${authSetupFiles.environment}${setup.caFile ? ', ca.pem, server-cert.pem and their keys' : ''}`);
  say(`namespace ${setup.manifest.namespace}; roles: ${roles.join(', ')}`);
  say('');
  say(`start NATS:        nats-server -c ${setup.serverConfig} -sd <store dir>`);
  const url = setup.caFile ? `NATS_URL=tls://127.0.0.1:4222 NATS_CA=${setup.caFile} ` : '';
  say(`or the whole stack: ${url}troupe up --auth ${setup.dir}`);
  say(`each process with its role, e.g.: ${url}troupe worker calc --nkey ${setup.seedFile('worker-calc')}   (and the settings in ${authSetupFiles.environment})`);
  return 0;
}
