import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadAgents } from '../../cli/agentModules.ts';
import { ConfigurationError, readEnvironment } from '../../cli/environment.ts';

const testAgents = fileURLToPath(new URL('../fixtures/agents/specialistTestAgents.ts', import.meta.url));
const defineAgentModule = fileURLToPath(new URL('../../agents/defineAgent.ts', import.meta.url));

function moduleWith(source: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'troupe-agents-')), 'agents.ts');
  writeFileSync(file, source);
  return file;
}

async function loadingErrorOf(path: string): Promise<ConfigurationError> {
  const error = await loadAgents(readEnvironment({ TROUPE_AGENTS: path })).then(() => undefined, (e: unknown) => e);
  if (!(error instanceof ConfigurationError)) throw new Error(`expected a ConfigurationError, got ${String(error)}`);
  return error;
}

describe('loadAgents', () => {
  it('knows the example agents when no module is given', async () => {
    expect(Object.keys(await loadAgents(readEnvironment({})))).toEqual(['assistant', 'analyst', 'refund_desk', 'guarded_assistant']);
  });

  it('adds every agent a TROUPE_AGENTS module exports', async () => {
    const agents = await loadAgents(readEnvironment({ TROUPE_AGENTS: testAgents }));
    expect(Object.keys(agents).sort()).toEqual(['analyst', 'assistant', 'coordinator', 'guarded_assistant', 'planner', 'refund_desk', 'router', 'shallow']);
    expect(agents.router?.routing?.rules).toHaveLength(2);
    expect(agents.shallow?.maxDelegationDepth).toBe(1);
  });

  it('takes arrays and a default export, and lets a module replace an example agent', async () => {
    const path = moduleWith(`import { defineAgent } from '${defineAgentModule}';
export default [defineAgent({ name: 'analyst', instructions: 'My own analyst.' }), defineAgent({ name: 'writer', instructions: 'Writes.' })];`);
    const agents = await loadAgents(readEnvironment({ TROUPE_AGENTS: path }));
    expect(agents.analyst?.instructions).toBe('My own analyst.');
    expect(agents.writer?.name).toBe('writer');
  });

  it('takes the --agents flag over TROUPE_AGENTS, with the module\'s agents first (the first is the orchestrator\'s default)', async () => {
    const path = moduleWith(`import { defineAgent } from '${defineAgentModule}';
export const fx = defineAgent({ name: 'fx', instructions: 'Converts money.' });`);
    expect(Object.keys(await loadAgents(readEnvironment({ TROUPE_AGENTS: '/nonexistent/agents.ts' }), path))).toEqual(['fx', 'assistant', 'analyst', 'refund_desk', 'guarded_assistant']);
    const error = await loadAgents(readEnvironment({}), '/nonexistent/agents.ts').then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toMatch(/^--agents: cannot load \/nonexistent\/agents\.ts/);
  });

  it('refuses an export that is not an agent, naming it and what is wrong', async () => {
    const error = await loadingErrorOf(moduleWith(`export const helper = { name: 'Bad Name' };`));
    expect(error.message).toMatch(/TROUPE_AGENTS: export "helper" of .* is not an agent \(build it with defineAgent\): name: .*; instructions: /);
  });

  it('refuses a module that cannot be loaded or exports nothing', async () => {
    expect((await loadingErrorOf('/nonexistent/agents.ts')).message).toMatch(/TROUPE_AGENTS: cannot load \/nonexistent\/agents\.ts/);
    expect((await loadingErrorOf(moduleWith('export {};'))).message).toMatch(/exports no agents/);
  });
});
