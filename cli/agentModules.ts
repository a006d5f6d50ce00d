import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AgentDefinition } from '../agents/defineAgent.ts';
import { exampleAgents } from '../agents/exampleAgents.ts';
import { formatIssuePath } from '../tools/validation.ts';
import { ConfigurationError, type Environment } from './environment.ts';

/**
 * The agents this process knows: the examples, plus every agent a `TROUPE_AGENTS` module exports
 * (its named exports and default export, single agents or arrays, built with `defineAgent`); a
 * module's agent replaces an example of the same name. Anything in the module that is not a valid
 * agent stops the process with what is wrong.
 */
export async function loadAgents(env: Environment): Promise<Record<string, AgentDefinition>> {
  const agents: Record<string, AgentDefinition> = { ...exampleAgents };
  if (!env.TROUPE_AGENTS) return agents;
  const path = resolve(env.TROUPE_AGENTS);
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigurationError(`TROUPE_AGENTS: cannot load ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const exported = Object.entries(module).flatMap(([name, value]) => (Array.isArray(value) ? value.map((v, i) => [`${name}[${i}]`, v] as const) : [[name, value] as const]));
  if (exported.length === 0) throw new ConfigurationError(`TROUPE_AGENTS: ${path} exports no agents.`);
  for (const [name, value] of exported) {
    const parsed = AgentDefinition.safeParse(value);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${formatIssuePath(i.path)}: ${i.message}`).join('; ');
      throw new ConfigurationError(`TROUPE_AGENTS: export "${name}" of ${path} is not an agent (build it with defineAgent): ${problems}`);
    }
    agents[parsed.data.name] = parsed.data;
  }
  return agents;
}
