import * as z from 'zod';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { toolInputJsonSchema } from '../tools/defineTool.ts';

/** An MCP tool's `inputSchema` or `outputSchema`: JSON Schema whose top level is `type: 'object'`. */
export type McpObjectSchema = Tool['inputSchema'];

/** A zod object for an MCP schema; `fallback` says what was lost when it is not the whole schema. */
export interface ZodOfMcpSchema {
  readonly schema: z.ZodObject;
  readonly fallback?: string;
}

/**
 * Turns an MCP tool's JSON Schema into the zod object Troupe validates with; never throws.
 *
 * The whole schema is converted when zod can (`z.fromJSONSchema`), the result is an object, and
 * zod can write it back as JSON Schema (the pool advertises it that way). Otherwise (a top-level
 * `anyOf`/`allOf`/`if`, `patternProperties`, a keyword or `type` zod does not know) it falls back to
 * a loose object of the properties, each converted on its own, one that cannot be taking any value
 * with its description kept, and `required` kept; failing that too, to any object at all. A fallback
 * checks less than the schema says, never more: the MCP server still validates every call against
 * its own schema, so nothing it would refuse runs.
 */
export function zodOfMcpSchema(jsonSchema: McpObjectSchema): ZodOfMcpSchema {
  let reason: string;
  try {
    const whole = z.fromJSONSchema(jsonSchema as z.core.JSONSchema.JSONSchema);
    const unwritable = whole instanceof z.ZodObject ? unadvertisable(whole) : undefined;
    if (whole instanceof z.ZodObject && unwritable === undefined) return { schema: whole };
    reason = unwritable ?? `its top level converts to "${whole.def.type}", not an object`;
  } catch (error) {
    reason = messageOf(error);
  }
  const byProperty = propertiesOf(jsonSchema);
  const lost = byProperty.unconverted.length > 0 ? `; properties taking any value: ${byProperty.unconverted.join(', ')}` : '';
  const unwritable = unadvertisable(byProperty.schema);
  return unwritable === undefined
    ? { schema: byProperty.schema, fallback: `the schema cannot be converted whole (${reason}): only its properties are checked${lost}` }
    : { schema: z.looseObject({}), fallback: `the schema cannot be converted (${reason}; ${unwritable}): any object is accepted` };
}

function propertiesOf(jsonSchema: McpObjectSchema): { schema: z.ZodObject; unconverted: string[] } {
  const properties = isRecord(jsonSchema.properties) ? jsonSchema.properties : {};
  const required = new Set(Array.isArray(jsonSchema.required) ? jsonSchema.required : []);
  // A property's `$ref` points into the root's definitions: each property is converted with them at hand.
  const definitions = Object.fromEntries(['$defs', 'definitions'].filter((key) => key in jsonSchema).map((key) => [key, jsonSchema[key]]));
  const unconverted: string[] = [];
  const shape: Record<string, z.ZodType> = {};
  for (const [key, property] of Object.entries(properties)) {
    let field: z.ZodType;
    try {
      field = z.fromJSONSchema((typeof property === 'boolean' ? property : { ...definitions, ...property }) as z.core.JSONSchema.JSONSchema);
    } catch {
      unconverted.push(key);
      const description = isRecord(property) && typeof property.description === 'string' ? property.description : undefined;
      field = description === undefined ? z.unknown() : z.unknown().describe(description);
    }
    shape[key] = required.has(key) ? field : field.optional();
  }
  return { schema: z.looseObject(shape), unconverted };
}

// zod can build schemas it cannot write back (two properties carrying the same `id`), and the pool
// advertises every tool's input as JSON Schema: such a schema would fail the whole pool's start.
function unadvertisable(schema: z.ZodObject): string | undefined {
  try {
    toolInputJsonSchema({ input: schema });
    return undefined;
  } catch (error) {
    return `zod cannot write it back as JSON Schema: ${messageOf(error)}`;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
