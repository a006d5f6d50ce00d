import { describe, expect, it } from 'vitest';
import { zodOfMcpSchema, type McpObjectSchema } from '../../mcp/mcpSchemas.ts';
import { toolInputJsonSchema } from '../../tools/defineTool.ts';

// As server-everything lists its `get-resource-links` tool.
const resourceLinks: McpObjectSchema = {
  type: 'object',
  properties: { count: { default: 3, description: 'Number of resource links to return (1-10)', type: 'number', minimum: 1, maximum: 10 } },
  $schema: 'http://json-schema.org/draft-07/schema#',
};

describe('zodOfMcpSchema', () => {
  it('converts a schema zod can take whole, with its constraints and defaults', () => {
    const { schema, fallback } = zodOfMcpSchema(resourceLinks);
    expect(fallback).toBeUndefined();
    expect(schema.parse({})).toEqual({ count: 3 });
    expect(schema.safeParse({ count: 11 }).success).toBe(false);
  });

  it('advertises what the server declared, plus only an explicit "additionalProperties: {}" meaning the same', () => {
    const { $schema: _, ...declared } = resourceLinks;
    expect(toolInputJsonSchema({ input: zodOfMcpSchema(resourceLinks).schema })).toEqual({ ...declared, additionalProperties: {} });
  });

  it('keeps "additionalProperties: false" strict', () => {
    const { schema } = zodOfMcpSchema({ type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false });
    expect(schema.safeParse({ a: 'x', b: 1 }).success).toBe(false);
  });

  it('falls back to the properties, still checked, when a top-level combinator makes the schema no plain object', () => {
    const { schema, fallback } = zodOfMcpSchema({
      type: 'object',
      properties: { path: { type: 'string' }, recursive: { type: 'boolean' } },
      required: ['path'],
      anyOf: [{ required: ['recursive'] }, { required: ['depth'] }],
    });
    expect(fallback).toMatch(/cannot be converted whole \(its top level converts to "intersection", not an object\): only its properties are checked/);
    expect(schema.safeParse({ path: '/tmp', recursive: true }).success).toBe(true);
    expect(schema.safeParse({ recursive: true }).success).toBe(false);
    expect(schema.safeParse({ path: 1 }).success).toBe(false);
    // Loose: what the dropped combinator might have allowed is left to the MCP server to judge.
    expect(schema.safeParse({ path: '/tmp', depth: 2 }).success).toBe(true);
  });

  it('lets a property zod cannot convert take any value, keeping the others and its description', () => {
    const { schema, fallback } = zodOfMcpSchema({
      type: 'object',
      properties: { mode: { type: 'mystery', description: 'How to run.' }, name: { type: 'string' } },
      required: ['name'],
    });
    expect(fallback).toMatch(/Unsupported type: mystery.*properties taking any value: mode/);
    expect(schema.safeParse({ name: 'x', mode: [1, 2] }).success).toBe(true);
    expect(schema.safeParse({ mode: 1 }).success).toBe(false);
    expect(toolInputJsonSchema({ input: schema })).toMatchObject({ properties: { mode: { description: 'How to run.' }, name: { type: 'string' } } });
  });

  it('resolves a property\'s reference to the root\'s definitions in the fallback', () => {
    const { schema, fallback } = zodOfMcpSchema({
      type: 'object',
      properties: { id: { $ref: '#/$defs/Id' } },
      $defs: { Id: { type: 'string', minLength: 3 } },
      if: { properties: { id: { const: 'abc' } } },
      then: { required: ['id'] },
    });
    expect(fallback).toMatch(/Conditional schemas/);
    expect(schema.safeParse({ id: 'abcd' }).success).toBe(true);
    expect(schema.safeParse({ id: 'ab' }).success).toBe(false);
  });

  // Regression: zod converts this schema but cannot write it back, and the pool advertises every tool's schema.
  it('accepts any object rather than keep a schema the pool could not advertise', () => {
    const { schema, fallback } = zodOfMcpSchema({ type: 'object', properties: { a: { type: 'string', id: 'x' }, b: { type: 'number', id: 'x' } } });
    expect(fallback).toMatch(/Duplicate schema id "x".*: any object is accepted$/);
    expect(() => toolInputJsonSchema({ input: schema })).not.toThrow();
    expect(schema.safeParse({ a: 1, c: 2 }).success).toBe(true);
  });

  it('never throws, whatever a server sends', () => {
    const odd = [
      { type: 'object', properties: { a: { $ref: 'https://example.com/schema' } } },
      { type: 'object', properties: { a: true, b: false } },
      { type: 'object', properties: 'nonsense', required: 'a' },
      { type: 'object', not: { required: ['a'] } },
    ] as unknown as McpObjectSchema[];
    for (const jsonSchema of odd) expect(() => zodOfMcpSchema(jsonSchema)).not.toThrow();
  });
});
