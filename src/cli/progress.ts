/**
 * A progress bar on stderr: redrawn in place on a terminal, a plain line every 10% otherwise
 * (CI logs, pipes), so long jobs always show where they are.
 */
export class ProgressBar {
  private readonly start = Date.now();
  private lastDraw = 0;
  private lastDecile = -1;
  private readonly tty: boolean;

  constructor(
    private total: number,
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly startAt = 0,
  ) {
    this.tty = !!stream.isTTY && !process.env['CI'];
  }

  /** Changes the total (a run whose length is re-estimated as it goes). */
  setTotal(total: number): void {
    this.total = total;
  }

  /** Reports `done` of `total` units with an optional status text. */
  update(done: number, status = ''): void {
    const now = Date.now();
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const elapsed = (now - this.start) / 1000;
    const rate = (done - this.startAt) / Math.max(elapsed, 1e-9);
    const eta = rate > 0 ? (this.total - done) / rate : Infinity;
    const line = `${this.label} ${done}/${this.total} ${(frac * 100).toFixed(0).padStart(3)}% ${status} ETA ${formatDuration(eta)}`;
    if (this.tty) {
      if (now - this.lastDraw < 100 && done < this.total) return;
      this.lastDraw = now;
      const width = 24;
      const filled = Math.round(frac * width);
      const cols = this.stream.columns ?? 120;
      const text = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${line}`;
      this.stream.write(`\r${text.slice(0, cols - 1).padEnd(Math.min(cols - 1, text.length))}\x1b[K`);
    } else {
      const decile = Math.floor(frac * 10);
      if (decile === this.lastDecile && done < this.total) return;
      this.lastDecile = decile;
      this.stream.write(`${line}\n`);
    }
  }

  /** Prints a line above the bar (on a terminal the bar is redrawn at the next update). */
  log(line: string): void {
    if (this.tty) {
      this.stream.write(`\r\x1b[K${line}\n`);
      this.lastDraw = 0;
    } else {
      this.stream.write(`${line}\n`);
    }
  }

  /** Ends the bar (moves to a new line on a terminal). */
  done(): void {
    if (this.tty) this.stream.write('\n');
  }
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
