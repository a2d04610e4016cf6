// Recycled coffer.meta inodes. A DELETE moves the object's coffer.meta into tmp/ (its commit point) and
// used to unlink it there; a PUT then created a new file in tmp/ for its coffer.meta. Creating a file costs
// an inode allocation, and on ext4 without a journal every allocation first skips the group's recently
// deleted inodes one by one: after a burst of deletes that scan took ~20% of a small PUT's CPU, and the
// creators queued on tmp/'s directory lock behind it. Instead, a deleted object's coffer.meta stays in
// tmp/ and the next commit rewrites it in place (write, truncate, fdatasync) and renames it into its new
// object dir: no inode allocated, none freed. RocksDB recycles its WAL files for the same reason.
//
// The one hazard is a reader that opened the old coffer.meta before the delete and reads it after the
// rewrite: it would see another object's metadata under the deleted key. Every coffer.meta read takes a
// ticket for the time between its open and its last read (engine/objects.ts readObjectMeta), and a retired
// file is handed out only once every read that started before its retirement has ended (epoch-based
// reclamation: a read that starts later cannot reach it, as its old name was gone before it retired).

/** Retired files kept per drive (default). Beyond it they are unlinked as before; 0 turns recycling off. */
export const defaultMetaRecycleMax = 4096;

function configuredMax(): number {
  const text = process.env.COFFER_META_RECYCLE;
  if (text === undefined || text === '') return defaultMetaRecycleMax;
  if (text.toLowerCase() === 'off') return 0;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new Error(`COFFER_META_RECYCLE must be a count ≥ 0 or "off", not ${JSON.stringify(text)}`);
  return value;
}

/** Process-wide totals over every drive (for metrics). */
export const metaRecycleCounters = { retired: 0, reused: 0 };

let lastTicket = 0;
/** Tickets of the coffer.meta reads in flight, oldest first (a Map keeps insertion order across deletes). */
const readsInFlight = new Map<number, true>();

/** Call before opening a coffer.meta; pass the ticket to endMetaRead once the file is closed. */
export function beginMetaRead(): number {
  lastTicket += 1;
  readsInFlight.set(lastTicket, true);
  return lastTicket;
}

export function endMetaRead(ticket: number): void {
  readsInFlight.delete(ticket);
}

function oldestReadInFlight(): number {
  for (const ticket of readsInFlight.keys()) return ticket;
  return Number.POSITIVE_INFINITY;
}

interface Retired {
  readonly filePath: string;
  /** the last ticket handed out when the file left the namespace: reads up to it may still hold it open */
  readonly lastTicketBefore: number;
}

/** One drive's retired coffer.meta files, in tmp/ (wiped with it at startup). */
export class MetaFileRecycler {
  readonly #retired: Retired[] = [];
  readonly #max: number;
  /** files handed out for rewriting / files kept at retirement (for metrics and tests) */
  reused = 0;
  retired = 0;

  constructor(max = configuredMax()) {
    this.#max = max;
  }

  get size(): number {
    return this.#retired.length;
  }

  /**
   * Keep `filePath` (a coffer.meta already renamed out of its object dir) for reuse. False when the pool is
   * full or off: the caller removes the file as garbage.
   */
  retire(filePath: string): boolean {
    if (this.#retired.length >= this.#max) return false;
    this.#retired.push({ filePath, lastTicketBefore: lastTicket });
    this.retired += 1;
    metaRecycleCounters.retired += 1;
    return true;
  }

  /**
   * A retired file no reader can still hold open, now owned by the caller (rewrite it, rename it into place,
   * or remove it), or undefined. Files retire in ticket order, so only the oldest needs checking.
   */
  take(): string | undefined {
    const oldest = this.#retired[0];
    if (oldest === undefined || oldest.lastTicketBefore >= oldestReadInFlight()) return undefined;
    this.#retired.shift();
    this.reused += 1;
    metaRecycleCounters.reused += 1;
    return oldest.filePath;
  }

  /** Forget every retired file and return their paths (for removal). */
  drain(): string[] {
    return this.#retired.splice(0).map((retired) => retired.filePath);
  }
}
