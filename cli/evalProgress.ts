import { terminalLine } from './terminalText.ts';

/** Where the progress is written: a terminal, or a pipe or file (no `isTTY`). */
export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): unknown;
}

/** One finished run of a case, as the progress shows it. */
export interface FinishedRun {
  caseId: string;
  /** After the id: ` (faults)` for a run on a stack that injects them. */
  label: string;
  attempt: number;
  passed: boolean;
  steps: number;
  durationMs: number;
}

const clearLine = '\r\x1b[2K';
const barWidth = 24;

/**
 * What `troupe eval` shows while it runs. On a terminal: a bar kept on the last line (runs done of
 * all, passed, failed, elapsed), with each finished run and each note printed above it. Piped: the
 * same notes and runs as plain lines, one each, and no bar, so a CI log reads top to bottom.
 */
export class EvalProgressDisplay {
  readonly #stream: ProgressStream;
  readonly #total: number;
  readonly #startedAt: number;
  readonly #now: () => number;
  #done = 0;
  #failed = 0;
  #barShown = false;
  #ticking: NodeJS.Timeout | undefined;

  constructor(stream: ProgressStream, total: number, options: { now?: () => number } = {}) {
    this.#stream = stream;
    this.#total = total;
    this.#now = options.now ?? (() => performance.now());
    this.#startedAt = this.#now();
    // The elapsed time moves on a terminal even while a stack starts and no run finishes.
    if (stream.isTTY) {
      this.#ticking = setInterval(() => this.#redraw(), 1_000);
      this.#ticking.unref();
    }
  }

  /** A line about the run itself (a stack started, a problem). */
  note(line: string): void {
    this.#print(`· ${line}`);
  }

  finished(run: FinishedRun): void {
    this.#done++;
    if (!run.passed) this.#failed++;
    const attempt = run.attempt > 1 ? ` #${run.attempt}` : '';
    this.#print(`· [${this.#done}/${this.#total}] ${terminalLine(run.caseId)}${run.label}${attempt}: ${run.passed ? 'pass' : 'FAIL'} (${run.steps} steps, ${(run.durationMs / 1000).toFixed(1)} s)`);
  }

  /** Takes the bar away, so that what follows (the report) starts on a clean line. */
  end(): void {
    clearInterval(this.#ticking);
    if (this.#barShown) this.#stream.write(clearLine);
    this.#barShown = false;
  }

  #redraw(): void {
    this.#stream.write(`${clearLine}${this.#bar()}`);
    this.#barShown = true;
  }

  #print(line: string): void {
    if (!this.#stream.isTTY) {
      this.#stream.write(`${line}\n`);
      return;
    }
    this.#stream.write(`${clearLine}${this.#fit(line)}\n${this.#bar()}`);
    this.#barShown = true;
  }

  #bar(): string {
    const share = this.#total === 0 ? 1 : Math.min(1, this.#done / this.#total);
    const filled = Math.round(share * barWidth);
    const seconds = Math.round((this.#now() - this.#startedAt) / 1000);
    return this.#fit(`[${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)}] ${this.#done}/${this.#total} runs · ${this.#done - this.#failed} passed · ${this.#failed} failed · ${seconds} s`);
  }

  // A line wider than the terminal wraps, and `\r` would then redraw only its last part.
  #fit(line: string): string {
    const width = this.#stream.columns ?? 0;
    return width > 1 && line.length >= width ? `${line.slice(0, width - 2)}…` : line;
  }
}
