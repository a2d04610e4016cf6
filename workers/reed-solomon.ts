// Reed-Solomon erasure coding over GF(2^8) in pure TypeScript: the definition of Coffer's shard format,
// the test oracle for the WASM kernel (workers/rs-native.ts) and the fallback where WASM SIMD is missing.
//
// The code is the one klauspost/reedsolomon builds by default (and MinIO stores, erasure-jbod.md §3.1):
// field GF(2^8) with the polynomial x^8+x^4+x^3+x^2+1 (0x11d), generator 2; an (k+m)×k Vandermonde
// matrix V[r][c] = r^c multiplied by the inverse of its top k×k square, so the top k rows are the
// identity (systematic: data shards are the data) and any k rows stay invertible (any m losses are
// repairable). docs/erasure.md describes the format; test/reed-solomon.test.ts pins it with golden vectors.
//
// Everything here is byte-wise: output byte i of a shard depends only on byte i of the input shards, so
// zero padding at the end of the shards never changes the bytes before it.

/** 0x11d without the x^8 bit, as klauspost's galois.go and Backblaze's JavaReedSolomon use. */
export const gfPolynomial = 0x11d;

/** Sets are 1..16 drives (erasure-jbod.md §3.2); the field alone would allow 256. */
export const erasureShardsMax = 16;

/** exp[i] = 2^i for i in 0..509 (doubled so exp[log a + log b] needs no modulo); log[0] is unused. */
const gfExp = new Uint8Array(510);
const gfLog = new Uint8Array(256);
{
  let value = 1;
  for (let power = 0; power < 255; power++) {
    gfExp[power] = value;
    gfExp[power + 255] = value;
    gfLog[value] = power;
    value <<= 1;
    if (value & 0x100) value ^= gfPolynomial;
  }
}

/** The full 64 KiB product table: row c (256 bytes from c*256) is "multiply by c". */
export const gfMultiplyTable: Uint8Array = (() => {
  const table = new Uint8Array(256 * 256);
  for (let a = 1; a < 256; a++) {
    for (let b = 1; b < 256; b++) table[a * 256 + b] = gfExp[gfLog[a]! + gfLog[b]!]!;
  }
  return table;
})();

export function gfMultiply(a: number, b: number): number {
  return gfMultiplyTable[(a << 8) | b]!;
}

export function gfInverse(a: number): number {
  if (a === 0) throw new Error('GF(2^8): zero has no inverse');
  return gfExp[255 - gfLog[a]!]!;
}

/** a^n with 0^0 = 1, as klauspost's galExp (the Vandermonde matrix's first column is all ones). */
export function gfPower(a: number, n: number): number {
  if (n === 0) return 1;
  if (a === 0) return 0;
  return gfExp[(gfLog[a]! * n) % 255]!;
}

/** A row-major matrix over GF(2^8). */
export interface GfMatrix {
  readonly rows: number;
  readonly columns: number;
  readonly cells: Uint8Array;
}

export function matrixMultiply(left: GfMatrix, right: GfMatrix): GfMatrix {
  if (left.columns !== right.rows) throw new Error('matrix multiply: shapes do not match');
  const cells = new Uint8Array(left.rows * right.columns);
  for (let r = 0; r < left.rows; r++) {
    for (let c = 0; c < right.columns; c++) {
      let sum = 0;
      for (let i = 0; i < left.columns; i++) sum ^= gfMultiply(left.cells[r * left.columns + i]!, right.cells[i * right.columns + c]!);
      cells[r * right.columns + c] = sum;
    }
  }
  return { rows: left.rows, columns: right.columns, cells };
}

/** Gauss-Jordan inversion; throws on a singular matrix (for our matrices: a bug, never data). */
export function matrixInvert(matrix: GfMatrix): GfMatrix {
  const size = matrix.rows;
  if (matrix.columns !== size) throw new Error('matrix invert: not square');
  const work = Uint8Array.from(matrix.cells);
  const inverse = new Uint8Array(size * size);
  for (let i = 0; i < size; i++) inverse[i * size + i] = 1;
  const swapRows = (cells: Uint8Array, a: number, b: number): void => {
    for (let c = 0; c < size; c++) {
      const t = cells[a * size + c]!;
      cells[a * size + c] = cells[b * size + c]!;
      cells[b * size + c] = t;
    }
  };
  for (let column = 0; column < size; column++) {
    let pivot = column;
    while (pivot < size && work[pivot * size + column] === 0) pivot++;
    if (pivot === size) throw new Error('matrix invert: singular matrix');
    if (pivot !== column) {
      swapRows(work, pivot, column);
      swapRows(inverse, pivot, column);
    }
    const scale = gfInverse(work[column * size + column]!);
    for (let c = 0; c < size; c++) {
      work[column * size + c] = gfMultiply(work[column * size + c]!, scale);
      inverse[column * size + c] = gfMultiply(inverse[column * size + c]!, scale);
    }
    for (let r = 0; r < size; r++) {
      const factor = work[r * size + column]!;
      if (r === column || factor === 0) continue;
      for (let c = 0; c < size; c++) {
        work[r * size + c]! ^= gfMultiply(factor, work[column * size + c]!);
        inverse[r * size + c]! ^= gfMultiply(factor, inverse[column * size + c]!);
      }
    }
  }
  return { rows: size, columns: size, cells: inverse };
}

/** Throws unless 1 ≤ k, 0 ≤ m ≤ k, k+m ≤ 16 (a misconfiguration: crash loudly). */
export function assertErasureParameters(dataShards: number, parityShards: number): void {
  const ok = Number.isInteger(dataShards) && Number.isInteger(parityShards) && dataShards >= 1 && parityShards >= 0 &&
    parityShards <= dataShards && dataShards + parityShards <= erasureShardsMax;
  if (!ok) {
    throw new Error(`erasure: need 1 ≤ k, 0 ≤ m ≤ k, k+m ≤ ${erasureShardsMax}; got k=${dataShards}, m=${parityShards}`);
  }
}

const encodingMatrixCache = new Map<string, GfMatrix>();

/**
 * The (k+m)×k systematic encoding matrix: Vandermonde V[r][c] = r^c times inverse(top k×k of V).
 * Rows 0..k-1 are the identity; row k+p gives parity shard p.
 */
export function encodingMatrix(dataShards: number, parityShards: number): GfMatrix {
  assertErasureParameters(dataShards, parityShards);
  const key = `${dataShards}+${parityShards}`;
  const cached = encodingMatrixCache.get(key);
  if (cached !== undefined) return cached;
  const totalShards = dataShards + parityShards;
  const vandermonde = new Uint8Array(totalShards * dataShards);
  for (let r = 0; r < totalShards; r++) {
    for (let c = 0; c < dataShards; c++) vandermonde[r * dataShards + c] = gfPower(r, c);
  }
  const top: GfMatrix = { rows: dataShards, columns: dataShards, cells: vandermonde.slice(0, dataShards * dataShards) };
  const matrix = matrixMultiply({ rows: totalShards, columns: dataShards, cells: vandermonde }, matrixInvert(top));
  for (let r = 0; r < dataShards; r++) {
    for (let c = 0; c < dataShards; c++) {
      if (matrix.cells[r * dataShards + c] !== (r === c ? 1 : 0)) throw new Error('erasure: encoding matrix is not systematic');
    }
  }
  encodingMatrixCache.set(key, matrix);
  return matrix;
}

/** The m×k rows that turn the k data shards into the m parity shards. */
export function parityRows(dataShards: number, parityShards: number): Uint8Array {
  return encodingMatrix(dataShards, parityShards).cells.slice(dataShards * dataShards);
}

/**
 * Rows (targets.length × k) that compute shards `targets` from the k shards `sources` (shard indices,
 * exactly k of them, distinct). A data target takes its row of inverse(rows of `sources`); a parity target
 * takes its encoding row times that inverse, so every target comes from the same k sources in one pass.
 */
export function reconstructionRows(
  dataShards: number, parityShards: number, sources: readonly number[], targets: readonly number[],
): Uint8Array {
  const k = dataShards;
  if (sources.length !== k) throw new Error(`erasure: reconstruction needs exactly ${k} sources`);
  const encoding = encodingMatrix(dataShards, parityShards);
  const chosen = new Uint8Array(k * k);
  sources.forEach((shardIndex, row) => chosen.set(encoding.cells.subarray(shardIndex * k, shardIndex * k + k), row * k));
  const decode = matrixInvert({ rows: k, columns: k, cells: chosen });
  const rows = new Uint8Array(targets.length * k);
  targets.forEach((shardIndex, row) => {
    const encodingRow: GfMatrix = { rows: 1, columns: k, cells: encoding.cells.subarray(shardIndex * k, shardIndex * k + k) };
    rows.set(matrixMultiply(encodingRow, decode).cells, row * k);
  });
  return rows;
}

/**
 * The one operation both kernels implement: for every target r,
 * targets[r][0..lengthBytes) = Σ_j rows[r*k + j] · sources[j][0..lengthBytes)   (k = sources.length).
 * Sources and targets must not overlap.
 */
export interface ShardKernel {
  readonly implementation: 'native' | 'typescript';
  multiplyRows(rows: Uint8Array, sources: readonly Uint8Array[], targets: readonly Uint8Array[], lengthBytes: number): void;
}

/** The byte loop with one 256-byte table row per coefficient (perf-primitives.md §3: ~0.3 GB/s at 4+2). */
export const typescriptKernel: ShardKernel = {
  implementation: 'typescript',
  multiplyRows(rows, sources, targets, lengthBytes) {
    const k = sources.length;
    if (rows.length !== targets.length * k) throw new Error('erasure kernel: rows do not match sources × targets');
    for (let r = 0; r < targets.length; r++) {
      const target = targets[r]!;
      if (target.length < lengthBytes) throw new Error('erasure kernel: target shorter than lengthBytes');
      let written = false;
      for (let j = 0; j < k; j++) {
        const source = sources[j]!;
        if (source.length < lengthBytes) throw new Error('erasure kernel: source shorter than lengthBytes');
        const coefficient = rows[r * k + j]!;
        if (coefficient === 0) continue;
        if (!written) {
          if (coefficient === 1) {
            target.set(source.subarray(0, lengthBytes));
          } else {
            const table = gfMultiplyTable.subarray(coefficient << 8, (coefficient << 8) + 256);
            for (let i = 0; i < lengthBytes; i++) target[i] = table[source[i]!]!;
          }
          written = true;
        } else if (coefficient === 1) {
          for (let i = 0; i < lengthBytes; i++) target[i]! ^= source[i]!;
        } else {
          const table = gfMultiplyTable.subarray(coefficient << 8, (coefficient << 8) + 256);
          for (let i = 0; i < lengthBytes; i++) target[i]! ^= table[source[i]!]!;
        }
      }
      if (!written) target.fill(0, 0, lengthBytes);
    }
  },
};
