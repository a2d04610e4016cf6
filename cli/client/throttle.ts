// A token bucket shared by every transfer of one `coffer` process, so `COFFER_CLIENT_THROTTLE_BYTES_PER_S`
// bounds the whole command's rate however many parts are in flight. Meant for tests (a progress bar needs a
// transfer that lasts) and for not saturating a slow link; unset means no limit and no cost.

/** How much a burst may run ahead of the rate: 1/10 s worth of bytes, at least one 256 KiB chunk. */
const burstSecondsMax = 0.1;
const burstBytesMin = 256 * 1024;

export class Throttle {
  private readonly bytesPerSecond: number;
  private readonly burstBytes: number;
  private availableBytes: number;
  private refilledAtMs: number;
  /** callers wait in turn so a large request cannot starve the others forever */
  private queue: Promise<void> = Promise.resolve();

  constructor(bytesPerSecond: number) {
    if (!(bytesPerSecond > 0) || !Number.isFinite(bytesPerSecond)) throw new Error('throttle rate must be a positive number');
    this.bytesPerSecond = bytesPerSecond;
    this.burstBytes = Math.max(burstBytesMin, bytesPerSecond * burstSecondsMax);
    this.availableBytes = this.burstBytes;
    this.refilledAtMs = performance.now();
  }

  /** Resolves once `bytes` may be sent (or received). */
  take(bytes: number): Promise<void> {
    const turn = this.queue.then(() => this.wait(bytes));
    this.queue = turn;
    return turn;
  }

  private async wait(bytes: number): Promise<void> {
    this.refill();
    this.availableBytes -= bytes;
    if (this.availableBytes >= 0) return;
    const waitMs = (-this.availableBytes / this.bytesPerSecond) * 1000;
    await new Promise<void>((resolve) => setTimeout(resolve, waitMs));
    this.refill();
  }

  private refill(): void {
    const nowMs = performance.now();
    this.availableBytes = Math.min(this.burstBytes, this.availableBytes + ((nowMs - this.refilledAtMs) / 1000) * this.bytesPerSecond);
    this.refilledAtMs = nowMs;
  }
}

let processThrottle: Throttle | undefined | null = null;

/** The process-wide throttle from COFFER_CLIENT_THROTTLE_BYTES_PER_S, or undefined when unset. */
export function clientThrottle(): Throttle | undefined {
  if (processThrottle !== null) return processThrottle;
  const text = process.env['COFFER_CLIENT_THROTTLE_BYTES_PER_S'];
  if (text === undefined || text === '') {
    processThrottle = undefined;
  } else {
    const rate = Number(text);
    if (!Number.isFinite(rate) || rate <= 0) throw new Error(`COFFER_CLIENT_THROTTLE_BYTES_PER_S must be a positive number of bytes, not ${JSON.stringify(text)}`);
    processThrottle = new Throttle(rate);
  }
  return processThrottle;
}
