import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ScriptLoadError } from '../../scriptedModel/errors.ts';
import { createScriptLibrary, loadScripts } from '../../scriptedModel/scriptLibrary.ts';
import { scriptDirs } from './scriptFixtures.ts';

const dirs = scriptDirs();
afterAll(() => dirs.removeAll());

const script = (name: string, userIncludes: string, steps: unknown[] = [{ content: name }]) => ({ name, match: { userIncludes }, steps });
const user = (content: string) => ({ role: 'user', content });
const assistant = { role: 'assistant', content: 'earlier' };

describe('loadScripts', () => {
  it('loads the *.json files directly inside each directory and ignores other files and subdirectories', async () => {
    const dir = await dirs.create({ 'a.json': script('a', 'alpha'), 'notes.txt': 'not a script', 'b.json': script('b', 'beta') });
    await mkdir(join(dir, 'nested'));
    await writeFile(join(dir, 'nested', 'c.json'), JSON.stringify(script('c', 'gamma')));
    const library = await loadScripts([dir]);
    expect(library.scripts.map((s) => s.name)).toEqual(['a', 'b']);
  });

  it('rejects a file that is not a valid script, naming the file and each issue path', async () => {
    const dir = await dirs.create({ 'broken.json': { name: 'broken', match: { userIncludes: 'x' }, steps: [{ usage: { promptTokens: 1, completionTokens: 1 } }] } });
    const error = await loadScripts([dir]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ScriptLoadError);
    expect((error as ScriptLoadError).message).toContain(join(dir, 'broken.json'));
    expect((error as ScriptLoadError).message).toContain('steps.0: a step needs "content" or at least one entry in "toolCalls"');
    expect((error as ScriptLoadError).issues).toEqual([{ path: 'steps.0', message: 'a step needs "content" or at least one entry in "toolCalls"' }]);
  });

  it('rejects a file with an invalid fault, naming the file and the fault field', async () => {
    const dir = await dirs.create({ 'faulty.json': script('faulty', 'x', [{ content: 'x', fault: { kind: 'http_error', status: 302 } }]) });
    const error = await loadScripts([dir]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ScriptLoadError);
    expect((error as ScriptLoadError).message).toContain(join(dir, 'faulty.json'));
    expect((error as ScriptLoadError).issues).toEqual([{ path: 'steps.0.fault.status', message: expect.stringContaining('400') }]);
  });

  it('rejects a file with an unknown fault kind, naming the file and the kinds there are', async () => {
    const dir = await dirs.create({ 'unknown.json': script('unknown', 'x', [{ content: 'x', fault: { kind: 'timeout' } }]) });
    const error = await loadScripts([dir]).catch((e: unknown) => e);
    expect((error as ScriptLoadError).message).toContain(join(dir, 'unknown.json'));
    expect((error as ScriptLoadError).message).toContain("steps.0.fault.kind: Invalid discriminator value. Expected 'http_error' | 'delay'");
  });

  it('rejects a file that is not JSON, naming the file', async () => {
    const dir = await dirs.create({ 'garbled.json': '{ "name": ' });
    await expect(loadScripts([dir])).rejects.toThrow(/garbled\.json is not readable JSON/);
  });

  it('rejects two scripts with the same name, naming both files', async () => {
    const first = await dirs.create({ 'one.json': script('same', 'one') });
    const second = await dirs.create({ 'two.json': script('same', 'two') });
    await expect(loadScripts([first, second])).rejects.toThrow(`${join(second, 'two.json')}: the name "same" is already used by ${join(first, 'one.json')}`);
  });

  it('rejects a directory that cannot be read, naming it', async () => {
    await expect(loadScripts(['/nonexistent/troupe-scripts'])).rejects.toThrow('cannot read the script directory /nonexistent/troupe-scripts');
  });

  it('loads the bundled scripts, echo among them', async () => {
    const library = await loadScripts([fileURLToPath(new URL('../../scriptedModel/scripts', import.meta.url))]);
    expect(library.choose([user('please ECHO this')])).toMatchObject({ script: { name: 'echo' }, stepIndex: 0 });
  });
});

describe('ScriptLibrary.choose', () => {
  const library = createScriptLibrary([
    script('report', 'report', [{ content: 'first' }, { content: 'second' }]),
    script('sales-report', 'sales report', [{ content: 'first' }, { content: 'second' }]),
    script('other', 'unrelated'),
  ]);

  it('matches the first user message case-insensitively, ignoring later user messages', () => {
    const choice = library.choose([{ role: 'system', content: 'sys' }, user('Write a REPORT'), assistant, user('unrelated')]);
    expect(choice).toMatchObject({ script: { name: 'report' } });
  });

  it('prefers the longest matching userIncludes whatever the load order', () => {
    expect(library.choose([user('the sales report, please')])).toMatchObject({ script: { name: 'sales-report' } });
  });

  it('numbers the step by the assistant messages already in the conversation', () => {
    const messages = [user('sales report'), assistant, { role: 'tool', tool_call_id: 'x', content: '1' }];
    expect(library.choose(messages)).toMatchObject({ script: { name: 'sales-report' }, stepIndex: 1 });
  });

  it('explains a missing match with the first user message cut to 200 characters and the known matches', () => {
    const long = `nothing known ${'z'.repeat(300)}`;
    const choice = library.choose([user(long)]);
    expect('error' in choice && choice.error).toContain(`"${long.slice(0, 200)}…"`);
    expect('error' in choice && choice.error).not.toContain(long.slice(0, 201));
    expect('error' in choice && choice.error).toContain('"report", "sales report", "unrelated"');
  });

  it('explains a step past the end with the script name, its step count and the requested step', () => {
    const choice = library.choose([user('sales report'), assistant, assistant]);
    expect(choice).toEqual({ error: 'script "sales-report" has 2 step(s), but the conversation already has 2 assistant message(s), so it asks for step index 2 (0-based)' });
  });

  it('explains a conversation without a user message', () => {
    expect(library.choose([{ role: 'system', content: 'report' }])).toEqual({ error: expect.stringContaining('no user message') });
  });
});

describe('createScriptLibrary', () => {
  it('rejects duplicate names', () => {
    expect(() => createScriptLibrary([script('a', 'x'), script('a', 'y')])).toThrow(ScriptLoadError);
  });
});
