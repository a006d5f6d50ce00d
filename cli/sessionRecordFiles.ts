import { existsSync, mkdirSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { Checkpoint } from '../actors/durability/checkpointStore.ts';
import { recordSession } from '../evaluation/sessionRecording.ts';
import { UsageError } from './usageError.ts';

/**
 * Writes what `troupe sessions record <id> --out <file>` makes of a finished session: the case
 * into the YAML dataset `out` (a new file, or appended to a dataset that is a list of cases) and its
 * script beside it, in `scripts/<case id>.json`. Returns the two paths. Refuses to overwrite a
 * script or to add a case id the dataset already has.
 */
export function writeRecordedSession(checkpoint: Checkpoint, out: string, now = new Date()): { dataset: string; script: string; caseId: string } {
  if (!['.yaml', '.yml'].includes(extname(out))) throw new UsageError(`--out names a YAML dataset (.yaml or .yml), not ${JSON.stringify(out)}`);
  const caseId = `recorded-${checkpoint.sessionId.slice(0, 8)}`;
  const scriptRelative = `scripts/${caseId}.json`;
  const script = join(dirname(out), scriptRelative);
  if (existsSync(script)) throw new UsageError(`${script} exists already: this session was recorded into that folder before`);
  let existing: unknown;
  if (existsSync(out)) {
    try {
      existing = parse(readFileSync(out, 'utf8'));
    } catch (error) {
      throw new UsageError(`${out} is not YAML (${error instanceof Error ? error.message : String(error)}): give --out a new file or a dataset that is a list of cases`);
    }
    if (existing !== null && !Array.isArray(existing)) throw new UsageError(`${out} is not a list of cases: a recorded case can only be added to one (or written to a new file)`);
    if (Array.isArray(existing) && existing.some((c) => (c as { id?: unknown })?.id === caseId)) throw new UsageError(`${out} has a case ${caseId} already`);
  }
  const recorded = recordSession(checkpoint, { caseId, scriptFile: scriptRelative, recordedAt: now.toISOString() });
  mkdirSync(dirname(script), { recursive: true });
  writeFileSync(script, `${JSON.stringify(recorded.script, null, 2)}\n`);
  const entry = stringify([recorded.evalCase]);
  if (existing === undefined) writeFileSync(out, `# Recorded from session ${checkpoint.sessionId}: replay with troupe eval ${basename(out)}\n${entry}`);
  else appendFileSync(out, `${readFileSync(out, 'utf8').endsWith('\n') ? '' : '\n'}${entry}`);
  return { dataset: out, script, caseId };
}
