// A filesystem that refuses O_DIRECT (ramfs answers EINVAL) still gets every byte right, through the page
// cache, and the refusal is reported once — the server logs it, so a silent halving of throughput is visible.
// Needs root to mount a ramfs; skipped elsewhere.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, it, type TestContext } from 'node:test';
import { PutObjectCommand, GetObjectCommand, CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { StagedFileWriter, fileWriteCounters, onDirectIoRefused } from '../engine/file-writer.ts';
import { readBlocks } from '../engine/file-reader.ts';
import { accessKey, makeTempDir, removeDir, secretKey, startServer } from './helpers/server.ts';

const execFileAsync = promisify(execFile);
const MiB = 1024 * 1024;

async function withRamfs(t: TestContext, body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await makeTempDir('ramfs');
  try {
    await execFileAsync('mount', ['-t', 'ramfs', 'ramfs', dir]);
  } catch (error) {
    await removeDir(dir);
    t.skip(`cannot mount a ramfs here: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
    return;
  }
  try {
    await body(dir);
  } finally {
    await execFileAsync('umount', [dir]).catch(() => execFileAsync('umount', ['-l', dir]).catch(() => undefined));
    await removeDir(dir);
  }
}

describe('O_DIRECT refused (ramfs)', () => {
  it('the writer and the reader fall back to the page cache, exact bytes, one report each', async (t) => {
    await withRamfs(t, async (dir) => {
      const reports: string[] = [];
      onDirectIoRefused((what) => reports.push(what));
      try {
        const data = randomBytes(3 * MiB + 123);
        const before = { ...fileWriteCounters };
        for (const name of ['a', 'b']) {
          const writer = await StagedFileWriter.create(dir, path.join(dir, 'staging', name));
          await writer.write(data);
          await writer.finish();
          assert.deepEqual(await fs.readFile(path.join(dir, 'staging', name)), data, name);
        }
        assert.equal(fileWriteCounters.directBytes, before.directBytes, 'nothing went direct');
        assert.equal(fileWriteCounters.bufferedBytes - before.bufferedBytes, 2 * data.length);
        assert.deepEqual(reports, [`writes below ${dir}`], 'one report for the drive, not one per file');

        const handle = await fs.open(path.join(dir, 'staging', 'a'), 'r');
        try {
          const parts: Buffer[] = [];
          for await (const block of readBlocks(handle, 5, data.length, MiB, () => new Error('short'))) {
            parts.push(Buffer.from(block.bytes));
            block.release();
          }
          assert.deepEqual(Buffer.concat(parts), data.subarray(5), 'the reader fell back and read it all');
        } finally {
          await handle.close();
        }
        // Direct reads are refused for the process from now on, reported once (writes above, reads here).
        assert.deepEqual(reports, [`writes below ${dir}`, 'reads']);
      } finally {
        onDirectIoRefused(undefined);
      }
    });
  });

  it('a server on a ramfs drive logs the refusal and serves large objects correctly', async (t) => {
    await withRamfs(t, async (dir) => {
      const server = await startServer({ dataDir: dir });
      const s3 = new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: accessKey, secretAccessKey: secretKey } });
      try {
        await s3.send(new CreateBucketCommand({ Bucket: 'ram' }));
        const data = randomBytes(5 * MiB + 1);
        await s3.send(new PutObjectCommand({ Bucket: 'ram', Key: 'big', Body: data, ServerSideEncryption: 'AES256' }));
        const got = await s3.send(new GetObjectCommand({ Bucket: 'ram', Key: 'big' }));
        assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), data);
        assert.match(server.stderr(), /O_DIRECT refused by the filesystem/);
      } finally {
        s3.destroy();
        await server.stop();
      }
    });
  });
});
