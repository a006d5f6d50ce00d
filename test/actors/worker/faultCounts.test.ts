import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DirectoryFaultCounts, FaultCountsDirectoryError, faultCountsFromEnv, MemoryFaultCounts } from '../../../actors/worker/faultCounts.ts';
import { checkFaultSpecification, FaultInjector } from '../../../actors/worker/workerFaults.ts';

const freshDirectory = () => mkdtempSync(join(tmpdir(), 'troupe-fault-counts-'));
const crashOnce = { scope: 'calc_add', index: 0 };

describe('MemoryFaultCounts', () => {
  it('hands out firings 1 to times, then none', () => {
    const counts = new MemoryFaultCounts();
    expect([1, 2, 3].map(() => counts.claim(crashOnce, 2))).toEqual([1, 2, undefined]);
  });

  it('counts each rule on its own', () => {
    const counts = new MemoryFaultCounts();
    expect(counts.claim(crashOnce, 1)).toBe(1);
    expect(counts.claim({ scope: 'calc_add', index: 1 }, 1)).toBe(1);
    expect(counts.claim({ scope: '*', index: 0 }, 1)).toBe(1);
  });
});

describe('DirectoryFaultCounts', () => {
  it('shares firings between instances opened on the same directory, one file each', () => {
    const directory = freshDirectory();
    const first = DirectoryFaultCounts.open(directory);
    const second = DirectoryFaultCounts.open(directory);
    expect([first.claim(crashOnce, 2), second.claim(crashOnce, 2), first.claim(crashOnce, 2), second.claim(crashOnce, 2)]).toEqual([1, 2, undefined, undefined]);
    expect(readdirSync(directory).sort()).toEqual(['calc_add[0].1', 'calc_add[0].2']);
    expect(JSON.parse(readFileSync(join(directory, 'calc_add[0].1'), 'utf8'))).toMatchObject({ pid: process.pid });
  });

  it('keeps a tool name with a path in it inside the directory', () => {
    const directory = freshDirectory();
    expect(DirectoryFaultCounts.open(directory).claim({ scope: '../escape', index: 0 }, 1)).toBe(1);
    expect(readdirSync(directory)).toEqual(['..%2Fescape[0].1']);
  });

  it('makes two injectors on one directory fire a times:1 rule once in total', () => {
    const directory = freshDirectory();
    const spec = checkFaultSpecification({ calc_add: [{ kind: 'crash', times: 1 }] });
    const members = [0, 1].map(() => new FaultInjector(spec, { counts: DirectoryFaultCounts.open(directory) }));
    const faults = [members[1]?.next('calc_add'), members[0]?.next('calc_add'), members[1]?.next('calc_add')];
    expect(faults).toEqual([{ kind: 'crash', at: 'before_claim' }, undefined, undefined]);
  });

  it('gives each firing to one process when several race for it', async () => {
    const directory = freshDirectory();
    const module = new URL('../../../actors/worker/faultCounts.ts', import.meta.url).href;
    const claimer = `import { DirectoryFaultCounts } from ${JSON.stringify(module)};
      process.stdout.write(String(DirectoryFaultCounts.open(process.argv[1]).claim({ scope: 'calc_add', index: 0 }, 2) ?? 'none'));`;
    const runs = Array.from({ length: 6 }, () => promisify(execFile)(process.execPath, ['--input-type=module', '-e', claimer, directory]));
    const taken = (await Promise.all(runs)).map((run) => run.stdout).sort();
    expect(taken).toEqual(['1', '2', 'none', 'none', 'none', 'none']);
  }, 30_000);

  it('refuses a directory that does not exist, a file, and one it cannot write to', () => {
    const parent = freshDirectory();
    expect(() => DirectoryFaultCounts.open(join(parent, 'missing'))).toThrow(FaultCountsDirectoryError);
    expect(() => DirectoryFaultCounts.open(join(parent, 'missing'))).toThrow(/TROUPE_FAULT_COUNTS_DIR names .*missing, which does not exist/);
    const file = join(parent, 'file');
    writeFileSync(file, '');
    expect(() => DirectoryFaultCounts.open(file)).toThrow(/which is not a directory/);
    const readOnly = join(parent, 'read-only');
    mkdirSync(readOnly, { mode: 0o555 });
    // root may write anywhere: only an unprivileged process can be refused.
    if (process.getuid?.() !== 0) expect(() => DirectoryFaultCounts.open(readOnly)).toThrow(/cannot write to/);
  });
});

describe('faultCountsFromEnv', () => {
  it('opens TROUPE_FAULT_COUNTS_DIR and ignores it when unset or blank', () => {
    const directory = freshDirectory();
    expect(faultCountsFromEnv({})).toBeUndefined();
    expect(faultCountsFromEnv({ TROUPE_FAULT_COUNTS_DIR: ' ' })).toBeUndefined();
    expect(faultCountsFromEnv({ TROUPE_FAULT_COUNTS_DIR: directory })?.directory).toBe(directory);
    expect(() => faultCountsFromEnv({ TROUPE_FAULT_COUNTS_DIR: join(directory, 'missing') })).toThrow(FaultCountsDirectoryError);
  });
});
