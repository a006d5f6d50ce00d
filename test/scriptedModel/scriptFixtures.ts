import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Temp directories of script files, each removed by {@link ScriptDirs.removeAll}. */
export interface ScriptDirs {
  /** Writes each entry as `<file name>: <contents>` (objects as JSON, strings verbatim) into a new directory. */
  create(files: Record<string, unknown>): Promise<string>;
  removeAll(): Promise<void>;
}

export function scriptDirs(): ScriptDirs {
  const dirs: string[] = [];
  return {
    async create(files) {
      const dir = await mkdtemp(join(tmpdir(), 'troupe-scripts-'));
      dirs.push(dir);
      for (const [name, contents] of Object.entries(files)) {
        await writeFile(join(dir, name), typeof contents === 'string' ? contents : JSON.stringify(contents));
      }
      return dir;
    },
    async removeAll() {
      await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
    },
  };
}
