import { describe, expect, it, vi } from 'vitest';
import { EvalProgressDisplay, type ProgressStream } from '../../cli/evalProgress.ts';

function stream(isTTY: boolean, columns?: number): ProgressStream & { text: () => string } {
  const written: string[] = [];
  return { isTTY, ...(columns ? { columns } : {}), write: (text: string) => written.push(text), text: () => written.join('') };
}

const run = (caseId: string, passed: boolean, attempt = 1) => ({ caseId, label: '', attempt, passed, steps: 2, durationMs: 1500 });

describe('EvalProgressDisplay', () => {
  it('prints plain lines, one per note and run, when piped', () => {
    const out = stream(false);
    const display = new EvalProgressDisplay(out, 3);
    display.note('started a stack');
    display.finished(run('calc-sum', true));
    display.finished({ ...run('calc-sum', false, 2), label: ' (faults)' });
    display.end();
    expect(out.text()).toBe('· started a stack\n· [1/3] calc-sum: pass (2 steps, 1.5 s)\n· [2/3] calc-sum (faults) #2: FAIL (2 steps, 1.5 s)\n');
  });

  it('keeps a bar on the last line of a terminal, printing each run above it, and takes it away at the end', () => {
    let now = 0;
    const out = stream(true, 200);
    const display = new EvalProgressDisplay(out, 4, { now: () => now });
    now = 12_000;
    display.finished(run('calc-sum', true));
    display.finished(run('db-count', false));
    display.end();
    const text = out.text();
    expect(text).toContain('\r\x1b[2K· [1/4] calc-sum: pass (2 steps, 1.5 s)\n[██████░░░░░░░░░░░░░░░░░░] 1/4 runs · 1 passed · 0 failed · 12 s');
    expect(text).toContain('\r\x1b[2K· [2/4] db-count: FAIL (2 steps, 1.5 s)\n[████████████░░░░░░░░░░░░] 2/4 runs · 1 passed · 1 failed · 12 s');
    expect(text.endsWith('\r\x1b[2K')).toBe(true);
  });

  it('cuts lines to the terminal width, so the bar redraws in place, and strips control characters from case ids', () => {
    const out = stream(true, 30);
    const display = new EvalProgressDisplay(out, 1);
    display.finished(run('a-very-long-case-id-\x1b[31mred', true));
    const lines = out.text().split('\n').map((line) => line.replace('\r\x1b[2K', ''));
    for (const line of lines) expect(line.length).toBeLessThan(30);
    expect(out.text()).not.toContain('\x1b[31m');
  });
});

describe('EvalProgressDisplay on a terminal, while nothing finishes', () => {
  it('redraws the bar every second with the time elapsed, and stops at the end', () => {
    vi.useFakeTimers();
    try {
      let now = 0;
      const out = stream(true, 200);
      const display = new EvalProgressDisplay(out, 2, { now: () => now });
      now = 3_000;
      vi.advanceTimersByTime(1_000);
      expect(out.text()).toBe('\r\x1b[2K[░░░░░░░░░░░░░░░░░░░░░░░░] 0/2 runs · 0 passed · 0 failed · 3 s');
      display.end();
      const ended = out.text();
      vi.advanceTimersByTime(5_000);
      expect(out.text()).toBe(ended);
    } finally {
      vi.useRealTimers();
    }
  });
});
