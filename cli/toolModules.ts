import type { ToolDefinition } from '../tools/defineTool.ts';
import { ConfigurationError } from './environment.ts';
import { importUserModule } from './userModules.ts';

/** What `defineTool` returns, recognised by shape: the module may have its own copy of Troupe. */
function isToolDefinition(value: unknown): value is ToolDefinition {
  if (typeof value !== 'object' || value === null) return false;
  const tool = value as Partial<Record<keyof ToolDefinition, unknown>>;
  return typeof tool.name === 'string' && typeof tool.domain === 'string' && typeof tool.description === 'string'
    && typeof tool.handler === 'function' && typeof tool.timeoutMs === 'number' && typeof tool.retry === 'object'
    && typeof (tool.input as { safeParse?: unknown } | undefined)?.safeParse === 'function';
}

/**
 * The tools a user's domain module exports (`troupe worker <domain> --module <file>`): every export
 * must be a tool built with `defineTool` whose name starts with `<domain>_`, and there must be at
 * least one. Anything else stops the worker before it joins the pool, naming the export.
 */
export async function loadToolModule(file: string, domain: string): Promise<ToolDefinition[]> {
  const { path, exports } = await importUserModule('--module', file);
  const tools: ToolDefinition[] = [];
  for (const { name, value } of exports) {
    if (!isToolDefinition(value)) {
      throw new ConfigurationError(`--module: export "${name}" of ${path} is not a tool (build it with defineTool from 'troupe').`);
    }
    if (value.domain !== domain) {
      throw new ConfigurationError(`--module: tool "${value.name}" (export "${name}" of ${path}) belongs to domain "${value.domain}", not "${domain}": name it ${domain}_<action>, or serve it with \`troupe worker ${value.domain}\`.`);
    }
    if (tools.some((t) => t.name === value.name)) continue;
    tools.push(value);
  }
  if (tools.length === 0) throw new ConfigurationError(`--module: ${path} exports no tools (export what defineTool returns).`);
  return tools;
}
