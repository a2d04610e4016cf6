// `coffer kes …`: the KES-compatible key server (kes/server.ts) and the helpers to set it up and use it.
//
//   coffer kes server --config kes.yml [--addr HOST:PORT]
//   coffer kes identity new [--key FILE --cert FILE] [--ip IP]... [--dns NAME]... [--days N] [--force] NAME
//   coffer kes identity of CERT_FILE|API_KEY
//   coffer kes key create NAME...          coffer kes key describe NAME [--json]
//   coffer kes key delete NAME...          coffer kes key list [PATTERN] [--json]
//
// Key commands reach a server with --server (env KES_SERVER, default https://127.0.0.1:7373) and authenticate
// with --key/--cert (env KES_CLIENT_KEY/KES_CLIENT_CERT) or --api-key (env KES_API_KEY). The server certificate is
// verified against --ca (env KES_CA_FILE) or the system roots, unless --insecure/-k.

import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { isIP } from 'node:net';
import { loadConfig } from '../kes/config.ts';
import { KesClient, KesClientError } from '../kes/client.ts';
import { KesServer } from '../kes/server.ts';
import { identityOfCertificate, identityOfPublicKey, keyFromApiKey, newApiKey, selfSignedCertificate, apiKeyPrefix } from '../engine/kms/x509.ts';

const defaultServer = 'https://127.0.0.1:7373';
const defaultCertificateDays = 365;

const usage = `usage:
  coffer kes server --config FILE [--addr HOST:PORT]
  coffer kes identity new [--key FILE --cert FILE] [--ip IP]... [--dns NAME]... [--days N] [--force] NAME
  coffer kes identity of CERT_FILE|API_KEY
  coffer kes key create NAME...
  coffer kes key describe NAME [--json]
  coffer kes key delete NAME...
  coffer kes key list [PATTERN] [--json]

key commands: --server URL (KES_SERVER, default ${defaultServer})
              --key FILE --cert FILE (KES_CLIENT_KEY, KES_CLIENT_CERT) or --api-key KEY (KES_API_KEY)
              --ca FILE (KES_CA_FILE) or --insecure/-k
`;

class UsageError extends Error {}

interface ParsedArgs {
  readonly positional: string[];
  readonly values: Map<string, string[]>;
  readonly flags: Set<string>;
}

/** `--name value`, `--name=value` and boolean flags; anything unknown is a usage error. */
function parseArgs(args: readonly string[], valueOptions: readonly string[], booleanOptions: readonly string[], aliases: Readonly<Record<string, string>> = {}): ParsedArgs {
  const positional: string[] = [];
  const values = new Map<string, string[]>();
  const flags = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    let arg = args[i]!;
    if (arg === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    arg = aliases[arg] ?? arg;
    const equalsIndex = arg.indexOf('=');
    const name = (equalsIndex < 0 ? arg : arg.slice(0, equalsIndex)).replace(/^--?/, '');
    if (valueOptions.includes(name)) {
      const value = equalsIndex < 0 ? args[++i] : arg.slice(equalsIndex + 1);
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      values.set(name, [...(values.get(name) ?? []), value]);
    } else if (booleanOptions.includes(name) && equalsIndex < 0) flags.add(name);
    else throw new UsageError(`unknown flag ${args[i]}`);
  }
  return { positional, values, flags };
}

function lastValue(parsed: ParsedArgs, name: string): string | undefined {
  return parsed.values.get(name)?.at(-1);
}

// ---- server ----

async function runServer(args: readonly string[]): Promise<number> {
  const parsed = parseArgs(args, ['config', 'addr', 'address'], []);
  const configPath = lastValue(parsed, 'config');
  if (configPath === undefined || parsed.positional.length > 0) throw new UsageError('kes server needs --config FILE');
  const config = await loadConfig(configPath);
  for (const warning of config.warnings) process.stderr.write(`WARNING: ${warning}\n`);
  const address = lastValue(parsed, 'addr') ?? lastValue(parsed, 'address');
  const server = await KesServer.start({ config, ...(address !== undefined ? { address } : {}) });
  // Never print key material: only where we listen and who the admin is.
  process.stdout.write(
    `coffer kes: listening on ${server.url}\n` +
      `Admin identity: ${server.adminIdentity === '' ? 'disabled' : server.adminIdentity}\n` +
      `Key store: ${server.keyStoreDescription}\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  return 0;
}

// ---- identity ----

async function writeNewFile(filePath: string, text: string, mode: number, force: boolean): Promise<void> {
  await fs.writeFile(filePath, text, { mode, flag: force ? 'w' : 'wx' }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'EEXIST') throw new Error(`${filePath} already exists (use --force to overwrite)`);
    throw error;
  });
  await fs.chmod(filePath, mode);
}

async function runIdentityNew(args: readonly string[]): Promise<number> {
  const parsed = parseArgs(args, ['key', 'cert', 'ip', 'dns', 'days'], ['force']);
  if (parsed.positional.length > 1) throw new UsageError('identity new takes one NAME (the certificate common name)');
  const keyPath = lastValue(parsed, 'key');
  const certPath = lastValue(parsed, 'cert');
  if ((keyPath === undefined) !== (certPath === undefined)) throw new UsageError('identity new needs both --key and --cert, or neither (API key)');

  if (keyPath === undefined || certPath === undefined) {
    // Like `kes identity new` without files: an API key, from which clients derive their certificate.
    const apiKey = newApiKey();
    const { identity } = keyFromApiKey(apiKey);
    process.stdout.write(`Your API key:\n\n   ${apiKey}\n\nThis is the only time it is shown. Keep it secret.\n\nIdentity:  ${identity}\n`);
    return 0;
  }
  const commonName = parsed.positional[0];
  if (commonName === undefined || commonName === '') throw new UsageError('identity new needs a NAME (the certificate common name)');
  const ipAddresses = parsed.values.get('ip') ?? [];
  for (const ip of ipAddresses) if (isIP(ip) === 0) throw new UsageError(`--ip '${ip}' is not an IP address`);
  const days = Number(lastValue(parsed, 'days') ?? defaultCertificateDays);
  if (!Number.isInteger(days) || days < 1) throw new UsageError('--days must be a positive integer');

  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const certPem = selfSignedCertificate({
    privateKey,
    commonName,
    validDays: days,
    extKeyUsage: ['clientAuth', 'serverAuth'], // one identity file pair serves as server or client certificate
    dnsNames: parsed.values.get('dns') ?? [],
    ipAddresses,
  });
  const force = parsed.flags.has('force');
  await writeNewFile(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600, force);
  await writeNewFile(certPath, certPem, 0o644, force);
  process.stdout.write(`Private key:  ${keyPath}\nCertificate:  ${certPath}\nIdentity:     ${identityOfPublicKey(publicKey)}\n`);
  return 0;
}

async function runIdentityOf(args: readonly string[]): Promise<number> {
  const parsed = parseArgs(args, [], []);
  if (parsed.positional.length !== 1) throw new UsageError('identity of takes one certificate file or API key');
  const subject = parsed.positional[0]!;
  const identity = subject.startsWith(apiKeyPrefix) ? keyFromApiKey(subject).identity : identityOfCertificate(await fs.readFile(subject));
  process.stdout.write(`${identity}\n`);
  return 0;
}

// ---- key ----

async function clientFrom(parsed: ParsedArgs): Promise<KesClient> {
  const env = process.env;
  const server = lastValue(parsed, 'server') ?? env.KES_SERVER ?? defaultServer;
  const keyPath = lastValue(parsed, 'key') ?? env.KES_CLIENT_KEY;
  const certPath = lastValue(parsed, 'cert') ?? env.KES_CLIENT_CERT;
  const apiKey = lastValue(parsed, 'api-key') ?? env.KES_API_KEY;
  const caPath = lastValue(parsed, 'ca') ?? env.KES_CA_FILE;
  const insecure = parsed.flags.has('insecure');
  if (apiKey === undefined && (keyPath === undefined || certPath === undefined)) {
    throw new UsageError('no client credentials: set --key and --cert (KES_CLIENT_KEY, KES_CLIENT_CERT) or --api-key (KES_API_KEY)');
  }
  let key: KeyObject | undefined;
  let cert: Buffer | undefined;
  if (apiKey === undefined) {
    key = createPrivateKey(await fs.readFile(keyPath!));
    cert = await fs.readFile(certPath!);
  }
  const ca = caPath !== undefined && !insecure ? await fs.readFile(caPath) : undefined;
  return new KesClient({
    server,
    ...(apiKey !== undefined ? { apiKey } : { key: key!, cert: cert! }),
    ...(ca !== undefined ? { ca } : {}),
    insecure,
  });
}

async function runKey(subcommand: string | undefined, args: readonly string[]): Promise<number> {
  const parsed = parseArgs(args, ['server', 'key', 'cert', 'ca', 'api-key'], ['insecure', 'json'], { '-k': '--insecure' });
  const names = parsed.positional;
  const asJson = parsed.flags.has('json');
  switch (subcommand) {
    case 'create': {
      if (names.length === 0) throw new UsageError('key create needs at least one NAME');
      const client = await clientFrom(parsed);
      for (const name of names) await client.createKey(name).catch(failWith(`failed to create key '${name}'`));
      return 0;
    }
    case 'describe':
    case 'info': {
      if (names.length !== 1) throw new UsageError('key describe takes one NAME');
      const client = await clientFrom(parsed);
      const info = await client.describeKey(names[0]!).catch(failWith('failed to describe key'));
      if (asJson) process.stdout.write(JSON.stringify(info) + '\n');
      else {
        const date = info.created_at.replace('T', ' ').replace(/\.\d+/, '').replace(/Z$/, '');
        process.stdout.write(`${'Name'.padEnd(11)} ${info.name}\n${'Algorithm'.padEnd(11)} ${info.algorithm}\n${'Date'.padEnd(11)} ${date}\n${'Owner'.padEnd(11)} ${info.created_by}\n`);
      }
      return 0;
    }
    case 'delete':
    case 'rm': {
      if (names.length === 0) throw new UsageError('key delete needs at least one NAME');
      const client = await clientFrom(parsed);
      for (const name of names) await client.deleteKey(name).catch(failWith(`failed to remove key '${name}'`));
      return 0;
    }
    case 'list':
    case 'ls': {
      if (names.length > 1) throw new UsageError('key list takes at most one PATTERN');
      const client = await clientFrom(parsed);
      const keyNames = (await client.listKeys(names[0] ?? '*').catch(failWith('failed to list keys'))).slice().sort();
      if (asJson) process.stdout.write(JSON.stringify(keyNames) + '\n');
      else if (keyNames.length > 0) process.stdout.write(`Key\n${keyNames.join('\n')}\n`);
      return 0;
    }
    default:
      throw new UsageError(subcommand === undefined ? 'kes key needs a command' : `unknown key command '${subcommand}'`);
  }
}

function failWith(what: string): (error: unknown) => never {
  return (error: unknown) => {
    if (error instanceof KesClientError) throw new Error(`${what}: ${error.message} (HTTP ${error.status})`);
    throw new Error(`${what}: ${(error as Error).message}`);
  };
}

export async function runKesCommand(args: readonly string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case 'server':
        return await runServer(rest);
      case 'identity': {
        const [subcommand, ...identityArgs] = rest;
        if (subcommand === 'new') return await runIdentityNew(identityArgs);
        if (subcommand === 'of') return await runIdentityOf(identityArgs);
        throw new UsageError(subcommand === undefined ? 'kes identity needs a command' : `unknown identity command '${subcommand}'`);
      }
      case 'key':
        return await runKey(rest[0], rest.slice(1));
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(usage);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`coffer kes: ${error.message}\n${usage}`);
      return 2;
    }
    process.stderr.write(`coffer kes: ${(error as Error).message}\n`);
    return 1;
  }
}
