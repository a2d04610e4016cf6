// coffer cat [--enc-c "ALIAS/BUCKET/PREFIX=BASE64KEY"] ALIAS/BUCKET/OBJECT|FILE...
//
// Streams each object (GET) or local file to stdout in turn, with backpressure; a closed stdout (`| head`)
// ends the command quietly. With --json the bytes are still written raw (as mc does); only errors become JSON.

import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { CommandError, isRemote, remotePath, requireObject, setUpCommand, UsageError } from './common.ts';
import { S3ClientError } from './s3-client.ts';
import { sseOptions, sseReadHeaders, SseRules } from './sse.ts';

export const catUsage = 'usage: coffer cat [--enc-c "ALIAS/BUCKET/PREFIX=BASE64KEY"] ALIAS/BUCKET/OBJECT|FILE...';

class StdoutClosed extends Error {}

function writeToStdout(chunk: Buffer): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      process.stdout.off('drain', onDrain);
      reject(error.code === 'EPIPE' ? new StdoutClosed() : error);
    };
    const onDrain = (): void => {
      process.stdout.off('error', onError);
      resolve();
    };
    if (process.stdout.write(chunk)) {
      resolve();
      return;
    }
    process.stdout.once('drain', onDrain);
    process.stdout.once('error', onError);
  });
}

async function pump(stream: Readable, throttle: { take(bytes: number): Promise<void> } | undefined, expectedBytes: number | undefined, what: string): Promise<void> {
  let receivedBytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    receivedBytes += chunk.length;
    if (throttle) await throttle.take(chunk.length);
    await writeToStdout(chunk);
  }
  if (expectedBytes !== undefined && receivedBytes !== expectedBytes) {
    throw new CommandError(`${what}: received ${receivedBytes} bytes, expected ${expectedBytes}`, 'IncompleteBody');
  }
}

export async function runCat(args: readonly string[]): Promise<number> {
  const setup = await setUpCommand(args, { ...sseOptions }, catUsage);
  if (setup === undefined) return 0;
  const { values, positionals, ctx } = setup;
  if (positionals.length === 0) throw new UsageError('cat needs ALIAS/BUCKET/OBJECT or FILE');
  const rules = new SseRules(values);
  const onStdoutError = (): void => undefined; // EPIPE is reported through writeToStdout
  process.stdout.on('error', onStdoutError);
  try {
    for (const text of positionals) {
      if (!isRemote(ctx, text)) {
        await pump(createReadStream(text), undefined, undefined, text);
        continue;
      }
      const path = remotePath(ctx, text);
      requireObject(path, 'cat');
      const headers = sseReadHeaders(rules.for(path.text));
      let response;
      try {
        response = await path.client.open({ method: 'GET', bucket: path.bucket, key: path.key, headers });
      } catch (error) {
        if (error instanceof S3ClientError && error.status === 400 && Object.keys(headers).length === 0) {
          throw new CommandError(`\`${path.text}\` is encrypted with a customer key (SSE-C): give it with --enc-c "${path.text}=BASE64KEY"`, 'SSECustomerKeyRequired');
        }
        throw error;
      }
      const length = response.headers['content-length'];
      await pump(response.stream, path.client.sharedThrottle, length === undefined ? undefined : Number(length), path.text);
    }
  } catch (error) {
    if (error instanceof StdoutClosed) return 0;
    throw error;
  } finally {
    process.stdout.off('error', onStdoutError);
  }
  return 0;
}
