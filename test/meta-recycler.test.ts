// Recycled coffer.meta inodes (engine/meta-recycler.ts): a deleted object's coffer.meta is rewritten for the
// next commit instead of unlinking it and allocating a new inode — but never while a read that may hold it
// open is in flight, never past the pool's bound, and never visible as the wrong object.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { FsEngine } from '../engine/fs-engine.ts';
import { beginMetaRead, endMetaRead, MetaFileRecycler } from '../engine/meta-recycler.ts';
import { openEngine } from '../engine/open.ts';
import type { ObjectEngine, PutInput } from '../engine/types.ts';
import { createBlockCipherPool } from '../workers/pool.ts';

const roots: string[] = [];
after(async () => {
  for (const root of roots) await fs.rm(root, { recursive: true, force: true });
});

async function newRoot(): Promise<string> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-recycle-'));
  roots.push(root);
  return root;
}

function put(data: Buffer): PutInput {
  return {
    body: (async function* () {
      yield data;
    })(),
    expectedSizeBytes: data.length,
  };
}

async function readAll(engine: ObjectEngine, bucket: string, key: string): Promise<Buffer> {
  const reader = await engine.openObject(bucket, key);
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of reader.read(0, reader.info.sizeBytes - 1)) chunks.push(Buffer.from(chunk));
    return Buffer.concat(chunks);
  } finally {
    await reader.close();
  }
}

async function metaInode(driveDir: string, bucket: string, key: string): Promise<number> {
  return (await fs.stat(path.join(driveDir, bucket, key, 'coffer.meta'))).ino;
}

/** Inode numbers of the files in a drive's tmp/ (where retired coffer.meta files wait). */
async function tmpInodes(driveDir: string): Promise<number[]> {
  const tmpDir = path.join(driveDir, '.coffer.sys', 'tmp');
  return Promise.all((await fs.readdir(tmpDir)).map(async (name) => (await fs.stat(path.join(tmpDir, name))).ino));
}

describe('MetaFileRecycler', () => {
  it('hands out retired files oldest first once no read that began before their retirement is in flight', () => {
    const recycler = new MetaFileRecycler(10);
    assert.equal(recycler.take(), undefined, 'nothing retired yet');
    assert.ok(recycler.retire('/tmp/a'));
    const readBeforeB = beginMetaRead();
    assert.ok(recycler.retire('/tmp/b'));
    const readAfterB = beginMetaRead();
    assert.equal(recycler.take(), '/tmp/a', 'a retired before the read began');
    assert.equal(recycler.take(), undefined, 'b waits for the read that began before it retired');
    endMetaRead(readBeforeB);
    assert.equal(recycler.take(), '/tmp/b', 'a read that began after b retired does not hold it back');
    endMetaRead(readAfterB);
    assert.equal(recycler.size, 0);
    assert.equal(recycler.reused, 2);
  });

  it('keeps at most its bound, and nothing when off', () => {
    const recycler = new MetaFileRecycler(2);
    assert.ok(recycler.retire('/tmp/1'));
    assert.ok(recycler.retire('/tmp/2'));
    assert.equal(recycler.retire('/tmp/3'), false, 'full: the caller removes the file');
    assert.deepEqual(recycler.drain(), ['/tmp/1', '/tmp/2']);
    assert.equal(recycler.size, 0);
    const off = new MetaFileRecycler(0);
    assert.equal(off.retire('/tmp/x'), false);
    assert.equal(off.take(), undefined);
  });
});

describe('a single drive reuses deleted objects\' coffer.meta files', () => {
  it('rewrites the file in place for the next object, whatever their sizes, and reads back each object whole', async () => {
    const driveDir = path.join(await newRoot(), 'drive');
    const engine = await FsEngine.open([driveDir]);
    try {
      await engine.makeBucket('b');
      // inline objects: the coffer.meta holds the data, so sizes go from 100 KiB down to 0 and back up
      const sizes = [100 * 1024, 10, 0, 50_000, 3];
      const first = randomBytes(sizes[0]!);
      await engine.putObject('b', 'dir/k0', put(first));
      let previousInode = await metaInode(driveDir, 'b', 'dir/k0');
      for (let index = 1; index < sizes.length; index++) {
        await engine.deleteObject('b', `dir/k${index - 1}`);
        assert.deepEqual(await tmpInodes(driveDir), [previousInode], 'the deleted coffer.meta waits in tmp/');
        const data = randomBytes(sizes[index]!);
        await engine.putObject('b', `dir/k${index}`, put(data));
        assert.deepEqual(await tmpInodes(driveDir), [], 'and was taken by the next PUT');
        const inode = await metaInode(driveDir, 'b', `dir/k${index}`);
        assert.equal(inode, previousInode, `k${index} (${data.length} bytes) lives in k${index - 1}'s former coffer.meta`);
        assert.ok((await readAll(engine, 'b', `dir/k${index}`)).equals(data), `k${index} reads back whole`);
        assert.equal((await engine.statObject('b', `dir/k${index}`)).sizeBytes, data.length);
        previousInode = inode;
      }
      await assert.rejects(engine.statObject('b', 'dir/k0'), { kind: 'NoSuchKey' }, 'a deleted key stays deleted');
      // a non-inline object (its data in a data dir) takes a recycled coffer.meta too
      await engine.deleteObject('b', `dir/k${sizes.length - 1}`);
      const large = randomBytes(300 * 1024);
      await engine.putObject('b', 'large', put(large));
      assert.equal(await metaInode(driveDir, 'b', 'large'), previousInode);
      assert.ok((await readAll(engine, 'b', 'large')).equals(large));
      const listed = await engine.listObjects('b', { prefix: '', delimiter: '', after: '', maxKeys: 100 });
      assert.deepEqual(listed.objects.map((object) => object.key), ['large'], 'listing shows only the live object');
    } finally {
      await engine.close();
    }
  });

  it('does not rewrite a coffer.meta that a read begun before its delete may still hold open', async () => {
    const driveDir = path.join(await newRoot(), 'drive');
    const engine = await FsEngine.open([driveDir]);
    try {
      await engine.makeBucket('b');
      const oldData = Buffer.from('the deleted object');
      await engine.putObject('b', 'old', put(oldData));
      const oldInode = await metaInode(driveDir, 'b', 'old');
      const oldHandle = await fs.open(path.join(driveDir, 'b', 'old', 'coffer.meta'), 'r');
      const oldBytes = await fs.readFile(path.join(driveDir, 'b', 'old', 'coffer.meta'));
      const inFlight = beginMetaRead(); // as readObjectMeta does before its open
      try {
        await engine.deleteObject('b', 'old');
        await engine.putObject('b', 'new', put(Buffer.from('another object')));
        assert.deepEqual(await tmpInodes(driveDir), [oldInode], 'the deleted coffer.meta is kept, not rewritten');
        assert.notEqual(await metaInode(driveDir, 'b', 'new'), oldInode, 'a new file while the read is in flight');
        const seen = Buffer.alloc(oldBytes.length + 100);
        const { bytesRead } = await oldHandle.read(seen, 0, seen.length, 0);
        assert.ok(seen.subarray(0, bytesRead).equals(oldBytes), 'the open coffer.meta still holds the deleted object');
      } finally {
        endMetaRead(inFlight);
        await oldHandle.close();
      }
      await engine.deleteObject('b', 'new');
      await engine.putObject('b', 'later', put(Buffer.from('later')));
      assert.equal(await metaInode(driveDir, 'b', 'later'), oldInode, 'reused once the read has ended (oldest first)');
      assert.equal((await readAll(engine, 'b', 'later')).toString(), 'later');
    } finally {
      await engine.close();
    }
  });

  it('COFFER_META_RECYCLE=0 removes deleted coffer.meta files as before', async () => {
    const previous = process.env.COFFER_META_RECYCLE;
    process.env.COFFER_META_RECYCLE = '0';
    const driveDir = path.join(await newRoot(), 'drive');
    let engine: FsEngine;
    try {
      engine = await FsEngine.open([driveDir]);
    } finally {
      if (previous === undefined) delete process.env.COFFER_META_RECYCLE;
      else process.env.COFFER_META_RECYCLE = previous;
    }
    try {
      await engine.makeBucket('b');
      await engine.putObject('b', 'a', put(Buffer.from('a')));
      await engine.deleteObject('b', 'a');
      assert.deepEqual(await tmpInodes(driveDir), [], 'the deleted coffer.meta was removed at once');
      await engine.putObject('b', 'c', put(Buffer.from('c')));
      assert.equal((await readAll(engine, 'b', 'c')).toString(), 'c');
    } finally {
      await engine.close();
    }
  });
});

describe('an erasure set reuses them on every drive', () => {
  it('PUT after DELETE rewrites each drive\'s former coffer.meta and reads back whole', async () => {
    const root = await newRoot();
    const pool = createBlockCipherPool(0);
    const { engine, drives } = await openEngine([path.join(root, 'd{1...4}')], { cipherPool: pool, env: {}, scannerIntervalMs: 0 });
    try {
      await engine.makeBucket('b');
      const first = randomBytes(20_000);
      await engine.putObject('b', 'x/one', put(first));
      const inodes = await Promise.all(drives.map((drive) => metaInode(drive, 'b', 'x/one')));
      await engine.deleteObject('b', 'x/one');
      const second = randomBytes(700 * 1024);
      await engine.putObject('b', 'y/two', put(second));
      assert.deepEqual(await Promise.all(drives.map((drive) => metaInode(drive, 'b', 'y/two'))), inodes);
      assert.ok((await readAll(engine, 'b', 'y/two')).equals(second));
    } finally {
      await engine.close();
      await pool.close?.();
    }
  });
});
