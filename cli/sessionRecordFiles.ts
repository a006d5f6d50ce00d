import { existsSync, mkdirSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { Checkpoint } from '../actors/durability/checkpointStore.ts';
import { recordSession, SessionRecordingError, specialistSessionIdsOf } from '../evaluation/sessionRecording.ts';
import { UsageError } from './usageError.ts';

/**
 * Every specialist session below `checkpoint` (its delegations, theirs, …), read with `read`, in
 * the order they were delegated. A session that is no longer stored (its bucket's TTL took it) is
 * a {@link SessionRecordingError}: the replay would have no script for its turns.
 */
export async function specialistSessionsOf(checkpoint: Checkpoint, read: (sessionId: string, agent: string) => Promise<Checkpoint | undefined>): Promise<Checkpoint[]> {
  const found: Checkpoint[] = [];
  for (let queue = specialistSessionIdsOf(checkpoint); queue.length > 0;) {
    const { sessionId: id, agent } = queue.shift() as { sessionId: string; agent: string };
    const specialist = await read(id, agent);
    if (!specialist) throw new SessionRecordingError(`session ${checkpoint.sessionId} delegated to specialist session ${id} (agent ${agent}), which is no longer stored`);
    found.push(specialist);
    queue = [...queue, ...specialistSessionIdsOf(specialist)];
  }
  return found;
}

/**
 * Writes what `troupe sessions record <id> --out <file>` makes of a finished session: the case
 * into the YAML dataset `out` (a new file, or appended to a dataset that is a list of cases) and its
 * script beside it, in `scripts/<case id>.json`, with one more per specialist session it delegated
 * to (`specialists`, {@link specialistSessionsOf}), `scripts/<case id>-specialist-<n>.json`. Returns
 * the paths. Refuses to overwrite a script or to add a case id the dataset already has.
 */
export function writeRecordedSession(checkpoint: Checkpoint, out: string, options: { specialists?: readonly Checkpoint[]; now?: Date } = {}): { dataset: string; script: string; specialistScripts: string[]; caseId: string } {
  const now = options.now ?? new Date();
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
  const specialists = (options.specialists ?? []).map((specialist, index) => ({ checkpoint: specialist, scriptFile: `scripts/${caseId}-specialist-${index + 1}.json` }));
  const taken = specialists.map((s) => join(dirname(out), s.scriptFile)).find((file) => existsSync(file));
  if (taken) throw new UsageError(`${taken} exists already: this session was recorded into that folder before`);
  const recorded = recordSession(checkpoint, { caseId, scriptFile: scriptRelative, recordedAt: now.toISOString(), specialists });
  mkdirSync(dirname(script), { recursive: true });
  writeFileSync(script, `${JSON.stringify(recorded.script, null, 2)}\n`);
  for (const specialist of recorded.specialistScripts) writeFileSync(join(dirname(out), specialist.file), `${JSON.stringify(specialist.script, null, 2)}\n`);
  const entry = stringify([recorded.evalCase]);
  if (existing === undefined) writeFileSync(out, `# Recorded from session ${checkpoint.sessionId}: replay with troupe eval ${basename(out)}\n${entry}`);
  else appendFileSync(out, `${readFileSync(out, 'utf8').endsWith('\n') ? '' : '\n'}${entry}`);
  return { dataset: out, script, specialistScripts: recorded.specialistScripts.map((s) => join(dirname(out), s.file)), caseId };
}
