// File descriptors of this test process, from Linux's /proc/self/fd: for checks that code under test
// closed what it opened.
import fs from 'node:fs';
import path from 'node:path';

/** Descriptors of this process open on `filePath` (deleted or not); undefined without /proc. */
export function openDescriptorsOf(filePath: string): number | undefined {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc/self/fd');
  } catch {
    return undefined;
  }
  let count = 0;
  for (const entry of entries) {
    try {
      const target = fs.readlinkSync(path.join('/proc/self/fd', entry));
      if (target === filePath || target === `${filePath} (deleted)`) count++;
    } catch {
      // closed while listing (the readdir's own descriptor)
    }
  }
  return count;
}
