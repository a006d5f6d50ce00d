import { useEffect, useState } from 'preact/hooks';
import type { ConsoleHealth } from '../../consoleApi.ts';
import { readHealth } from './api.ts';
import { ConsoleRefusal, describeFailure } from './errors.ts';

const pollMs = 10_000;

/** What the page knows of the console itself. */
export interface HealthState {
  health: ConsoleHealth | null;
  error: string | null;
  /** The console answered, but refused the page: a missing or wrong token. */
  unauthorized: boolean;
}

/** `/api/health`, read at once and every 10 s: the namespace, the NATS link, whether controls are off. */
export function useConsoleHealth(): HealthState {
  const [state, setState] = useState<HealthState>({ health: null, error: null, unauthorized: false });
  useEffect(() => {
    let live = true;
    const poll = () =>
      readHealth().then(
        (health) => live && setState({ health, error: null, unauthorized: false }),
        (error: unknown) =>
          live && setState((s) => ({ health: s.health, error: describeFailure(error), unauthorized: error instanceof ConsoleRefusal && error.status === 401 })),
      );
    void poll();
    const timer = setInterval(poll, pollMs);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, []);
  return state;
}
