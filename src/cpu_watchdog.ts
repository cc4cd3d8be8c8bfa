/**
 * The per-event CPU limit, enforced from the host thread.
 *
 * While a worker has events in flight (requests, alarms, RPC calls, and WebSocket messages it
 * has not acknowledged yet), the watchdog samples the worker thread's CPU clock
 * (`worker.cpuUsage()`, which the host can read even while the worker spins in
 * `while (true) {}`; 10 ms granularity) every tick. The budget restarts whenever the worker
 * answers an event or becomes busy after being idle, as Cloudflare resets it for each new
 * request; a new request that merely queues behind a stuck one does not reset it (a batch of
 * socket output, which leaves at the end of a turn, also counts as an answer). When the CPU
 * used since the budget started exceeds the limit, `onExceeded` runs (the host terminates the
 * worker, which preempts it thanks to the bootstrap's Web Lock).
 *
 * Precision: the budget starts at the first sample after the event starts and the check runs
 * once per tick (a tenth of the limit, between 20 ms and 1 s), so a runaway event is stopped
 * after between `limit` and `limit + 2 ticks` of CPU time. Work an instance does with no event
 * in flight (a timer loop after its response) is sampled from the moment the host probes it for
 * idleness (the idle sweep, or `--hibernate-after` with sockets) until it answers: a loop there
 * never answers, and is stopped after `limit` more CPU time.
 */

/** Options for {@linkcode CpuWatchdog}. */
export interface CpuWatchdogOptions {
  limitMs: number;
  /** The worker thread's cumulative CPU time in µs. */
  read(): Promise<number>;
  /** Called once when the limit is exceeded, with the CPU ms used in the budget. */
  onExceeded(usedMs: number): void;
  /** Every sample (for metering). */
  onSample?(micros: number): void;
}

/** Watches one worker's CPU while it has events in flight. */
export class CpuWatchdog {
  readonly #options: CpuWatchdogOptions;
  readonly #tickMs: number;
  #timer: ReturnType<typeof setInterval> | null = null;
  #mark: number | null = null;
  #sampling = false;
  #stopped = false;

  constructor(options: CpuWatchdogOptions) {
    this.#options = options;
    this.#tickMs = Math.min(1_000, Math.max(20, Math.floor(options.limitMs / 10)));
  }

  /** An event was sent to the worker. */
  busy(): void {
    if (this.#stopped || this.#timer !== null) return;
    this.#mark = null;
    this.#timer = setInterval(() => this.#sample(), this.#tickMs);
  }

  /** The worker answered an event: its budget starts again. */
  progress(): void {
    this.#mark = null;
  }

  /** No event is in flight any more. */
  idle(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** The worker is gone. */
  stop(): void {
    this.#stopped = true;
    this.idle();
  }

  async #sample(): Promise<void> {
    if (this.#sampling || this.#stopped) return;
    this.#sampling = true;
    try {
      const micros = await this.#options.read();
      if (this.#stopped) return;
      this.#options.onSample?.(micros);
      if (this.#mark === null) {
        this.#mark = micros;
        return;
      }
      const usedMs = (micros - this.#mark) / 1000;
      if (usedMs > this.#options.limitMs) {
        this.stop();
        this.#options.onExceeded(usedMs);
      }
    } catch {
      // the worker exited between the tick and the read
    } finally {
      this.#sampling = false;
    }
  }
}
