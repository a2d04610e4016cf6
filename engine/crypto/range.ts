// Plaintext byte range → ciphertext byte spans, per part (reference sse-kms-kes.md §8.6, MinIO
// `ObjectInfo.GetDecryptedRange`). Each part is its own DARE stream (own part key, sequence from 0), so a
// range read touches a suffix of the first part, whole middle parts and a prefix of the last part.
// Reads are rounded out to whole packages: a package can only be authenticated whole.

import { darePackageBytesMax, darePayloadBytesMax, encryptedSizeBytes } from '../../workers/dare.ts';

export interface EncryptedPartSpan {
  /** Index into `partPlainSizes` (not the S3 part number). */
  readonly partIndex: number;
  /** Offsets within this part's own ciphertext stream; always package-aligned at the start. */
  readonly encryptedStart: number;
  readonly encryptedEndExclusive: number;
  /** Sequence number of the package at `encryptedStart` (pass to decryptStream). */
  readonly firstSequence: number;
  /** Plaintext bytes to drop at the start of this span's decrypted output. */
  readonly skipBytes: number;
  /** Plaintext bytes to deliver from this span after skipping. */
  readonly takeBytes: number;
  /** True when the span reaches the part's final package (decrypt with expectFinal: true). */
  readonly finalIncluded: boolean;
}

/**
 * Plan the ciphertext reads for plaintext bytes [start, endInclusive] of an object whose parts have the
 * given plaintext sizes (one element for a single-part object). Zero-size parts are skipped. Throws
 * RangeError for an empty or out-of-bounds range (the API layer resolves suffix/open ranges and 416 first).
 */
export function planEncryptedRange(partPlainSizes: readonly number[], start: number, endInclusive: number): EncryptedPartSpan[] {
  let totalPlainBytes = 0;
  for (const sizeBytes of partPlainSizes) {
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) throw new RangeError(`bad part size ${sizeBytes}`);
    totalPlainBytes += sizeBytes;
  }
  if (!Number.isSafeInteger(totalPlainBytes)) throw new RangeError('object too large');
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(endInclusive) || start < 0 || endInclusive < start || endInclusive >= totalPlainBytes) {
    throw new RangeError(`range ${start}-${endInclusive} not within 0-${totalPlainBytes - 1}`);
  }
  const spans: EncryptedPartSpan[] = [];
  let partPlainStart = 0;
  for (let partIndex = 0; partIndex < partPlainSizes.length && partPlainStart <= endInclusive; partIndex++) {
    const partSizeBytes = partPlainSizes[partIndex]!;
    const partPlainEndExclusive = partPlainStart + partSizeBytes;
    if (partSizeBytes === 0 || partPlainEndExclusive <= start) {
      partPlainStart = partPlainEndExclusive;
      continue;
    }
    const localStart = Math.max(start, partPlainStart) - partPlainStart;
    const localEndInclusive = Math.min(endInclusive, partPlainEndExclusive - 1) - partPlainStart;
    const startPackage = Math.floor(localStart / darePayloadBytesMax);
    const endPackage = Math.floor(localEndInclusive / darePayloadBytesMax);
    const partEncryptedBytes = encryptedSizeBytes(partSizeBytes);
    const encryptedEndExclusive = Math.min((endPackage + 1) * darePackageBytesMax, partEncryptedBytes);
    spans.push({
      partIndex,
      encryptedStart: startPackage * darePackageBytesMax,
      encryptedEndExclusive,
      firstSequence: startPackage,
      skipBytes: localStart - startPackage * darePayloadBytesMax,
      takeBytes: localEndInclusive - localStart + 1,
      finalIncluded: encryptedEndExclusive === partEncryptedBytes,
    });
    partPlainStart = partPlainEndExclusive;
  }
  return spans;
}
