import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigurationError } from './environment.ts';

/** One value a user's module exports, named as its reader would find it (`default`, `tools[2]`). */
export interface ModuleExport {
  readonly name: string;
  readonly value: unknown;
}

/**
 * Imports a module a deployment names (`--module`, `--agents`, `TROUPE_AGENTS`) and lists what it
 * exports: named exports and the default export, arrays spread into their elements. Anything that
 * stops it loading (a missing file, a syntax error, TypeScript this Node cannot strip) becomes a
 * {@link ConfigurationError} naming the setting and the file.
 */
export async function importUserModule(setting: string, file: string): Promise<{ path: string; exports: ModuleExport[] }> {
  const path = resolve(file);
  if (!existsSync(path)) throw new ConfigurationError(`${setting}: cannot load ${path}: there is no such file.`);
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    const typescriptHint = /\.(c|m)?ts$/.test(path) && (error as { code?: string }).code?.startsWith('ERR_UNSUPPORTED_')
      ? ' (this Node cannot run that TypeScript as is: use Node 22.18 or newer, only erasable syntax, or compile the module to .js)'
      : '';
    throw new ConfigurationError(`${setting}: cannot load ${path}: ${reason}${typescriptHint}`);
  }
  const exports = Object.entries(module).flatMap(([name, value]) =>
    Array.isArray(value) ? value.map((element, i) => ({ name: `${name}[${i}]`, value: element as unknown })) : [{ name, value }],
  );
  return { path, exports };
}
