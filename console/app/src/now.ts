import { useEffect, useState } from 'preact/hooks';

/** The current time in epoch milliseconds, re-rendering the caller every `intervalMs` (ages stay fresh). */
export function useNow(intervalMs = 1_000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}
