import { AgentDefinition } from '../agents/defineAgent.ts';
import { exampleAgents } from '../agents/exampleAgents.ts';
import { formatIssuePath } from '../tools/validation.ts';
import { ConfigurationError, type Environment } from './environment.ts';
import { importUserModule } from './userModules.ts';

/**
 * The agents this process knows: the examples, plus every agent a module exports — the `--agents`
 * flag's (`agentsFlag`), else `TROUPE_AGENTS`'s — as named exports or the default export, single
 * agents or arrays, built with `defineAgent`; a module's agent replaces an example of the same
 * name. The module's agents come first, in the order it exports them (the orchestrator's default
 * agent is the first one). Anything in the module that is not a valid agent stops the process with
 * what is wrong.
 */
export async function loadAgents(env: Environment, agentsFlag?: string): Promise<Record<string, AgentDefinition>> {
  const file = agentsFlag ?? env.TROUPE_AGENTS;
  const setting = agentsFlag ? '--agents' : 'TROUPE_AGENTS';
  if (!file) return { ...exampleAgents };
  const { path, exports } = await importUserModule(setting, file);
  if (exports.length === 0) throw new ConfigurationError(`${setting}: ${path} exports no agents.`);
  const fromModule: Record<string, AgentDefinition> = {};
  for (const { name, value } of exports) {
    const parsed = AgentDefinition.safeParse(value);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${formatIssuePath(i.path)}: ${i.message}`).join('; ');
      throw new ConfigurationError(`${setting}: export "${name}" of ${path} is not an agent (build it with defineAgent): ${problems}`);
    }
    fromModule[parsed.data.name] = parsed.data;
  }
  return { ...fromModule, ...Object.fromEntries(Object.entries(exampleAgents).filter(([name]) => !(name in fromModule))) };
}
