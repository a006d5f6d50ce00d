import { analystAgent } from './analyst.ts';
import { assistantAgent } from './assistant.ts';
import { refundDeskAgent } from './refundDesk.ts';
import { guardedAssistantAgent } from './guardedAssistant.ts';
import type { AgentDefinition } from './defineAgent.ts';

/** The agents the CLI can run: `assistant`, `guarded_assistant` and `refund_desk` in the orchestrator, `analyst` as a specialist pool. */
export const exampleAgents: Readonly<Record<string, AgentDefinition>> = {
  assistant: assistantAgent,
  analyst: analystAgent,
  refund_desk: refundDeskAgent,
  guarded_assistant: guardedAssistantAgent,
};
