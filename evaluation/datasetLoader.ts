import { readdir, readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import type * as z from 'zod';
import { formatIssuePath } from '../tools/validation.ts';
import { DatasetError, type DatasetProblem } from './datasetError.ts';
import { parseDatasetText, type RawCase } from './datasetText.ts';
import { EvalCase } from './evalCase.ts';

/** A validated case and where it came from. */
export type LoadedCase = EvalCase & {
  /** Absolute path of the dataset file. */
  file: string;
  /** The line the case starts on, where the format tells it. */
  line?: number;
  /** `script`, resolved against the dataset file's folder: a file that exists. */
  scriptFile?: string;
  /** `specialistScripts`, resolved the same way: files that exist. */
  specialistScriptFiles?: string[];
  /** `setup.database`, resolved the same way: a file that exists. */
  databaseFile?: string;
};

const datasetExtensions = ['.yaml', '.yml', '.jsonl'];
const isDatasetFile = (file: string) => datasetExtensions.some((extension) => file.endsWith(extension));

/**
 * Reads and validates every case in `paths`: dataset files (`.yaml`, `.yml`, `.jsonl`) and folders
 * (every dataset file under them, recursively, hidden entries skipped, sorted by path). Relative
 * paths are read against the working directory; a file named twice is read once. Cases come back
 * in the order of `paths`, then of files, then of the file.
 *
 * Nothing is run on a dataset with a problem: every problem in every file (a syntax error, a case
 * the schema refuses, a missing script file, an id used twice) is collected and thrown at once as
 * a {@link DatasetError}.
 */
export async function loadDatasets(paths: string[]): Promise<LoadedCase[]> {
  const problems: DatasetProblem[] = [];
  const files: string[] = [];
  for (const given of paths) {
    for (const file of await datasetFilesAt(given, problems)) {
      if (!files.includes(file)) files.push(file);
    }
  }

  const cases: LoadedCase[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      problems.push({ file, message: `cannot be read: ${errorMessage(error)}` });
      continue;
    }
    const parsed = parseDatasetText(file, text);
    problems.push(...parsed.problems);
    for (const raw of parsed.cases) {
      const loaded = await validateCase(file, raw, problems);
      if (loaded !== undefined) cases.push(loaded);
    }
  }

  const firstWithId = new Map<string, LoadedCase>();
  for (const loaded of cases) {
    const first = firstWithId.get(loaded.id);
    if (first === undefined) firstWithId.set(loaded.id, loaded);
    else {
      const where = `${first.file}${first.line === undefined ? '' : `:${first.line}`}`;
      problems.push({ file: loaded.file, line: loaded.line, caseId: loaded.id, field: 'id', message: `duplicate case id: also defined in ${where}` });
    }
  }

  // The cases of a stack share its workspace: two that need one file to hold different texts cannot both have it.
  const setUpBy = new Map<string, LoadedCase>();
  for (const loaded of cases) {
    for (const [file, text] of Object.entries(loaded.setup?.files ?? {})) {
      const first = setUpBy.get(file);
      if (first === undefined) setUpBy.set(file, loaded);
      else if (first.setup?.files?.[file] !== text) {
        problems.push({ file: loaded.file, line: loaded.line, caseId: loaded.id, field: 'setup.files', message: `${file} is set up with another text by case ${first.id}: cases share the workspace, so give each its own file` });
      }
    }
  }

  if (problems.length > 0) throw new DatasetError(problems);
  return cases;
}

/** The dataset files `given` names, or none with a problem recorded. */
async function datasetFilesAt(given: string, problems: DatasetProblem[]): Promise<string[]> {
  const absolute = path.resolve(given);
  let stats;
  try {
    stats = await stat(absolute);
  } catch (error) {
    const missing = error instanceof Error && 'code' in error && error.code === 'ENOENT';
    problems.push({ file: absolute, message: missing ? 'no such file or folder' : `cannot be read: ${errorMessage(error)}` });
    return [];
  }
  if (stats.isDirectory()) {
    const found = (await datasetFilesUnder(absolute)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (found.length === 0) problems.push({ file: absolute, message: `a folder with no dataset file (${datasetExtensions.join(', ')}) in it` });
    return found;
  }
  if (!stats.isFile() || !isDatasetFile(absolute)) {
    problems.push({ file: absolute, message: `neither a dataset file (${datasetExtensions.join(', ')}) nor a folder` });
    return [];
  }
  return [absolute];
}

async function datasetFilesUnder(folder: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    // Hidden entries are editors' and tools' (.git, .cache), not datasets.
    if (entry.name.startsWith('.')) continue;
    const full = path.join(folder, entry.name);
    if (entry.isDirectory()) found.push(...(await datasetFilesUnder(full)));
    else if ((entry.isFile() || entry.isSymbolicLink()) && isDatasetFile(entry.name)) found.push(full);
  }
  return found;
}

async function validateCase(file: string, raw: RawCase, problems: DatasetProblem[]): Promise<LoadedCase | undefined> {
  const value = raw.value;
  const rawId = typeof value === 'object' && value !== null && 'id' in value && typeof value.id === 'string' ? value.id : undefined;
  const parsed = EvalCase.safeParse(value);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(...problemsOfIssue(file, raw, rawId, issue));
    return undefined;
  }
  const loaded: LoadedCase = { ...parsed.data, file, ...(raw.line === undefined ? {} : { line: raw.line }) };
  if (parsed.data.script !== undefined) {
    const scriptFile = path.resolve(path.dirname(file), parsed.data.script);
    if (!(await isFile(scriptFile))) {
      problems.push({ file, line: raw.lineAt(['script']), caseId: rawId, field: 'script', message: `no such script file: ${scriptFile}` });
      return undefined;
    }
    loaded.scriptFile = scriptFile;
  }
  if (parsed.data.specialistScripts !== undefined) {
    const files = parsed.data.specialistScripts.map((script) => path.resolve(path.dirname(file), script));
    const missing = [];
    for (const [index, scriptFile] of files.entries()) {
      if (!(await isFile(scriptFile))) missing.push({ file, line: raw.lineAt(['specialistScripts', index]), caseId: rawId, field: `specialistScripts[${index}]`, message: `no such script file: ${scriptFile}` });
    }
    if (missing.length > 0) {
      problems.push(...missing);
      return undefined;
    }
    loaded.specialistScriptFiles = files;
  }
  if (parsed.data.setup?.database !== undefined) {
    const databaseFile = path.resolve(path.dirname(file), parsed.data.setup.database);
    if (!(await isFile(databaseFile))) {
      problems.push({ file, line: raw.lineAt(['setup', 'database']), caseId: rawId, field: 'setup.database', message: `no such database file: ${databaseFile}` });
      return undefined;
    }
    loaded.databaseFile = databaseFile;
  }
  return loaded;
}

function problemsOfIssue(file: string, raw: RawCase, caseId: string | undefined, issue: z.core.$ZodIssue): DatasetProblem[] {
  const where = { file, ...(caseId === undefined ? {} : { caseId }) };
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({ ...where, line: raw.lineAt(issue.path, key), field: fieldName([...issue.path, key]), message: 'unknown field' }));
  }
  // zod says only "Invalid key in record" for a key its own rule refused; that rule says why.
  const message = issue.code === 'invalid_key' && issue.issues.length > 0 ? issue.issues.map((inner) => inner.message).join('; ') : issue.message;
  return [{ ...where, line: raw.lineAt(issue.path), field: fieldName(issue.path), message }];
}

function fieldName(issuePath: readonly PropertyKey[]): string | undefined {
  return issuePath.length === 0 ? undefined : formatIssuePath(issuePath);
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
