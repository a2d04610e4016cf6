// Endpoint, credentials and TLS options shared by `coffer bench MODE` and `coffer bench compare` cases.

import { readFileSync } from 'node:fs';
import { S3Client } from './s3-client.ts';
import { UsageError } from './units.ts';

export interface Connection {
  readonly endpoint: URL;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
  readonly insecure: boolean;
  readonly caFile?: string;
}

export interface ConnectionArgs {
  readonly endpoint?: string | undefined;
  readonly accessKey?: string | undefined;
  readonly secretKey?: string | undefined;
  readonly region?: string | undefined;
  readonly insecure?: boolean | undefined;
  readonly ca?: string | undefined;
}

/** Credentials default to MINIO_ROOT_USER / MINIO_ROOT_PASSWORD (as the server's), else minioadmin. */
export function parseConnection(args: ConnectionArgs, what = '--endpoint'): Connection {
  if (args.endpoint === undefined) throw new UsageError(`${what} is required`);
  let endpoint: URL;
  try {
    endpoint = new URL(args.endpoint);
  } catch {
    throw new UsageError(`${what} ${JSON.stringify(args.endpoint)} is not a URL`);
  }
  if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') throw new UsageError(`${what} must be http:// or https://`);
  if (endpoint.pathname !== '/' || endpoint.search !== '') throw new UsageError(`${what} must be a bare origin like http://127.0.0.1:9000`);
  return {
    endpoint,
    accessKeyId: args.accessKey ?? process.env['MINIO_ROOT_USER'] ?? process.env['MINIO_ACCESS_KEY'] ?? 'minioadmin',
    secretAccessKey: args.secretKey ?? process.env['MINIO_ROOT_PASSWORD'] ?? process.env['MINIO_SECRET_KEY'] ?? 'minioadmin',
    region: args.region ?? process.env['MINIO_REGION'] ?? process.env['MINIO_SITE_REGION'] ?? 'us-east-1',
    insecure: args.insecure ?? false,
    ...(args.ca === undefined ? {} : { caFile: args.ca }),
  };
}

export function connect(connection: Connection, concurrency: number): S3Client {
  let ca: Buffer | undefined;
  if (connection.caFile !== undefined) {
    try {
      ca = readFileSync(connection.caFile);
    } catch (error) {
      throw new UsageError(`cannot read --ca ${connection.caFile}: ${(error as Error).message}`);
    }
  }
  return new S3Client({
    endpoint: connection.endpoint,
    accessKeyId: connection.accessKeyId,
    secretAccessKey: connection.secretAccessKey,
    region: connection.region,
    concurrency,
    insecure: connection.insecure,
    ...(ca === undefined ? {} : { ca }),
  });
}
