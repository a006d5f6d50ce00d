import type * as z from 'zod';
import { formatIssuePath } from '../tools/validation.ts';

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * Decodes a message body against its schema. Never throws: a body that is not JSON or does not
 * match comes back as an error string naming the fields, for the error reply and the log line.
 */
export function decodeWireMessage<T>(schema: z.ZodType<T>, data: Uint8Array, what: string): Decoded<T> {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(data));
  } catch (error) {
    return { ok: false, error: `${what} is not valid JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issues = parsed.error.issues.map((i) => `${formatIssuePath(i.path)}: ${i.message}`).join('; ');
  return { ok: false, error: `${what} is malformed: ${issues}` };
}

export function encodeWireMessage(message: unknown): string {
  return JSON.stringify(message);
}
