import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommandArgs } from './inspectArgs.ts';
import { UsageError } from './usageError.ts';

const initUsage = 'usage: troupe init <dir>   write a starter project (a tool domain, an agent, a test) into <dir>';

// The template sits beside the CLI in both layouts: starter/ in a checkout, dist/starter/ in the package.
const starterDir = fileURLToPath(new URL('../starter', import.meta.url));
const ownManifest = fileURLToPath(new URL(`../${import.meta.url.endsWith('.ts') ? '' : '../'}package.json`, import.meta.url));

interface Manifest {
  name: string;
  version: string;
  engines?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

/** An npm package name from a folder name: lower case, URL-safe, not starting with `.` or `_`. */
export function packageNameOf(dir: string): string {
  const name = basename(resolve(dir)).toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[._-]+|-+$/g, '');
  return name === '' ? 'troupe-app' : name.slice(0, 214);
}

/** The starter's package.json: Troupe at this version, and the tools its test and type check use at the versions Troupe is built with. */
export function starterManifest(name: string, troupe: Manifest): Record<string, unknown> {
  const caret = (version: string | undefined, fallback: string) => (version ? `^${version.replace(/^[\^~]/, '')}` : fallback);
  return {
    name,
    version: '0.1.0',
    private: true,
    type: 'module',
    engines: { node: troupe.engines?.node ?? '>=22.18' },
    scripts: {
      test: 'vitest run',
      typecheck: 'tsc --noEmit',
      'worker:fx': 'troupe worker fx --module ./tools/fx.ts',
      orchestrator: 'troupe orchestrator --agents ./agents.ts',
    },
    dependencies: {
      [troupe.name]: `^${troupe.version}`,
      zod: troupe.peerDependencies?.zod ?? caret(troupe.devDependencies?.zod, '^4.0.0'),
    },
    devDependencies: {
      '@types/node': caret(troupe.devDependencies?.['@types/node'], '^24.0.0'),
      typescript: caret(troupe.devDependencies?.typescript, '^5.9.0'),
      vitest: caret(troupe.devDependencies?.vitest, '^4.0.0'),
    },
  };
}

/**
 * `troupe init <dir>`: writes a small project a team can grow — a tool domain module, an agent, a
 * scripted trajectory, an end-to-end test, a compose file — into a new or empty folder. It never
 * overwrites: a folder with anything in it is refused.
 */
export async function initCommand(args: string[]): Promise<number> {
  const { positionals } = parseCommandArgs(args, {}, initUsage, true);
  const [dir, ...extra] = positionals;
  if (!dir || extra.length > 0) throw new UsageError(initUsage);
  const target = resolve(dir);
  if (existsSync(target) && readdirSync(target).length > 0) {
    throw new UsageError(`${target} is not empty; troupe init writes only into a new or empty folder.`);
  }
  const troupe = JSON.parse(readFileSync(ownManifest, 'utf8')) as Manifest;
  const name = packageNameOf(target);
  mkdirSync(target, { recursive: true });
  cpSync(starterDir, target, { recursive: true });
  // npm leaves a package's .gitignore out of its tarball, so the template carries it under another name.
  renameSync(join(target, 'gitignore'), join(target, '.gitignore'));
  const readme = join(target, 'README.md');
  writeFileSync(readme, readFileSync(readme, 'utf8').replaceAll('__NAME__', name));
  writeFileSync(join(target, 'package.json'), `${JSON.stringify(starterManifest(name, troupe), null, 2)}\n`);
  process.stdout.write(`Wrote a Troupe project to ${target}.\n\n  cd ${dir}\n  npm install\n  npm test\n\nThen see its README.md to run it and grow it.\n`);
  return 0;
}
