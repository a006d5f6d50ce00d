import { injectionGuardrail, piiGuardrail, secretsGuardrail } from '../guardrails/builtInGuardrails.ts';
import { assistantAgent } from './assistant.ts';
import { defineAgent } from './defineAgent.ts';

/**
 * The assistant with the built-in guardrails: personal data in a person's messages masked before
 * the model reads it, instructions planted in what tools return flagged, credentials redacted from
 * calls' arguments and from the answer, and never in the session's telemetry.
 */
export const guardedAssistantAgent = defineAgent({
  name: 'guarded_assistant',
  instructions: assistantAgent.instructions,
  guardrails: [piiGuardrail({ at: ['input'] }), injectionGuardrail(), secretsGuardrail()],
});
