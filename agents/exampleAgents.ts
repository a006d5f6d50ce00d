import { analystAgent } from './analyst.ts';
import { assistantAgent } from './assistant.ts';
import type { AgentDefinition } from './defineAgent.ts';

/** The agents the CLI can run: `assistant` in the orchestrator, `analyst` as a specialist pool. */
export const exampleAgents: Readonly<Record<string, AgentDefinition>> = {
  assistant: assistantAgent,
  analyst: analystAgent,
};
