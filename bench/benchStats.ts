import { readFileSync } from 'node:fs';

/** The `p`th percentile (nearest rank) of `values`; 0 for none. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

export const fmt = (n: number, digits = 3): string => n.toFixed(digits);

/** True when the process runs with `--expose-gc` (as `npm run bench` does), so memory readings follow a full GC. */
export const canCollect = (): boolean => typeof (globalThis as { gc?: unknown }).gc === 'function';

/**
 * A full collection: `gc()` three times with a turn of the event loop between, so that objects
 * kept only by a FinalizationRegistry or a pending callback are freed too. A no-op without `--expose-gc`.
 */
export async function fullGc(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return;
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** Heap and resident set of this process, after a full GC. */
export interface MemoryReading {
  readonly heapUsed: number;
  readonly rss: number;
}

export async function readMemory(): Promise<MemoryReading> {
  await fullGc();
  const { heapUsed, rss } = process.memoryUsage();
  return { heapUsed, rss };
}

export const mib = (bytes: number): string => fmt(bytes / 2 ** 20, 1);

/** Another process's resident set in bytes (Linux `/proc`), or undefined where that cannot be read. */
export function residentSetOf(pid: number): number | undefined {
  try {
    const kib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kib === undefined ? undefined : Number(kib) * 1024;
  } catch {
    return undefined;
  }
}
