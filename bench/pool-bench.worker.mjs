// Bench-only piscina entry (bench/pool.bench.ts): hand-off probes and the "MD5 state moves between
// threads" variant of the ETag question, using hash-wasm's save()/load() (perf-primitives.md Addendum).
import { createMD5 } from 'hash-wasm';
import { Piscina } from 'piscina';
import { tsImport } from 'tsx/esm/api';

const dare = await tsImport('../workers/dare.ts', import.meta.url);
const md5 = await createMD5();

const asBuffer = (view) => Buffer.from(view.buffer, view.byteOffset, view.byteLength);

/** Receives a buffer and answers its size: the cost of the hand-off alone. */
export function touch(task) {
  return task.data.byteLength;
}

/** Receives a buffer and moves it back. */
export function touchBack(task) {
  return Piscina.move(task.data);
}

/** MD5 state in (undefined = start), data in → new state out. */
export function md5Step(task) {
  if (task.md5State === undefined) md5.init();
  else md5.load(task.md5State);
  md5.update(task.data);
  return { md5State: md5.save(), md5Hex: task.digest ? md5.digest('hex') : undefined };
}

/** One block: continue the object's MD5 with it and seal it, in the same task. */
export function sealMd5(task) {
  const { md5State, md5Hex } = md5Step(task);
  const sealed = dare.sealPackages(asBuffer(task.key), asBuffer(task.nonce), task.firstSequence, task.data, task.final);
  const ciphertext = new Uint8Array(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  return Piscina.move({
    [Piscina.transferableSymbol]: [sealed.buffer],
    [Piscina.valueSymbol]: { md5State, md5Hex, ciphertext },
  });
}
