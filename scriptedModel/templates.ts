/**
 * `{{tool:<tool_call_id>}}`, `{{tool:<tool_call_id>:<dotted.path>}}` and `{{user:last}}` templates: how a script
 * answers with what its tools returned. A reference that cannot be resolved is an error, never
 * an empty string, so a script that drifted from its tools fails loudly.
 */

import { lastUserMessageKey } from './chatRequest.ts';

/** The outcome of filling templates: the text, or why a reference could not be resolved. */
export type TemplateResult<T> = { ok: true; value: T } | { ok: false; error: string };

const templatePattern = /\{\{tool:([^:}]+)(?::([^}]*))?\}\}/g;

/**
 * Replaces every template in `text`. `toolContents` maps tool_call_id to the content of its tool
 * message. A path walks the JSON content (`rows.0.total`); strings are inserted as they are,
 * other values as JSON.
 */
export function renderTemplates(text: string, toolContents: ReadonlyMap<string, string>): TemplateResult<string> {
  let error: string | undefined;
  // `{{user:last}}`: the latest user message, e.g. to show an instruction a person added reached the model.
  const withUser = text.replace(/\{\{user:last\}\}/g, () => {
    const last = toolContents.get(lastUserMessageKey);
    if (last === undefined) error ??= 'The template {{user:last}} has no user message to quote.';
    return last ?? '';
  });
  const value = withUser.replace(templatePattern, (template, id: string, path: string | undefined) => {
    if (error !== undefined) return '';
    const resolved = resolveReference(template, id, path, toolContents);
    if (!resolved.ok) {
      error = resolved.error;
      return '';
    }
    return resolved.value;
  });
  return error === undefined ? { ok: true, value } : { ok: false, error };
}

/**
 * Fills templates in tool-call arguments and returns the string to send: a string is rendered
 * and sent as it is (it may be deliberately malformed JSON); an object has each string inside it
 * rendered, then is serialised, so inserted text is always correctly escaped.
 */
export function renderArguments(args: Record<string, unknown> | string, toolContents: ReadonlyMap<string, string>): TemplateResult<string> {
  if (typeof args === 'string') return renderTemplates(args, toolContents);
  const rendered = renderValue(args, toolContents);
  return rendered.ok ? { ok: true, value: JSON.stringify(rendered.value) } : rendered;
}

function renderValue(value: unknown, toolContents: ReadonlyMap<string, string>): TemplateResult<unknown> {
  if (typeof value === 'string') return renderTemplates(value, toolContents);
  if (Array.isArray(value)) {
    const items: unknown[] = [];
    for (const item of value) {
      const rendered = renderValue(item, toolContents);
      if (!rendered.ok) return rendered;
      items.push(rendered.value);
    }
    return { ok: true, value: items };
  }
  if (typeof value === 'object' && value !== null) {
    const entries: Array<[string, unknown]> = [];
    for (const [key, item] of Object.entries(value)) {
      const rendered = renderValue(item, toolContents);
      if (!rendered.ok) return rendered;
      entries.push([key, rendered.value]);
    }
    return { ok: true, value: Object.fromEntries(entries) };
  }
  return { ok: true, value };
}

function resolveReference(template: string, id: string, path: string | undefined, toolContents: ReadonlyMap<string, string>): TemplateResult<string> {
  const content = toolContents.get(id);
  if (content === undefined) {
    const known = [...toolContents.keys()];
    return {
      ok: false,
      error: `template ${template}: the conversation has no tool message with tool_call_id "${id}" (tool messages: ${known.length > 0 ? known.map((k) => `"${k}"`).join(', ') : 'none'})`,
    };
  }
  if (path === undefined || path === '') return { ok: true, value: content };
  let current: unknown;
  try {
    current = JSON.parse(content);
  } catch {
    return { ok: false, error: `template ${template}: the tool message "${id}" is not JSON, so it has no path "${path}"` };
  }
  const walked: string[] = [];
  for (const key of path.split('.')) {
    current = childOf(current, key);
    if (current === undefined) {
      const at = walked.length > 0 ? `"${walked.join('.')}"` : 'the top level';
      return { ok: false, error: `template ${template}: the tool message "${id}" has no "${key}" at ${at}` };
    }
    walked.push(key);
  }
  return { ok: true, value: typeof current === 'string' ? current : JSON.stringify(current) };
}

function childOf(value: unknown, key: string): unknown {
  if (Array.isArray(value)) return /^\d+$/.test(key) ? value[Number(key)] : undefined;
  if (typeof value === 'object' && value !== null && Object.hasOwn(value, key)) return (value as Record<string, unknown>)[key];
  return undefined;
}
