import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageNameOf, starterManifest } from '../../cli/initCommand.ts';
import { startTroupe } from '../fixtures/troupeProcess.ts';

const ownManifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

describe('troupe init', () => {
  it('writes the starter into a new folder, with a package.json depending on this troupe', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'troupe-init-')), 'FX Desk');
    const init = startTroupe(['init', dir], {});
    expect(await init.exited).toBe(0);
    for (const file of ['README.md', '.gitignore', 'agents.ts', 'tools/fx.ts', 'scripts/convert.json', 'test/convert.test.ts', 'compose.yaml', 'Dockerfile', 'tsconfig.json', 'vitest.config.ts']) {
      expect(existsSync(join(dir, file)), file).toBe(true);
    }
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    expect(manifest).toMatchObject({ name: 'fx-desk', private: true, type: 'module', dependencies: { troupe: `^${ownManifest.version}`, zod: ownManifest.peerDependencies.zod } });
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toMatch(/^# fx-desk\n/);
    expect(init.output()).toContain('npm install');
  });

  it('refuses a folder that is not empty, and changes nothing in it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-init-'));
    writeFileSync(join(dir, 'package.json'), '{"name":"mine"}');
    const init = startTroupe(['init', dir], {});
    expect(await init.exited).toBe(2);
    expect(init.output().trim()).toBe(`troupe: ${dir} is not empty; troupe init writes only into a new or empty folder.`);
    expect(readFileSync(join(dir, 'package.json'), 'utf8')).toBe('{"name":"mine"}');
  });

  it('names the package after the folder, as npm allows', () => {
    expect(packageNameOf('/tmp/My Agents!')).toBe('my-agents');
    expect(packageNameOf('/tmp/.hidden')).toBe('hidden');
    expect(packageNameOf('/tmp/___')).toBe('troupe-app');
  });

  it('pins the starter to this version of troupe and the tools it is built with', () => {
    const manifest = starterManifest('app', { name: 'troupe', version: '1.2.3', peerDependencies: { zod: '^4.6.0' }, devDependencies: { vitest: '5.1.1', typescript: '7.0.2', '@types/node': '24.19.2' } });
    expect(manifest).toMatchObject({ dependencies: { troupe: '^1.2.3', zod: '^4.6.0' }, devDependencies: { vitest: '^5.1.1', typescript: '^7.0.2', '@types/node': '^24.19.2' } });
  });
});
