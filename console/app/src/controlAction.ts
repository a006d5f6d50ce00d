import { useState } from 'preact/hooks';
import type { ControlName, ControlResponse } from '../../consoleApi.ts';
import { sendControl, type ControlBody } from './api.ts';
import { ConsoleRefusal, describeFailure } from './errors.ts';

/** One thing the operator did from this page, as the console answered it. */
export interface ControlLogEntry {
  at: number;
  control: ControlName;
  /** What it was, in words: `approve fs_write`, `redirect "use the cache"`. */
  what: string;
  by: string;
  /** The console's answer; `refused` also when it refused the request itself (409 conflict, 403 read-only), `failed` when it could not be asked or answered nonsense. */
  outcome: ControlResponse['status'] | 'failed';
  /** Why it was refused or failed; null when it was not. */
  reason: string | null;
}

/** Sends a control and reports it; answers the console's response, or null when it failed (the failure is in the result line). */
export type Act = <N extends ControlName>(control: N, body: ControlBody<N>, what: string) => Promise<ControlResponse | null>;

/** The controls of one session, as the panel uses them. */
export interface ControlAction {
  act: Act;
  /** The control being sent, while one is. */
  busy: ControlName | null;
  /** The latest action's outcome, for the status line. */
  latest: ControlLogEntry | null;
  /** Every action taken from this tab on this session, newest first; a rollback's dry run is not one (it changes nothing). */
  log: ControlLogEntry[];
}

const logLimit = 50;
const storageKey = (sessionId: string) => `troupe-console-actions:${sessionId}`;

function readLog(sessionId: string): ControlLogEntry[] {
  try {
    const stored: unknown = JSON.parse(sessionStorage.getItem(storageKey(sessionId)) ?? '[]');
    return Array.isArray(stored) ? (stored as ControlLogEntry[]) : [];
  } catch {
    return [];
  }
}

/**
 * Sends the operator's controls for one session, one at a time, and keeps what each did: the
 * latest for the status line, all of them (in sessionStorage, so a reload keeps them) for the
 * "actions by you" list.
 */
export function useControlAction(sessionId: string, operator: string): ControlAction {
  const [busy, setBusy] = useState<ControlName | null>(null);
  const [log, setLog] = useState<ControlLogEntry[]>(() => readLog(sessionId));
  const [latest, setLatest] = useState<ControlLogEntry | null>(null);
  const record = (entry: ControlLogEntry, dryRun: boolean) => {
    setLatest(entry);
    if (dryRun) return;
    setLog((current) => {
      const next = [entry, ...current].slice(0, logLimit);
      sessionStorage.setItem(storageKey(sessionId), JSON.stringify(next));
      return next;
    });
  };
  const act: Act = async (control, body, what) => {
    setBusy(control);
    const dryRun = 'dryRun' in body && body.dryRun === true;
    try {
      const response = await sendControl(sessionId, control, body, operator);
      record({ at: Date.now(), control, what, by: response.by, outcome: response.status, reason: response.reason }, dryRun);
      return response;
    } catch (error) {
      const outcome = error instanceof ConsoleRefusal ? 'refused' : 'failed';
      record({ at: Date.now(), control, what, by: operator.trim() || '(no name)', outcome, reason: describeFailure(error) }, dryRun);
      return null;
    } finally {
      setBusy(null);
    }
  };
  return { act, busy, latest, log };
}
