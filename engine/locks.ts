// In-process keyed reader/writer locks. One drive, one process: a map of reference-counted locks is enough
// (the reference's single-node namespace lock, erasure-jbod.md section 7). A key's entry exists only while
// someone holds or waits for it, so memory is bounded by the number of concurrent operations.
//
// Waiters are served in FIFO order, so a steady stream of shared holders cannot starve an exclusive one.

interface Waiter {
  readonly exclusive: boolean;
  readonly wake: () => void;
}

interface LockState {
  sharedHolderCount: number;
  exclusiveHeld: boolean;
  readonly waiters: Waiter[];
}

export class KeyedLock {
  readonly #states = new Map<string, LockState>();

  /** Run `fn` while holding `key` exclusively. */
  async withExclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    await this.#acquire(key, true);
    try {
      return await fn();
    } finally {
      this.#release(key, true);
    }
  }

  /** Run `fn` while holding `key` shared (any number of shared holders, no exclusive one). */
  async withShared<T>(key: string, fn: () => Promise<T>): Promise<T> {
    await this.#acquire(key, false);
    try {
      return await fn();
    } finally {
      this.#release(key, false);
    }
  }

  /** Number of keys currently held or waited for (for tests and metrics). */
  get activeKeyCount(): number {
    return this.#states.size;
  }

  #acquire(key: string, exclusive: boolean): Promise<void> {
    let state = this.#states.get(key);
    if (state === undefined) {
      state = { sharedHolderCount: 0, exclusiveHeld: false, waiters: [] };
      this.#states.set(key, state);
    }
    const free = exclusive
      ? !state.exclusiveHeld && state.sharedHolderCount === 0 && state.waiters.length === 0
      : !state.exclusiveHeld && state.waiters.length === 0;
    if (free) {
      if (exclusive) state.exclusiveHeld = true;
      else state.sharedHolderCount++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      state.waiters.push({ exclusive, wake: resolve });
    });
  }

  #release(key: string, exclusive: boolean): void {
    const state = this.#states.get(key);
    if (state === undefined) throw new Error(`lock invariant: release of unheld key ${key}`);
    if (exclusive) {
      if (!state.exclusiveHeld) throw new Error(`lock invariant: exclusive release without hold on ${key}`);
      state.exclusiveHeld = false;
    } else {
      if (state.sharedHolderCount <= 0) throw new Error(`lock invariant: shared release without hold on ${key}`);
      state.sharedHolderCount--;
    }
    // Hand the lock to the head of the queue: one exclusive waiter, or a run of shared waiters.
    while (state.waiters.length > 0 && !state.exclusiveHeld) {
      const head = state.waiters[0]!;
      if (head.exclusive) {
        if (state.sharedHolderCount > 0) break;
        state.waiters.shift();
        state.exclusiveHeld = true;
        head.wake();
        break;
      }
      state.waiters.shift();
      state.sharedHolderCount++;
      head.wake();
    }
    if (!state.exclusiveHeld && state.sharedHolderCount === 0 && state.waiters.length === 0) {
      this.#states.delete(key);
    }
  }
}

// Lock names. Order of acquisition, to rule out deadlocks: bucket (shared, or exclusive for bucket
// create/delete), then object, then upload.
export function bucketLockKey(bucket: string): string {
  return `bucket\0${bucket}`;
}

export function objectLockKey(bucket: string, key: string): string {
  return `object\0${bucket}\0${key}`;
}

export function uploadLockKey(uploadId: string): string {
  return `upload\0${uploadId}`;
}
