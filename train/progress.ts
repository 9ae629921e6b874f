// Training progress on stderr, without dependencies.
//
// On a terminal the current epoch's line is redrawn in place (at most every
// `minIntervalMs`) and left behind when the epoch ends; anywhere else (CI
// logs, pipes, files) only the end-of-epoch summary is written, one line per
// epoch. A line reads
//
//   lenet5 epoch 3/10  step 125/125  loss 0.08731  2,914 ex/s  2.7s  test_acc=0.9765
//
// where loss is the running mean over the epoch's examples so far (each
// step's loss, itself a batch mean, weighted by its batch size).

/** Where lines go: process.stderr by default; anything with write() for tests. */
export interface ProgressSink {
  write(s: string): unknown;
  readonly isTTY?: boolean;
}

export interface ProgressOptions {
  /** Total epochs, shown as "epoch e/total" (absent: "epoch e"). */
  readonly epochs?: number;
  /** Prefix of every line, e.g. the model's name. */
  readonly label?: string;
  /** Default process.stderr. */
  readonly stream?: ProgressSink;
  /** Redraw in place (default: stream.isTTY). */
  readonly tty?: boolean;
  /** Minimum time between two in-place redraws, ms (default 100). */
  readonly minIntervalMs?: number;
  /** Clock in ms (default performance.now); injectable for tests. */
  readonly now?: () => number;
}

/** What one epoch did; endEpoch() returns it and keeps it in `history`. */
export interface EpochSummary {
  readonly epoch: number;
  /** Steps taken, and the number announced to startEpoch. */
  readonly steps: number;
  readonly plannedSteps: number;
  readonly examples: number;
  /** Example-weighted mean of the step losses. */
  readonly loss: number;
  readonly seconds: number;
  readonly examplesPerSecond: number;
  /** Extra values given to endEpoch (held-out loss, accuracy, ...). */
  readonly extra: Readonly<Record<string, number | string>>;
}

function fmtNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
  return v.toPrecision(4).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
}

function fmtRate(v: number): string {
  return Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "-";
}

/** Per-epoch progress and summaries; see the file comment for the output. */
export class Progress {
  readonly history: EpochSummary[] = [];
  private readonly stream: ProgressSink;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly minInterval: number;
  private epoch = 0;
  private plannedSteps = 0;
  private steps = 0;
  private examples = 0;
  private lossSum = 0;
  private started = 0;
  private lastDraw = -Infinity;
  private active = false;

  constructor(private readonly opts: ProgressOptions = {}) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? this.stream.isTTY === true;
    this.now = opts.now ?? (() => performance.now());
    this.minInterval = opts.minIntervalMs ?? 100;
  }

  /** Begin epoch `epoch` (numbered as you like, usually from 1) of `steps` steps. */
  startEpoch(epoch: number, steps: number): void {
    if (this.active) this.endEpoch();
    this.epoch = epoch;
    this.plannedSteps = steps;
    this.steps = 0;
    this.examples = 0;
    this.lossSum = 0;
    this.started = this.now();
    this.lastDraw = -Infinity;
    this.active = true;
  }

  /** Record one step: its loss (a batch mean) and how many examples the batch had. */
  step(loss: number, examples: number): void {
    if (!this.active) throw new Error("Progress.step before startEpoch");
    this.steps++;
    this.examples += examples;
    this.lossSum += loss * examples;
    if (this.tty) {
      const t = this.now();
      if (t - this.lastDraw >= this.minInterval || this.steps === this.plannedSteps) {
        this.lastDraw = t;
        this.stream.write(`\r${this.line(this.summary({}, t))}\x1b[K`);
      }
    }
  }

  /** The running mean loss of the current epoch (NaN before its first step). */
  get meanLoss(): number {
    return this.examples > 0 ? this.lossSum / this.examples : NaN;
  }

  /** End the epoch: write its summary line (with `extra` values appended) and return it. */
  endEpoch(extra: Record<string, number | string> = {}): EpochSummary {
    if (!this.active) throw new Error("Progress.endEpoch before startEpoch");
    this.active = false;
    const s = this.summary(extra, this.now());
    this.history.push(s);
    this.stream.write(`${this.tty ? "\r" : ""}${this.line(s)}${this.tty ? "\x1b[K" : ""}\n`);
    return s;
  }

  /** A free-form line (e.g. a final test accuracy), on its own line even mid-epoch on a terminal. */
  log(message: string): void {
    this.stream.write(`${this.tty && this.active ? "\n" : ""}${this.opts.label ? `${this.opts.label} ` : ""}${message}\n`);
  }

  private summary(extra: Record<string, number | string>, t: number): EpochSummary {
    const seconds = Math.max(0, (t - this.started) / 1000);
    return {
      epoch: this.epoch,
      steps: this.steps,
      plannedSteps: this.plannedSteps,
      examples: this.examples,
      loss: this.meanLoss,
      seconds,
      examplesPerSecond: seconds > 0 ? this.examples / seconds : NaN,
      extra: { ...extra },
    };
  }

  /** The text of a summary line (no newline). */
  line(s: EpochSummary): string {
    const parts = [
      `${this.opts.label ? `${this.opts.label} ` : ""}epoch ${s.epoch}${this.opts.epochs !== undefined ? `/${this.opts.epochs}` : ""}`,
      `step ${s.steps}/${s.plannedSteps}`,
      `loss ${fmtNumber(s.loss)}`,
      `${fmtRate(s.examplesPerSecond)} ex/s`,
      `${s.seconds.toFixed(1)}s`,
    ];
    const extras = Object.entries(s.extra).map(([k, v]) => `${k}=${typeof v === "number" ? fmtNumber(v) : v}`);
    return [...parts, ...extras].join("  ");
  }
}
