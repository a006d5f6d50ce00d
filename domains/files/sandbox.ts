import { lstat, mkdir, realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ToolError, ToolFailureCode } from '../../tools/toolFailure.ts';

/** Where a model's path landed: the real absolute path to operate on and its name relative to the workspace. */
export interface SandboxedPath {
  /** Real absolute path (symbolic links resolved); handlers open this, never the model's text. */
  readonly absolute: string;
  /** Relative to the workspace with `/` separators, `.` for the workspace itself: what outputs show. */
  readonly relative: string;
}

function forbidden(message: string): ToolError {
  return new ToolError(ToolFailureCode.FORBIDDEN, message);
}

function isInside(root: string, candidate: string): boolean {
  const rel = relative(root, candidate);
  return rel === '' || (!isAbsolute(rel) && rel !== '..' && !rel.startsWith(`..${sep}`));
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  // ENOTDIR: a component is a file, so nothing below it exists either; the handler's IO reports it.
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Real path of `path`, or, when it does not exist yet, the real path of its nearest existing
 * ancestor joined with the missing rest. A missing component that `lstat` still sees is a
 * dangling symbolic link: writing through it would create its target wherever it points, so it is
 * refused rather than guessed at.
 */
async function realpathAllowingMissing(path: string, userPath: string): Promise<string> {
  const missing: string[] = [];
  let current = path;
  let createdMeanwhile = 0;
  for (;;) {
    try {
      const real = await realpath(current);
      return missing.length === 0 ? real : join(real, ...missing.reverse());
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ELOOP') {
        throw forbidden(`The path "${userPath}" goes through a loop of symbolic links.`);
      }
      if (!isMissing(error)) throw error;
    }
    const info = await lstat(current).then(
      (found) => found,
      (error: unknown) => (isMissing(error) ? undefined : Promise.reject(error)),
    );
    if (info?.isSymbolicLink()) {
      throw forbidden(`The path "${userPath}" goes through a symbolic link whose target does not exist; it cannot be used.`);
    }
    // Created since realpath looked (another call writing the same file): resolve it again.
    if (info && createdMeanwhile++ < 3) continue;
    if (info) throw forbidden(`The path "${userPath}" kept changing while it was resolved; try again.`);
    missing.push(basename(current));
    const parent = dirname(current);
    // The workspace root exists (it was just created), so the walk always stops before the filesystem root.
    if (parent === current) throw forbidden(`The path "${userPath}" is outside the workspace.`);
    current = parent;
  }
}

/**
 * Maps a path a model sent to a real path inside `workspace`, or throws a FORBIDDEN {@link ToolError}
 * whose message tells the model why. Creates the workspace directory if it is missing; touches
 * nothing else. Refuses NUL bytes, absolute paths, `..` that climbs out, and symbolic links (existing,
 * or the nearest existing ancestor of a path to be created) whose real target is outside the
 * workspace's real path.
 *
 * The check and the later IO are separate system calls, so a process that swaps a directory for a
 * symbolic link in between could still win the race; the sandbox guards against the model's paths,
 * not against hostile local processes.
 */
export async function resolveInWorkspace(workspace: string, userPath: string): Promise<SandboxedPath> {
  if (userPath.includes('\0')) throw forbidden('The path contains a NUL byte; send a plain relative path.');
  if (isAbsolute(userPath)) {
    throw forbidden(`The path "${userPath}" is absolute; paths are relative to the workspace (for example "notes/todo.txt").`);
  }
  const root = resolve(workspace);
  await mkdir(root, { recursive: true });
  const realRoot = await realpath(root);
  // Lexical first: `..` is judged on the text the model wrote, before any link is looked at.
  const lexical = resolve(realRoot, userPath);
  if (!isInside(realRoot, lexical)) {
    throw forbidden(`The path "${userPath}" climbs out of the workspace through ".."; paths must stay inside the workspace.`);
  }
  const real = await realpathAllowingMissing(lexical, userPath);
  if (!isInside(realRoot, real)) {
    throw forbidden(`The path "${userPath}" leads outside the workspace through a symbolic link; only files inside the workspace can be used.`);
  }
  return { absolute: real, relative: relative(realRoot, real).split(sep).join('/') || '.' };
}
