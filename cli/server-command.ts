// `coffer server [--address HOST:PORT] [--certs-dir DIR] DIR...`
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { settingsFromEnv } from '../api/config.ts';
import { log } from '../api/log.ts';
import { S3Server } from '../api/server.ts';
import type { SseSettings } from '../api/sse.ts';
import { openEngine } from '../engine/open.ts';
import { onDirectIoRefused, setDirectIo } from '../engine/file-writer.ts';
import { nativeGcmStatus } from '../workers/native-gcm.ts';
import { openInline, readsOpenInJob } from '../engine/encrypted-body.ts';
import { nativeFsStatus } from '../engine/native-fs.ts';
import { nativeHashStatus } from '../engine/crypto/sha256.ts';
import { md5Kernel } from '../workers/md5-kernel.ts';
import { createBlockCipherPool, defaultPoolThreads } from '../workers/pool.ts';
import { BuiltinKms } from '../engine/kms/builtin.ts';
import { autoEncryption, kmsFromEnv } from '../engine/kms/from-env.ts';
import type { Kms } from '../engine/kms/kms.ts';
import { CachingKms } from '../engine/kms/cache.ts';
import { ObjectKeyCache } from '../engine/kms/object-key-cache.ts';
import { KesKms } from '../engine/kms/kes-client.ts';
import { serverObservability } from './observability.ts';
import { BucketKeys } from '../engine/kms/bucket-keys.ts';

const defaultAddress = '127.0.0.1:9000';
/** MinIO's default certificate folder, so MinIO's TLS guide works unchanged. */
const defaultCertsDir = path.join(os.homedir(), '.minio', 'certs');

export function parseAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address);
  if (!match) throw new Error(`invalid --address '${address}': expected HOST:PORT, [IPv6]:PORT or :PORT`);
  const host = match[1] ?? (match[2] === '' ? '0.0.0.0' : match[2]!);
  const port = Number(match[3]);
  if (port > 65535) throw new Error(`invalid port in --address '${address}'`);
  return { host, port };
}

function isOn(value: string | undefined): boolean {
  return value !== undefined && ['on', 'true', '1', 'yes'].includes(value.toLowerCase());
}

function isOff(value: string | undefined): boolean {
  return value !== undefined && ['off', 'false', '0', 'no'].includes(value.toLowerCase());
}

/** The KMS from MinIO's variables, or the development key file on the drives (with a loud warning). */
async function chooseKms(drives: readonly string[], warnings: string[]): Promise<Kms> {
  const choice = kmsFromEnv(process.env);
  if (choice.kind === 'builtin') return choice.kms;
  if (choice.kind === 'kes') return KesKms.connect(choice.config);
  const { kms, created, path: keyPath } = drives.length === 1 ? await BuiltinKms.fromDevKeyFile(drives[0]!) : await BuiltinKms.fromDevKeyFiles(drives);
  warnings.push(
    `WARNING: no KMS is configured: SSE-S3 uses the DEVELOPMENT key file ${keyPath}${created ? ' (created now)' : ''}.\n` +
      '         Anyone who can read the data folder can decrypt its objects. For production set MINIO_KMS_KES_* or\n' +
      '         MINIO_KMS_SECRET_KEY and keep the key away from the data.',
  );
  return kms;
}

export async function runServerCommand(args: readonly string[]): Promise<number> {
  let address = defaultAddress;
  let certsDir = defaultCertsDir;
  const dirs: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--address') address = args[++i] ?? '';
    else if (arg.startsWith('--address=')) address = arg.slice('--address='.length);
    else if (arg === '--certs-dir' || arg === '-S') certsDir = args[++i] ?? '';
    else if (arg.startsWith('--certs-dir=')) certsDir = arg.slice('--certs-dir='.length);
    else if (arg.startsWith('-')) throw new Error(`unknown flag ${arg}`);
    else dirs.push(arg);
  }
  if (dirs.length === 0) {
    process.stderr.write('coffer server: name at least one data directory, e.g. `coffer server ./data`\n');
    return 2;
  }
  const settings = settingsFromEnv(process.env);
  const { host, port } = parseAddress(address);
  const cipherPool = createBlockCipherPool(defaultPoolThreads);
  const warnings: string[] = [];
  const scannerMs = process.env.COFFER_SCANNER_INTERVAL_MS;
  // Large object data bypasses the page cache (engine/file-writer.ts) unless MinIO's switch says otherwise.
  setDirectIo(!isOff(process.env.MINIO_API_ODIRECT));
  onDirectIoRefused((what) => log.warn('O_DIRECT refused by the filesystem; using the page cache (slower, not less safe)', { for: what }));
  const { engine, drives, plan } = await openEngine(dirs, {
    cipherPool,
    env: process.env,
    onShardError: (where, error) => log.warn('shard failed verification or read; healing', { where, error: error.message }),
    ...(scannerMs === undefined ? {} : { scannerIntervalMs: Number(scannerMs) }),
  });
  warnings.push(...plan.warnings.map((warning) => `WARNING: ${warning}`));
  // The key cache wraps whichever KMS was chosen: unseals are cached, deduplicated and batched.
  const cacheTtlMs = process.env.COFFER_KMS_CACHE_TTL_MS;
  const innerKms = await chooseKms(drives, warnings);
  const kms = new CachingKms(innerKms, {
    ...(cacheTtlMs === undefined ? {} : { ttlMs: Number(cacheTtlMs) }),
    // the object-key cache below gets every new object's key, and reads ask it first
    cacheGeneratedKeys: false,
  });
  const bucketKeys = isOn(process.env.COFFER_KMS_BUCKET_KEYS) ? new BucketKeys(kms) : undefined;
  const sse: SseSettings = {
    kms,
    // Unwrapped object keys live as long as the data keys they come from (the KMS cache's TTL).
    objectKeys: new ObjectKeyCache(cacheTtlMs === undefined ? {} : { ttlMs: Number(cacheTtlMs) }),
    autoEncryption: autoEncryption(process.env, true),
    allowSseCOverHttp: isOn(process.env.COFFER_SSE_C_ALLOW_HTTP),
    ...(bucketKeys ? { bucketKeys } : {}),
  };
  const observe = serverObservability({ drives, kms, innerKms, pool: cipherPool, ...(bucketKeys ? { bucketKeys } : {}) });
  const certFile = path.join(certsDir, 'public.crt');
  const keyFile = path.join(certsDir, 'private.key');
  const tls = existsSync(certFile) && existsSync(keyFile) ? { certFile, keyFile } : undefined;
  const server = new S3Server({ engine, settings, host, port, sse, observe, ...(tls ? { tls } : {}) });
  const running = await server.listen();
  const lines = [
    `Coffer is serving ${drives.join(' ')}`,
    ...(engine.erasure === undefined
      ? []
      : [`Erasure: ${plan.setCount} ${plan.setCount === 1 ? 'set' : 'sets'} of ${plan.setSize} drives (${plan.dataShards} data + ${plan.parityShards} parity)`]),
    `API: ${running.endpoint}`,
    `RootUser: ${settings.accessKey}`,
    `RootPass: ${settings.usingDefaultCredentials ? settings.secretKey : '(as set in the environment)'}`,
    `KMS: ${(await kms.status()).name}, default key '${kms.defaultKeyName}'${sse.autoEncryption ? ', auto-encryption on' : ''}${sse.bucketKeys ? ', bucket keys on' : ''}`,
    `Crypto: AES-256-GCM ${nativeGcmStatus}, ${cipherPool.threads} pool thread${cipherPool.threads === 1 ? '' : 's'}; encrypted single-drive reads open ${readsOpenInJob ? 'in their read jobs' : openInline || cipherPool.threads === 0 ? 'inline' : 'on the pool'}; SHA-256 ${nativeHashStatus}; ETag MD5 ${md5Kernel.status}; metadata I/O ${nativeFsStatus}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (settings.usingDefaultCredentials) {
    warnings.push(
      'WARNING: using the default credentials minioadmin:minioadmin. Anyone who can reach this port has full access.\n' +
        '         Set MINIO_ROOT_USER and MINIO_ROOT_PASSWORD to secure this server.',
    );
  }
  if (sse.allowSseCOverHttp && !tls) warnings.push('WARNING: COFFER_SSE_C_ALLOW_HTTP is on: SSE-C keys travel in clear text over HTTP.');
  for (const warning of warnings) process.stderr.write(`${warning}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await running.close();
  await kms.close();
  await cipherPool.close();
  return 0;
}
