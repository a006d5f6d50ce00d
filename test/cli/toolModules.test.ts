import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../cli/environment.ts';
import { loadToolModule } from '../../cli/toolModules.ts';

const defineToolModule = fileURLToPath(new URL('../../tools/defineTool.ts', import.meta.url));
const zodModule = import.meta.resolve('zod');

function moduleWith(source: string, extension = 'mjs'): string {
  const file = join(mkdtempSync(join(tmpdir(), 'troupe-tools-')), `fx.${extension}`);
  writeFileSync(file, `import { defineTool } from '${defineToolModule}';\nimport * as z from '${zodModule}';\n${source}`);
  return file;
}

const tool = (name: string) => `defineTool({ name: '${name}', description: 'Converts.', input: z.object({ amount: z.number() }), output: z.object({ amount: z.number() }), handler: ({ amount }) => ({ amount }) })`;

async function loadingErrorOf(path: string, domain = 'fx'): Promise<string> {
  const error = await loadToolModule(path, domain).then(() => undefined, (e: unknown) => e);
  if (!(error instanceof ConfigurationError)) throw new Error(`expected a ConfigurationError, got ${String(error)}`);
  return error.message;
}

describe('loadToolModule', () => {
  it('serves named exports, arrays and the default export, each tool once', async () => {
    const path = moduleWith(`export const convert = ${tool('fx_convert')};
export const more = [${tool('fx_rates')}, ${tool('fx_history')}];
export default [convert];`);
    expect((await loadToolModule(path, 'fx')).map((t) => t.name)).toEqual(['fx_convert', 'fx_rates', 'fx_history']);
  });

  it('loads TypeScript modules where Node strips types', async () => {
    const path = moduleWith(`export const convert: ReturnType<typeof defineTool> = ${tool('fx_convert')};`, 'ts');
    expect((await loadToolModule(path, 'fx')).map((t) => t.name)).toEqual(['fx_convert']);
  });

  it('refuses an export that is not a tool, naming it', async () => {
    expect(await loadingErrorOf(moduleWith(`export const convert = ${tool('fx_convert')};\nexport const rate = 1.1;`)))
      .toMatch(/^--module: export "rate" of .*fx\.mjs is not a tool \(build it with defineTool from 'troupe'\)\.$/);
  });

  it('refuses a tool of another domain, saying how to name it', async () => {
    expect(await loadingErrorOf(moduleWith(`export const convert = ${tool('money_convert')};`)))
      .toMatch(/^--module: tool "money_convert" \(export "convert" of .*\) belongs to domain "money", not "fx": name it fx_<action>/);
  });

  it('refuses a module that exports no tool, a missing file, and one that does not load', async () => {
    expect(await loadingErrorOf(moduleWith('export {};'))).toMatch(/^--module: .*fx\.mjs exports no tools/);
    expect(await loadingErrorOf('/nonexistent/fx.mjs')).toBe('--module: cannot load /nonexistent/fx.mjs: there is no such file.');
    expect(await loadingErrorOf(moduleWith('export const broken = ;'))).toMatch(/^--module: cannot load .*fx\.mjs: .+/);
  });
});
