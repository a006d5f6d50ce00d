import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { filesTools, maxFileBytes } from '../../../domains/files/filesTools.ts';
import { resolveInWorkspace } from '../../../domains/files/sandbox.ts';
import type { ToolDefinition } from '../../../tools/defineTool.ts';
import { callTool as call, toolErrorOf as failure } from '../../fixtures/callTool.ts';

describe('filesTools', () => {
  let root: string;
  let workspace: string;
  let outside: string;
  let tools: ToolDefinition[];

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'troupe-files-test-'));
    // Created on first use by the tools, not here.
    workspace = join(root, 'workspace');
    outside = join(root, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'secret.txt'), 'top secret');
    tools = filesTools({ workspace });
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('defines files_list, files_read and files_write, and only files_write has side effects', () => {
    expect(tools.map((t) => [t.name, t.sideEffects])).toEqual([
      ['files_list', false],
      ['files_read', false],
      ['files_write', true],
    ]);
  });

  it('writes, lists and reads back files, creating the workspace and parent directories', async () => {
    expect(await call(tools, 'files_write', { path: 'notes/answer.txt', content: 'forty-two ✓' })).toEqual({
      path: 'notes/answer.txt',
      bytes: 13,
      created: true,
    });
    expect(await call(tools, 'files_write', { path: 'b.txt', content: 'b' })).toMatchObject({ created: true });
    expect(await call(tools, 'files_write', { path: './notes/answer.txt', content: 'forty-three ✓' })).toEqual({
      path: 'notes/answer.txt',
      bytes: 15,
      created: false,
    });
    expect(await call(tools, 'files_list', {})).toEqual({
      path: '.',
      entries: [
        { name: 'b.txt', type: 'file', bytes: 1 },
        { name: 'notes', type: 'directory', bytes: 0 },
      ],
    });
    expect(await call(tools, 'files_list', { path: 'notes' })).toEqual({
      path: 'notes',
      entries: [{ name: 'answer.txt', type: 'file', bytes: 15 }],
    });
    expect(await call(tools, 'files_read', { path: 'notes/../notes/answer.txt' })).toEqual({
      path: 'notes/answer.txt',
      content: 'forty-three ✓',
      bytes: 15,
    });
    expect(await readFile(join(workspace, 'notes/answer.txt'), 'utf8')).toBe('forty-three ✓');
  });

  it('reports missing files and directories as NOT_FOUND', async () => {
    expect((await failure(call(tools, 'files_read', { path: 'missing.txt' }))).code).toBe('NOT_FOUND');
    expect((await failure(call(tools, 'files_list', { path: 'nowhere' }))).code).toBe('NOT_FOUND');
  });

  it('refuses to read a file over 1 MiB, naming the limit', async () => {
    await mkdir(workspace);
    await writeFile(join(workspace, 'big.txt'), 'x'.repeat(maxFileBytes + 1));
    const error = await failure(call(tools, 'files_read', { path: 'big.txt' }));
    expect(error.code).toBe('FORBIDDEN');
    expect(error.message).toMatch(/at most 1048576 bytes \(1 MiB\)/);
  });

  // Regression: files_write over a file larger than a reply can carry wrote it, told the model it
  // failed, and lost the capture. A capture is now kept by reference and bounded: a file too large to
  // restore is not replaced at all.
  it('refuses to replace a file over 1 MiB before writing, so every write it makes can be undone', async () => {
    const write = tools.find((t) => t.name === 'files_write') as ToolDefinition;
    const context = { signal: new AbortController().signal, callId: 'c', sessionId: 's', deadline: Date.now() + 30_000, logger: pino({ level: 'silent' }), trace: ROOT_CONTEXT, reportSpending: () => {} };
    await mkdir(workspace);
    const big = 'x'.repeat(maxFileBytes + 1);
    await writeFile(join(workspace, 'big.txt'), big);
    const error = await failure(Promise.resolve().then(() => write.compensation?.capture({ path: 'big.txt', content: 'small' }, context)));
    expect(error.code).toBe('FORBIDDEN');
    expect(error.message).toMatch(/at most 1048576 bytes \(1 MiB\), which it can restore on rollback\. Nothing was written/);
    expect(await readFile(join(workspace, 'big.txt'), 'utf8')).toBe(big);
    // At the bound it is captured byte for byte; a new file is captured as absent.
    await writeFile(join(workspace, 'edge.txt'), 'y'.repeat(maxFileBytes));
    const captured = (await write.compensation?.capture({ path: 'edge.txt', content: 'small' }, context)) as { path: string; previous: string };
    expect(Buffer.from(captured.previous, 'base64').byteLength).toBe(maxFileBytes);
    expect(await write.compensation?.capture({ path: 'new.txt', content: 'small' }, context)).toEqual({ path: 'new.txt', previous: null });
    expect((await failure(Promise.resolve().then(() => write.compensation?.capture({ path: '.', content: 'x' }, context)))).code).toBe('INVALID_INPUT');
  });

  it('tells the model a directory is not a file and a file is not a directory', async () => {
    await call(tools, 'files_write', { path: 'dir/a.txt', content: 'a' });
    expect((await failure(call(tools, 'files_read', { path: 'dir' }))).code).toBe('INVALID_INPUT');
    expect((await failure(call(tools, 'files_write', { path: 'dir', content: 'x' }))).code).toBe('INVALID_INPUT');
    expect((await failure(call(tools, 'files_list', { path: 'dir/a.txt' }))).code).toBe('INVALID_INPUT');
  });

  it.each(['../outside/secret.txt', 'a/../../outside/secret.txt', '..', 'notes/../../x'])('refuses the escape %s', async (path) => {
    for (const [name, args] of [
      ['files_read', { path }],
      ['files_write', { path, content: 'pwned' }],
      ['files_list', { path }],
    ] as const) {
      const error = await failure(call(tools, name, args));
      expect(error.code).toBe('FORBIDDEN');
      expect(error.message).toMatch(/climbs out of the workspace/);
    }
    expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe('top secret');
  });

  it('refuses absolute paths, inside the workspace or outside it', async () => {
    await call(tools, 'files_write', { path: 'inside.txt', content: 'in' });
    for (const path of [join(workspace, 'inside.txt'), join(outside, 'secret.txt'), '/etc/passwd']) {
      const error = await failure(call(tools, 'files_read', { path }));
      expect(error.code).toBe('FORBIDDEN');
      expect(error.message).toMatch(/paths are relative to the workspace/);
    }
    expect((await failure(call(tools, 'files_write', { path: join(outside, 'new.txt'), content: 'x' }))).code).toBe('FORBIDDEN');
  });

  it('refuses to read or write through a symbolic link that points outside the workspace', async () => {
    await mkdir(workspace);
    await symlink(outside, join(workspace, 'linkdir'));
    await symlink(join(outside, 'secret.txt'), join(workspace, 'link.txt'));
    for (const [name, args] of [
      ['files_read', { path: 'link.txt' }],
      ['files_read', { path: 'linkdir/secret.txt' }],
      ['files_list', { path: 'linkdir' }],
      ['files_write', { path: 'link.txt', content: 'pwned' }],
      ['files_write', { path: 'linkdir/secret.txt', content: 'pwned' }],
      ['files_write', { path: 'linkdir/new/file.txt', content: 'pwned' }],
    ] as const) {
      const error = await failure(call(tools, name, args));
      expect([name, error.code, error.message]).toEqual([name, 'FORBIDDEN', expect.stringMatching(/symbolic link/)]);
    }
    expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe('top secret');
    await expect(readFile(join(outside, 'new/file.txt'))).rejects.toThrow(/ENOENT/);
  });

  it('refuses to write through a dangling symbolic link, which would create its target outside', async () => {
    await mkdir(workspace);
    await symlink(join(outside, 'planted.txt'), join(workspace, 'dangling.txt'));
    const error = await failure(call(tools, 'files_write', { path: 'dangling.txt', content: 'pwned' }));
    expect(error.code).toBe('FORBIDDEN');
    await expect(readFile(join(outside, 'planted.txt'))).rejects.toThrow(/ENOENT/);
  });

  it('follows a symbolic link that stays inside the workspace and lists links as "other"', async () => {
    await call(tools, 'files_write', { path: 'real/a.txt', content: 'a' });
    await symlink(join(workspace, 'real'), join(workspace, 'alias'));
    expect(await call(tools, 'files_read', { path: 'alias/a.txt' })).toMatchObject({ path: 'real/a.txt', content: 'a' });
    expect(await call(tools, 'files_list', {})).toMatchObject({ entries: [{ name: 'alias', type: 'other', bytes: 0 }, { name: 'real' }] });
  });

  it('refuses paths with a NUL byte', async () => {
    const error = await failure(call(tools, 'files_write', { path: 'a\0b.txt', content: 'x' }));
    expect(error.code).toBe('FORBIDDEN');
    expect(error.message).toMatch(/NUL byte/);
  });

  it('refuses invalid UTF-8 instead of returning mangled text', async () => {
    await mkdir(workspace);
    await writeFile(join(workspace, 'blob.bin'), Buffer.from([0xff, 0xfe, 0x00]));
    expect((await failure(call(tools, 'files_read', { path: 'blob.bin' }))).code).toBe('INVALID_INPUT');
  });
});

describe('resolveInWorkspace', () => {
  it('creates a missing workspace and resolves "." to it', async () => {
    const root = await mkdtemp(join(tmpdir(), 'troupe-sandbox-test-'));
    try {
      const resolved = await resolveInWorkspace(join(root, 'a', 'b'), '.');
      expect(resolved.relative).toBe('.');
      expect(resolved.absolute.endsWith(join('a', 'b'))).toBe(true);
      expect((await resolveInWorkspace(join(root, 'a', 'b'), 'x/../y/z.txt')).relative).toBe('y/z.txt');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
