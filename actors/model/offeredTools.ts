import type { ChatCompletionFunctionTool } from 'openai/resources/chat/completions';
import { nextPhaseToolName } from '../../machines/phaseScreening.ts';
import type { PhaseToolOffer } from '../../machines/sessionProtocol.ts';
import { toolPatternWithin } from '../../machines/workflowValidation.ts';
import type { CatalogTool } from '../toolCalls/toolCatalog.ts';

function toFunctionTool(tool: CatalogTool): ChatCompletionFunctionTool {
  return { type: 'function', function: { name: tool.name, description: tool.description, parameters: tool.inputSchema } };
}

/**
 * The tools a turn's request offers the model: the catalog's tools the agent may call (`allowed`),
 * within what the workflow's phase offers, and the session's own `next_phase` when the model may
 * choose an exit (a served tool of that name is shadowed by it).
 */
export function offeredTools(catalog: readonly CatalogTool[], allowed: (tool: CatalogTool) => boolean, offer: PhaseToolOffer | null): ChatCompletionFunctionTool[] {
  const inPhase = (tool: CatalogTool) => !offer || (tool.name !== nextPhaseToolName && (offer.tools === null || toolPatternWithin(tool.name, offer.tools)));
  const tools = catalog.filter((tool) => allowed(tool) && inPhase(tool)).map(toFunctionTool);
  return offer?.nextPhase ? [...tools, { type: 'function', function: offer.nextPhase }] : tools;
}
