import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { messageText, type ChatMessage } from './chatRequest.ts';
import { ScriptLoadError, type ScriptIssue } from './errors.ts';
import { Script } from './script.ts';

/** The trajectories Troupe ships (the demo's, `echo`, `summary`), beside this module in both layouts. */
export const bundledScriptsDir = fileURLToPath(new URL('./scripts', import.meta.url));

/** Which script and step answer a conversation, or a message saying why none can. */
export type ScriptChoice = { script: Script; stepIndex: number } | { error: string };

/** A set of scripts with unique names; choosing is stateless, so concurrent conversations never interfere. */
export interface ScriptLibrary {
  readonly scripts: readonly Script[];
  /**
   * The script whose `match.userIncludes` the first user message contains (case-insensitive;
   * the longest match wins, then the earliest loaded) and the step numbered by how many
   * assistant messages the conversation already has.
   */
  choose(messages: readonly ChatMessage[]): ScriptChoice;
}

const quotedMessageLimit = 200;

/**
 * Reads every `*.json` file directly inside each directory (not recursively), in name order, and
 * validates it. Throws a {@link ScriptLoadError} naming the file for an unreadable directory,
 * invalid JSON, schema issues (each with its path), or a duplicate script name.
 */
export async function loadScripts(dirs: readonly string[]): Promise<ScriptLibrary> {
  const scripts: Script[] = [];
  const origins = new Map<string, string>();
  for (const dir of dirs) {
    let names: string[];
    try {
      const entries = await readdir(dir, { withFileTypes: true });
      names = entries.filter((e) => e.isFile() && e.name.endsWith('.json')).map((e) => e.name).sort();
    } catch (cause) {
      throw new ScriptLoadError(dir, `cannot read the script directory ${dir}: ${(cause as Error).message}`, { cause });
    }
    for (const name of names) {
      const file = join(dir, name);
      const script = await readScriptFile(file);
      const earlier = origins.get(script.name);
      if (earlier !== undefined) throw new ScriptLoadError(file, `script file ${file}: the name "${script.name}" is already used by ${earlier}`);
      origins.set(script.name, file);
      scripts.push(script);
    }
  }
  return createScriptLibrary(scripts);
}

/**
 * A library over scripts already in memory (validated here too). Throws a
 * {@link ScriptLoadError} for an invalid script or a duplicate name.
 */
export function createScriptLibrary(input: readonly unknown[]): ScriptLibrary {
  const scripts: Script[] = [];
  const names = new Set<string>();
  input.forEach((candidate, index) => {
    const where = `script #${index}`;
    const parsed = Script.safeParse(candidate);
    if (!parsed.success) {
      const issues = issuesOf(parsed.error.issues);
      throw new ScriptLoadError(where, `${where} is not a valid script:\n${formatIssues(issues)}`, { issues });
    }
    if (names.has(parsed.data.name)) throw new ScriptLoadError(where, `${where}: the name "${parsed.data.name}" is used twice`);
    names.add(parsed.data.name);
    scripts.push(parsed.data);
  });
  return {
    scripts,
    choose: (messages) => choose(scripts, messages),
  };
}

async function readScriptFile(file: string): Promise<Script> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (cause) {
    throw new ScriptLoadError(file, `script file ${file} is not readable JSON: ${(cause as Error).message}`, { cause });
  }
  const parsed = Script.safeParse(json);
  if (!parsed.success) {
    const issues = issuesOf(parsed.error.issues);
    throw new ScriptLoadError(file, `script file ${file} is not a valid script:\n${formatIssues(issues)}`, { issues });
  }
  return parsed.data;
}

function choose(scripts: readonly Script[], messages: readonly ChatMessage[]): ScriptChoice {
  const firstUser = messages.find((m) => m.role === 'user');
  if (!firstUser) return { error: 'the conversation has no user message, so no script can be chosen' };
  const text = messageText(firstUser).toLowerCase();
  let chosen: Script | undefined;
  let chosenLength = -1;
  for (const script of scripts) {
    const needle = script.match.userIncludes.toLowerCase();
    if (text.includes(needle) && needle.length > chosenLength) {
      chosen = script;
      chosenLength = needle.length;
    }
  }
  if (!chosen) {
    const quoted = truncate(messageText(firstUser), quotedMessageLimit);
    const known = scripts.map((s) => JSON.stringify(s.match.userIncludes)).join(', ') || 'none (no scripts are loaded)';
    return { error: `no script matches the first user message ${JSON.stringify(quoted)}; scripts match when it includes one of: ${known}` };
  }
  const stepIndex = stepIndexOf(chosen, messages);
  if (stepIndex >= chosen.steps.length) {
    return {
      error: `script "${chosen.name}" has ${chosen.steps.length} step(s), but the conversation already has ${stepIndex} assistant message(s), so it asks for step index ${stepIndex} (0-based)`,
    };
  }
  return { script: chosen, stepIndex };
}

function truncate(text: string, limit: number): string {
  const chars = Array.from(text);
  return chars.length <= limit ? text : `${chars.slice(0, limit).join('')}…`;
}

function issuesOf(issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>): ScriptIssue[] {
  return issues.map((issue) => ({ path: issue.path.map(String).join('.') || '(root)', message: issue.message }));
}

function formatIssues(issues: readonly ScriptIssue[]): string {
  return issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n');
}

/**
 * Which step answers: the number of assistant messages the conversation has, unless the agent left
 * older turns out of its request (a summary, a window) so that the count no longer says where the
 * script is. Then the newest tool result says it: its call belongs to step k, so step k+1 answers.
 */
function stepIndexOf(script: Script, messages: readonly ChatMessage[]): number {
  const counted = messages.filter((m) => m.role === 'assistant').length;
  // Only the results of the newest assistant message say where the script is (user notes may follow them).
  const newest = [...messages].reverse().find((m) => m.role === 'tool' || m.role === 'assistant') as { role: string; tool_call_id?: string } | undefined;
  const id = newest?.role === 'tool' ? newest.tool_call_id : undefined;
  if (!id) return counted;
  const idsOf = (index: number) => (script.steps[index]?.toolCalls ?? []).map((c, i) => c.id ?? `call_${index}_${i}`);
  if (counted > 0 && idsOf(counted - 1).includes(id)) return counted;
  const owner = script.steps.findIndex((_, index) => idsOf(index).includes(id));
  return owner >= 0 ? owner + 1 : counted;
}

