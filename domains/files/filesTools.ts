import { lstat, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as z from 'zod';
import { defineTool, type ToolDefinition } from '../../tools/defineTool.ts';
import { ToolError, ToolFailureCode } from '../../tools/toolFailure.ts';
import { resolveInWorkspace } from './sandbox.ts';

/** Largest file `files_read` returns and `files_write` accepts: a model's context is the real limit. */
export const maxFileBytes = 1024 * 1024;

export interface FilesToolsOptions {
  /** Directory the tools are confined to; created on first use if missing. */
  workspace: string;
}

/** What undoing a files_write needs: the file's previous bytes (base64), or null when it did not exist. */
const WriteUndo = z.object({ path: z.string(), previous: z.string().nullable() });
type WriteUndo = z.infer<typeof WriteUndo>;

const pathField = z.string().min(1).describe('Path relative to the workspace, with "/" separators.');

const Entry = z.object({
  name: z.string(),
  type: z.enum(['file', 'directory', 'other']),
  bytes: z.number().int().nonnegative(),
});

/** Turns the filesystem errors a model can cause into codes it can act on; anything else stays INTERNAL. */
function toToolError(error: unknown, path: string): unknown {
  if (error instanceof ToolError) return error;
  switch ((error as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return new ToolError(ToolFailureCode.NOT_FOUND, `There is no file or directory "${path}" in the workspace; files_list shows what exists.`);
    case 'ENOTDIR':
      return new ToolError(ToolFailureCode.NOT_FOUND, `"${path}" goes through a file as if it were a directory.`);
    case 'EISDIR':
      return new ToolError(ToolFailureCode.INVALID_INPUT, `"${path}" is a directory, not a file; use files_list to see inside it.`);
    case 'EACCES':
    case 'EPERM':
      return new ToolError(ToolFailureCode.FORBIDDEN, `The worker is not allowed to access "${path}".`);
    default:
      return error;
  }
}

async function guarded<T>(path: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw toToolError(error, path);
  }
}

/**
 * The `files` domain: list, read and write UTF-8 text files inside one workspace directory.
 * Every path goes through {@link resolveInWorkspace}, so nothing outside the workspace is read or
 * written; outputs name paths relative to the workspace.
 */
export function filesTools(options: FilesToolsOptions): ToolDefinition[] {
  const { workspace } = options;

  const list = defineTool({
    name: 'files_list',
    description: 'Lists the entries of a directory in the workspace, sorted by name, with their type and size in bytes.',
    input: z.object({ path: pathField.default('.').describe('Directory relative to the workspace; "." (the default) is the workspace itself.') }),
    output: z.object({ path: z.string(), entries: z.array(Entry) }),
    handler: ({ path }) =>
      guarded(path, async () => {
        const target = await resolveInWorkspace(workspace, path);
        if (!(await stat(target.absolute)).isDirectory()) {
          throw new ToolError(ToolFailureCode.INVALID_INPUT, `"${path}" is a file, not a directory; use files_read to read it.`);
        }
        const dirents = await readdir(target.absolute, { withFileTypes: true });
        const entries = await Promise.all(
          dirents.map(async (dirent) => {
            // Symbolic links are reported as "other" and never followed: their targets may be outside.
            const type = dirent.isFile() ? 'file' : dirent.isDirectory() ? 'directory' : 'other';
            const bytes = type === 'file' ? (await lstat(join(target.absolute, dirent.name))).size : 0;
            return { name: dirent.name, type, bytes } as const;
          }),
        );
        entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        return { path: target.relative, entries };
      }),
  });

  const read = defineTool({
    name: 'files_read',
    description: `Reads a UTF-8 text file from the workspace. Files over ${maxFileBytes} bytes (1 MiB) are refused.`,
    input: z.object({ path: pathField }),
    output: z.object({ path: z.string(), content: z.string(), bytes: z.number().int().nonnegative() }),
    handler: ({ path }, { signal }) =>
      guarded(path, async () => {
        const target = await resolveInWorkspace(workspace, path);
        const info = await stat(target.absolute);
        if (info.isDirectory()) {
          throw new ToolError(ToolFailureCode.INVALID_INPUT, `"${path}" is a directory, not a file; use files_list to see inside it.`);
        }
        if (info.size > maxFileBytes) {
          throw new ToolError(
            ToolFailureCode.FORBIDDEN,
            `"${path}" is ${info.size} bytes; files_read returns at most ${maxFileBytes} bytes (1 MiB) per file.`,
          );
        }
        const buffer = await readFile(target.absolute, { signal });
        let content: string;
        try {
          content = new TextDecoder('utf-8', { fatal: true }).decode(buffer);
        } catch {
          throw new ToolError(ToolFailureCode.INVALID_INPUT, `"${path}" is not UTF-8 text; files_read only reads text files.`);
        }
        return { path: target.relative, content, bytes: buffer.byteLength };
      }),
  });

  const write = defineTool({
    name: 'files_write',
    description:
      'Writes a UTF-8 text file in the workspace, replacing it if it exists and creating missing parent directories. ' +
      `Content over ${maxFileBytes} bytes (1 MiB) is refused.`,
    input: z.object({ path: pathField, content: z.string().describe('The whole new content of the file.') }),
    output: z.object({ path: z.string(), bytes: z.number().int().nonnegative(), created: z.boolean() }),
    sideEffects: true,
    handler: ({ path, content }, { signal }) =>
      guarded(path, async () => {
        const bytes = Buffer.byteLength(content, 'utf8');
        if (bytes > maxFileBytes) {
          throw new ToolError(ToolFailureCode.FORBIDDEN, `The content is ${bytes} bytes; files_write accepts at most ${maxFileBytes} bytes (1 MiB).`);
        }
        const target = await resolveInWorkspace(workspace, path);
        const created = await lstat(target.absolute).then(
          () => false,
          (error: unknown) => ((error as NodeJS.ErrnoException).code === 'ENOENT' ? true : Promise.reject(error)),
        );
        await mkdir(dirname(target.absolute), { recursive: true });
        await writeFile(target.absolute, content, { encoding: 'utf8', signal });
        return { path: target.relative, bytes, created };
      }),
    // Undo: what the file was (its bytes, or that it did not exist), restored byte for byte.
    compensation: {
      capture: ({ path }, { signal }) =>
        guarded(path, async () => {
          const target = await resolveInWorkspace(workspace, path);
          const existing = await stat(target.absolute).then(
            (info) => info,
            (error: unknown) => ((error as NodeJS.ErrnoException).code === 'ENOENT' ? null : Promise.reject(error)),
          );
          // Every write stays undoable: a file too large to keep is not replaced at all. It is also one
          // files_read would refuse, so the model never saw what replacing it would destroy.
          if (existing !== null && existing.isFile() && existing.size > maxFileBytes) {
            throw new ToolError(
              ToolFailureCode.FORBIDDEN,
              `"${path}" is ${existing.size} bytes; files_write replaces only files of at most ${maxFileBytes} bytes (1 MiB), which it can restore on rollback. Nothing was written; write to a new path instead.`,
            );
          }
          const previous = existing === null ? null : (await readFile(target.absolute, { signal })).toString('base64');
          return { path: target.relative, previous } satisfies WriteUndo;
        }),
      undo: async (captured) => {
        const { path, previous } = WriteUndo.parse(captured);
        // Resolved again: the sandbox holds for undo as for any write.
        const target = await resolveInWorkspace(workspace, path);
        if (previous === null) await rm(target.absolute, { force: true });
        else await writeFile(target.absolute, Buffer.from(previous, 'base64'));
      },
    },
  });

  return [list, read, write];
}
