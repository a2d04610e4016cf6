// The drives of one erasure set: formatting them as one deployment, telling which are online, and taking
// back a drive that returns (or is replaced by an empty one) while the server runs. docs/jbod.md §6.
//
// Identity: every drive's format.json names the deployment and the set matrix of drive UUIDs; position i of
// the command line must hold the drive whose UUID is at position i. A drive of another deployment, or one
// moved to another position, stops startup; an empty directory is a fresh drive and takes the UUID of its
// position (then it is healed). A missing directory is an offline drive and is never created: it may be
// an unmounted disk, and filling the mount point on the root file system would be worse than waiting.

import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import { Drive, DriveFormatError, formatName, formatVersion } from '../drive.ts';
import type { DriveFormat } from '../drive.ts';
import { DrivePaths } from '../paths.ts';
import type { DriveStatus } from '../types.ts';


/** How often offline drives are probed for their return. */
export const driveProbeIntervalMs = 1000;

/** Startup refused: the drives do not form one deployment, or too few of them are there. */
export class DriveSetError extends Error {
  override readonly name = 'DriveSetError';
}

interface Slot {
  readonly path: string;
  readonly driveId: string;
  drive: Drive | undefined;
  healing: boolean;
  /** a probe in flight, so concurrent failures do not pile up checks */
  probing: Promise<boolean> | undefined;
}

export class DriveSet {
  readonly deploymentId: string;
  readonly #slots: Slot[];
  readonly #format: DriveFormat;
  #monitor: NodeJS.Timeout | undefined;
  #onReturn: ((index: number) => void) | undefined;
  #closed = false;

  private constructor(format: DriveFormat, slots: Slot[]) {
    this.#format = format;
    this.deploymentId = format.deploymentId;
    this.#slots = slots;
  }

  /**
   * Format (or check) every drive of the deployment (command-line order, cut into sets of `setSize`) and
   * return one DriveSet per set. Each set needs `minOnline` drives present (formatted or fresh); fresh
   * drives come back marked `healing`.
   */
  static async openAll(drivePaths: readonly string[], setSize: number, minOnline: number): Promise<DriveSet[]> {
    if (!Number.isInteger(setSize) || setSize < 1 || drivePaths.length % setSize !== 0) {
      throw new DriveSetError(`${drivePaths.length} drives do not divide into sets of ${setSize}`);
    }
    const probes = await Promise.all(drivePaths.map((drivePath) => Drive.probeFormat(drivePath)));
    const formatted = probes.flatMap((probe, index) => (probe.state === 'formatted' ? [{ index, format: probe.format }] : []));
    const setCount = drivePaths.length / setSize;
    let reference: DriveFormat;
    if (formatted.length === 0) {
      // A new deployment: create the missing directories (nothing is on them yet, so nothing is adopted).
      const layout = Array.from({ length: setCount }, () => Array.from({ length: setSize }, () => randomUUID()));
      reference = { version: formatVersion, format: formatName, deploymentId: randomUUID(), thisDriveId: layout[0]![0]!, sets: layout };
      for (const drivePath of drivePaths) await fs.mkdir(drivePath, { recursive: true });
    } else {
      reference = DriveSet.#referenceFormat(drivePaths, setSize, formatted);
    }
    const sets: DriveSet[] = [];
    for (let setIndex = 0; setIndex < setCount; setIndex++) {
      const ids = reference.sets[setIndex]!;
      const slots: Slot[] = [];
      for (let position = 0; position < setSize; position++) {
        const index = setIndex * setSize + position;
        const drivePath = drivePaths[index]!;
        const probe = formatted.length === 0 ? { state: 'fresh' as const } : probes[index]!;
        const slot: Slot = { path: drivePath, driveId: ids[position]!, drive: undefined, healing: false, probing: undefined };
        slots.push(slot);
        if (probe.state === 'missing') continue;
        const format: DriveFormat = { ...reference, thisDriveId: ids[position]! };
        if (probe.state === 'fresh') {
          await Drive.writeFormat(drivePath, format);
          slot.healing = formatted.length > 0; // a replaced drive; a brand-new deployment has nothing to heal
        }
        slot.drive = await Drive.attach(drivePath, format);
      }
      const online = slots.filter((slot) => slot.drive !== undefined).length;
      if (online < minOnline) {
        const missing = slots.filter((slot) => slot.drive === undefined).map((slot) => slot.path);
        const which = setCount > 1 ? ` of set ${setIndex + 1}` : '';
        throw new DriveSetError(`only ${online} of ${slots.length} drives${which} are present, ${minOnline} needed; missing: ${missing.join(', ')}`);
      }
      sets.push(new DriveSet(reference, slots));
    }
    return sets;
  }

  /** The deployment's format as the formatted drives agree on it; refuses foreign or moved drives. */
  static #referenceFormat(drivePaths: readonly string[], setSize: number, formatted: readonly { index: number; format: DriveFormat }[]): DriveFormat {
    const byDeployment = new Map<string, number>();
    for (const { format } of formatted) byDeployment.set(format.deploymentId, (byDeployment.get(format.deploymentId) ?? 0) + 1);
    const [deploymentId] = [...byDeployment.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]!;
    const reference = formatted.find((entry) => entry.format.deploymentId === deploymentId)!.format;
    const layout = reference.sets;
    if (layout.length * setSize !== drivePaths.length || layout.some((set) => set.length !== setSize)) {
      const driveCount = layout.reduce((sum, set) => sum + set.length, 0);
      throw new DriveSetError(
        `${drivePaths[formatted[0]!.index]}: belongs to a deployment of ${driveCount} drives in ${layout.length} set(s) of ${layout[0]?.length ?? 0}, but ${drivePaths.length} drives in sets of ${setSize} were given`,
      );
    }
    const flat = layout.flat();
    for (const { index, format } of formatted) {
      const drivePath = drivePaths[index]!;
      if (format.deploymentId !== deploymentId) {
        throw new DriveFormatError(drivePath, `belongs to another deployment (${format.deploymentId}, not ${deploymentId}); refusing to use it`);
      }
      if (JSON.stringify(format.sets) !== JSON.stringify(layout)) {
        throw new DriveFormatError(drivePath, 'its format.json disagrees with the other drives on the set layout');
      }
      if (format.thisDriveId !== flat[index]) {
        const position = flat.indexOf(format.thisDriveId);
        throw new DriveFormatError(
          drivePath,
          position < 0 ? 'is not a drive of this deployment' : `is drive ${position + 1} of the deployment but was given as drive ${index + 1}: keep the command-line order`,
        );
      }
    }
    return reference;
  }

  get size(): number {
    return this.#slots.length;
  }

  /** The drive at `index` when it is usable, else undefined. */
  drive(index: number): Drive | undefined {
    return this.#slots[index]!.drive;
  }

  isHealing(index: number): boolean {
    return this.#slots[index]!.healing;
  }

  status(): DriveStatus[] {
    return this.#slots.map((slot) => ({ path: slot.path, state: slot.drive === undefined ? 'offline' : slot.healing ? 'healing' : 'ok' }));
  }

  /** Mark a drive fully healed (every object has its shard there again). */
  markHealed(index: number): void {
    this.#slots[index]!.healing = false;
  }

  /**
   * After an operation failed or found nothing on drive `index`: is the drive still there? A drive whose
   * format.json is gone (removed, unmounted, wiped) is taken offline until the monitor sees it return.
   */
  async confirmOnline(index: number): Promise<boolean> {
    const slot = this.#slots[index]!;
    if (slot.drive === undefined) return false;
    slot.probing ??= fs
      .access(new DrivePaths(slot.path).formatFile)
      .then(
        () => true,
        () => {
          slot.drive = undefined;
          return false;
        },
      )
      .finally(() => {
        slot.probing = undefined;
      });
    return slot.probing;
  }

  /** Probe offline drives every interval; `onReturn(index)` runs when one comes back (to heal it). */
  startMonitor(onReturn: (index: number) => void): void {
    this.#onReturn = onReturn;
    const tick = async (): Promise<void> => {
      for (let index = 0; index < this.#slots.length && !this.#closed; index++) {
        const slot = this.#slots[index]!;
        if (slot.drive === undefined) await this.#tryReturn(index).catch(() => undefined);
        else await this.confirmOnline(index); // takes it offline when its format.json is gone
      }
    };
    const loop = (): void => {
      this.#monitor = setTimeout(() => {
        void tick().finally(() => {
          if (!this.#closed) loop();
        });
      }, driveProbeIntervalMs);
      this.#monitor.unref();
    };
    loop();
  }

  async #tryReturn(index: number): Promise<void> {
    const slot = this.#slots[index]!;
    let probe;
    try {
      probe = await Drive.probeFormat(slot.path);
    } catch {
      return; // a foreign or garbled directory stays offline; an operator must look at it
    }
    if (probe.state === 'missing') return;
    const format: DriveFormat = { ...this.#format, thisDriveId: slot.driveId };
    if (probe.state === 'formatted') {
      if (probe.format.deploymentId !== this.deploymentId || probe.format.thisDriveId !== slot.driveId) return;
    } else {
      await Drive.writeFormat(slot.path, format);
    }
    slot.drive = await Drive.attach(slot.path, format);
    // Whatever it holds may be stale (it missed writes while away): heal it either way.
    slot.healing = true;
    this.#onReturn?.(index);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#monitor !== undefined) clearTimeout(this.#monitor);
    await Promise.all(this.#slots.map((slot) => slot.drive?.close()));
  }
}
