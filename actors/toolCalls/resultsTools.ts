import * as z from 'zod';
import { defineTool, type ToolDefinition } from '../../tools/defineTool.ts';
import { ToolError, ToolFailureCode } from '../../tools/toolFailure.ts';
import type { ResultStore } from './resultStore.ts';

function at(value: unknown, path: string): unknown {
  if (path === '' || path === '(result)') return value;
  let current = value;
  for (const key of path.replace(/\[(\d+)\]/g, '.$1').split('.').filter(Boolean)) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/**
 * The built-in `results` domain: pages through results that were too large to show the model.
 * Orchestrators serve it as a pool like any other, so any of them answers for any session, but
 * only with the calling session's own results (the session id the call carries, set by the
 * orchestrator that dispatched it, never by the model).
 */
export function resultsTools(store: ResultStore): ToolDefinition[] {
  return [
    defineTool({
      name: 'results_fetch',
      description:
        'Reads part of an earlier tool result that was too large to show in full: give its callId, the path of an array or string inside it (as listed under "omitted"), and an offset.',
      input: z.object({
        callId: z.string().min(1),
        path: z.string().default('').describe('e.g. "rows"; empty for the result itself'),
        offset: z.number().int().nonnegative().default(0),
        limit: z.number().int().min(1).max(200).default(50),
      }),
      output: z.object({ callId: z.string(), path: z.string(), total: z.number(), offset: z.number(), items: z.unknown() }),
      handler: async ({ callId, path, offset, limit }, call) => {
        const result = await store.get(call.sessionId, callId);
        // Another session's result gets this same NOT_FOUND (not FORBIDDEN): a refusal that differed
        // would tell a session which call ids exist elsewhere.
        if (result === undefined) throw new ToolError(ToolFailureCode.NOT_FOUND, `No stored result for callId "${callId}" in this session (it was small enough to show, has expired, or is another session's).`);
        const target = at(result, path);
        if (Array.isArray(target)) return { callId, path, total: target.length, offset, items: target.slice(offset, offset + limit) };
        if (typeof target === 'string') return { callId, path, total: target.length, offset, items: target.slice(offset, offset + limit * 100) };
        throw new ToolError(
          ToolFailureCode.INVALID_INPUT,
          target === undefined ? `The stored result has nothing at path "${path}".` : `The value at path "${path}" is not an array or a string; give the path of one inside it.`,
        );
      },
    }),
  ];
}
