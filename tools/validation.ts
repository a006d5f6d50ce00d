import * as z from 'zod';
import { ToolFailureCode, toolFailure, type ToolFailure, type ValidationIssue } from './toolFailure.ts';

export type Validated<T> = { ok: true; value: T } | { ok: false; failure: ToolFailure };

/** `rows[0].id` style, the way a person (or a model) names a field. */
export function formatIssuePath(path: ReadonlyArray<PropertyKey>): string {
  if (path.length === 0) return '(arguments)';
  return path
    // A key that is not a name (a file path, a key with spaces) is quoted, so the path reads back unambiguously.
    .map((key, i) => (typeof key === 'number' ? `[${key}]` : i === 0 ? String(key) : /^[A-Za-z_$][\w$-]*$/.test(String(key)) ? `.${String(key)}` : `[${JSON.stringify(String(key))}]`))
    .join('');
}

/** Zod issues as wire data: the field, the rule that failed and zod's own explanation. */
export function toValidationIssues(error: z.ZodError): ValidationIssue[] {
  return error.issues.map((issue) => ({
    path: formatIssuePath(issue.path),
    code: issue.code,
    message: issue.message,
  }));
}

/**
 * Checks a tool's arguments against its schema. Used on both sides of the wire: the orchestrator
 * (against the schema a pool advertised) and the worker (against the tool's own zod schema).
 */
export function validateToolArguments<T>(toolName: string, schema: z.ZodType<T>, args: unknown): Validated<T> {
  const parsed = schema.safeParse(args);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issues = toValidationIssues(parsed.error);
  const listed = issues.map((i) => `\`${i.path}\`: ${i.message} (${i.code})`).join('; ');
  return {
    ok: false,
    failure: toolFailure(
      ToolFailureCode.INVALID_INPUT,
      `Invalid arguments for tool "${toolName}": ${listed}. Fix these fields and call the tool again.`,
      issues,
    ),
  };
}

/** Parses the JSON string a model produced as tool arguments; a syntax error becomes INVALID_INPUT. */
export function parseToolArgumentsJson(toolName: string, raw: string): Validated<unknown> {
  const text = raw.trim() === '' ? '{}' : raw;
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return {
      ok: false,
      failure: toolFailure(
        ToolFailureCode.INVALID_INPUT,
        `The arguments for tool "${toolName}" are not valid JSON (${reason}). Send a single JSON object.`,
        [{ path: '(arguments)', code: 'invalid_json', message: reason }],
      ),
    };
  }
}
