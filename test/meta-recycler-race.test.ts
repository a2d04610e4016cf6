// Recycled coffer.meta files under concurrency (engine/meta-recycler.ts): writers churn PUTs and DELETEs of
// small objects whose metadata names their own key, so deleted objects' coffer.meta files are rewritten for
// new ones all the time, while readers list, HEAD and GET without pause. Every answer must describe the key
// it was asked about, and every GET serve that key's bytes. Metadata I/O runs through node:fs here
// (COFFER_NATIVE_FS=off), whose open and read are separate thread-pool jobs. This is a stress test: the
// window it guards is microseconds wide, so the read tickets themselves are checked deterministically in
// test/meta-recycler.test.ts (an open coffer.meta of a deleted key is never rewritten).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import type { ObjectEngine, ObjectInfo, PutInput } from '../engine/types.ts';

process.env.COFFER_NATIVE_FS = 'off'; // before the engine loads engine/native-fs.ts
const { FsEngine } = await import('../engine/fs-engine.ts');
const { nativeFsStatus } = await import('../engine/native-fs.ts');
const { metaRecycleCounters } = await import('../engine/meta-recycler.ts');

const roots: string[] = [];
after(async () => {
  for (const root of roots) await fs.rm(root, { recursive: true, force: true });
});

function put(key: string, version: number): PutInput {
  const body = Buffer.concat([Buffer.from(`${key}#${version}#`), randomBytes(200 + ((version * 131) % 2000))]);
  return {
    body: (async function* () {
      yield body;
    })(),
    expectedSizeBytes: body.length,
    userMetadata: { 'x-amz-meta-key': key },
  };
}

function describesItsKey(info: ObjectInfo, key: string, where: string): void {
  assert.equal(info.key, key, `${where}: asked for ${key}`);
  assert.equal(info.userMetadata['x-amz-meta-key'], key, `${where}: ${key} answered with the metadata of ${info.userMetadata['x-amz-meta-key']}`);
}

async function readBody(engine: ObjectEngine, key: string): Promise<Buffer | undefined> {
  let reader;
  try {
    reader = await engine.openObject('b', key);
  } catch (error) {
    if ((error as { kind?: string }).kind === 'NoSuchKey') return undefined;
    throw error;
  }
  try {
    describesItsKey(reader.info, key, 'GET');
    const chunks: Buffer[] = [];
    for await (const chunk of reader.read(0, reader.info.sizeBytes - 1)) chunks.push(Buffer.from(chunk));
    return Buffer.concat(chunks);
  } finally {
    await reader.close();
  }
}

test('listings, HEADs and GETs racing PUTs and DELETEs that recycle coffer.meta files always describe their own key', async () => {
  assert.equal(nativeFsStatus, 'node:fs (COFFER_NATIVE_FS=off)', 'metadata through node:fs, open and read as separate jobs');
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-recycle-race-'));
  roots.push(root);
  const engine = await FsEngine.open([path.join(root, 'drive')]);
  try {
    await engine.makeBucket('b');
    const keys = Array.from({ length: 24 }, (_, index) => `k${String(index).padStart(2, '0')}`);
    let stopped = false;
    let writes = 0;
    let reads = 0;
    const writer = async (worker: number): Promise<void> => {
      for (let version = 0; !stopped; version++) {
        // each of the worker's four keys in turn: PUT, then DELETE
        const key = keys[(worker * 4 + (Math.floor(version / 2) % 4)) % keys.length]!;
        if (version % 2 === 1) await engine.deleteObject('b', key);
        else await engine.putObject('b', key, put(key, version));
        writes++;
      }
    };
    const lister = async (): Promise<void> => {
      while (!stopped) {
        const page = await engine.listObjects('b', { prefix: '', delimiter: '', after: '', maxKeys: 1000 });
        for (const info of page.objects) describesItsKey(info, info.key, 'listing');
        reads++;
      }
    };
    const getter = async (offset: number): Promise<void> => {
      for (let index = offset; !stopped; index++) {
        const key = keys[index % keys.length]!;
        try {
          describesItsKey(await engine.statObject('b', key), key, 'HEAD');
        } catch (error) {
          if ((error as { kind?: string }).kind !== 'NoSuchKey') throw error;
        }
        const body = await readBody(engine, key);
        if (body !== undefined) assert.ok(body.toString('latin1').startsWith(`${key}#`), `GET ${key} served another object's bytes`);
        reads++;
      }
    };
    const running = [
      ...Array.from({ length: 6 }, (_, worker) => writer(worker)),
      lister(),
      lister(),
      getter(0),
      getter(7),
      getter(13),
    ];
    await new Promise((resolve) => setTimeout(resolve, 2000));
    stopped = true;
    await Promise.all(running);
    assert.ok(writes > 200, `enough churn (${writes} writes)`);
    assert.ok(reads > 100, `enough reads (${reads})`);
    assert.ok(metaRecycleCounters.reused > 50, `PUTs rewrote deleted objects' coffer.meta files meanwhile (${metaRecycleCounters.reused})`);
  } finally {
    await engine.close();
  }
});
