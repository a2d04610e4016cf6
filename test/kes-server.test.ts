// `coffer kes`: the KES-compatible key server (kes/), exercised over real mTLS sockets on 127.0.0.1.
// Covers the API contract MinIO and kms-go rely on (reference/sse-kms-kes.md §14): statuses and messages,
// identities and policies, POST==PUT, limits, the FS key store on disk, the master-key cache, config parsing,
// metrics, ciphertext compatibility with engine/kms/builtin.ts and KES's own vectors, and the CLI helpers.

import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BuiltinKms, openBuiltinCiphertext, sealSecretKeyCiphertext } from '../engine/kms/builtin.ts';
import { identityOfPublicKey, newApiKey, certificateFromApiKey, selfSignedCertificate } from '../engine/kms/x509.ts';
import { KesClient, KesClientError } from '../kes/client.ts';
import { ConfigError, parseConfig, parseGoDuration } from '../kes/config.ts';
import { parseLegacyMsgpackCiphertext } from '../kes/crypto.ts';
import { kesErrors } from '../kes/errors.ts';
import { generateKeyVersion, parseKeyVersion, type KeyVersion } from '../kes/key-version.ts';
import { CachedKeyStore } from '../kes/keystore/cache.ts';
import { KeyStoreUnreachableError, type KeyListPage, type KeyStore, type KeyStoreStatus } from '../kes/keystore/keystore.ts';
import { MemoryKeyStore } from '../kes/keystore/memory.ts';
import { isValidName, isValidPattern } from '../kes/names.ts';
import { KesServer } from '../kes/server.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const b64 = (text: string): Buffer => Buffer.from(text, 'base64');
const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface TestIdentity {
  readonly keyPem: string;
  readonly certPem: string;
  readonly identity: string;
  readonly keyFile: string;
  readonly certFile: string;
}

let workDir = '';
let serverTls: TestIdentity;
let admin: TestIdentity;
let app: TestIdentity;
let stranger: TestIdentity;

async function makeIdentity(name: string, usage: ('clientAuth' | 'serverAuth')[]): Promise<TestIdentity> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const certPem = selfSignedCertificate({ privateKey, commonName: name, validDays: 2, extKeyUsage: usage, ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'] });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const keyFile = path.join(workDir, `${name}.key`);
  const certFile = path.join(workDir, `${name}.cert`);
  await fs.writeFile(keyFile, keyPem, { mode: 0o600 });
  await fs.writeFile(certFile, certPem);
  return { keyPem, certPem, identity: identityOfPublicKey(publicKey), keyFile, certFile };
}

function baseYaml(extra = ''): string {
  return [
    'address: 127.0.0.1:0',
    'admin:',
    `  identity: ${admin.identity}`,
    'tls:',
    `  key: ${serverTls.keyFile}`,
    `  cert: ${serverTls.certFile}`,
    'log:',
    '  error: off',
    extra,
  ].join('\n');
}

const appPolicyYaml = (): string =>
  [
    'policy:',
    '  app:',
    '    allow:',
    '      - /v1/key/generate/app-*',
    '      - /v1/key/decrypt/app-*',
    '      - /v1/key/describe/app-*',
    '      - /v1/status',
    '    deny:',
    '      - /v1/key/decrypt/app-secret*',
    '    identities:',
    `      - ${app.identity}`,
  ].join('\n');

const servers: KesServer[] = [];

async function startKes(yaml: string, options: { env?: Record<string, string>; probeMs?: number; keyStore?: KeyStore } = {}): Promise<KesServer> {
  const config = parseConfig(yaml, { ...options.env });
  const server = await KesServer.start({
    config,
    address: '127.0.0.1:0',
    ...(options.probeMs !== undefined ? { cacheProbeIntervalMs: options.probeMs } : {}),
    ...(options.keyStore !== undefined ? { keyStore: options.keyStore } : {}),
    log: { error: () => {}, audit: () => {} },
  });
  servers.push(server);
  return server;
}

function clientFor(server: KesServer, who?: TestIdentity): KesClient {
  return new KesClient({
    server: server.url,
    ca: serverTls.certPem, // the self-signed server certificate is its own CA: the client verifies the server
    ...(who !== undefined ? { key: who.keyPem, cert: who.certPem } : {}),
  });
}

async function expectKesError(promise: Promise<unknown>, status: number, message: string | RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof KesClientError, `expected KesClientError, got ${String(error)}`);
    assert.equal(error.status, status, `status for '${error.message}'`);
    if (typeof message === 'string') assert.equal(error.message, message);
    else assert.match(error.message, message);
    return true;
  });
}

before(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-kes-'));
  serverTls = await makeIdentity('server', ['serverAuth']);
  admin = await makeIdentity('admin', ['clientAuth']);
  app = await makeIdentity('app', ['clientAuth']);
  stranger = await makeIdentity('stranger', ['clientAuth']);
});

after(async () => {
  for (const server of servers) await server.close();
  await fs.rm(workDir, { recursive: true, force: true });
});

describe('names', () => {
  test('valid names and patterns (minio/kes auth_test.go)', () => {
    for (const name of ['a', 'my-key', 'my_key', '_a', 'A-0_z', 'x'.repeat(80)]) assert.ok(isValidName(name), name);
    for (const name of ['', '_', '-a', 'a-', 'a.b', 'a/b', '../x', 'a*', 'x'.repeat(81), 'ä']) assert.ok(!isValidName(name), name);
    for (const pattern of ['*', '', 'my-*', 'my-key', 'a*']) assert.ok(isValidPattern(pattern), pattern);
    for (const pattern of ['a*b', '**', '_', '-*', 'a/b*']) assert.ok(!isValidPattern(pattern), pattern);
  });
});

describe('admin key lifecycle', () => {
  let server: KesServer;
  let client: KesClient;
  before(async () => {
    server = await startKes(baseYaml());
    client = clientFor(server, admin);
  });

  test('create, describe, list, duplicate, delete', async () => {
    await client.createKey('my-key');
    await client.createKey('my-other-key');
    await client.createKey('zzz');
    const info = await client.describeKey('my-key');
    assert.equal(info.name, 'my-key');
    assert.equal(info.algorithm, 'AES256');
    assert.equal(info.created_by, admin.identity);
    assert.ok(Math.abs(Date.parse(info.created_at) - Date.now()) < 60_000);
    assert.deepEqual(await client.listKeys('my-*'), ['my-key', 'my-other-key']);
    assert.deepEqual(await client.listKeys('*'), ['my-key', 'my-other-key', 'zzz']);
    const raw = JSON.parse((await client.request('GET', '/v1/key/list/my-*')).body.toString()) as Record<string, unknown>;
    assert.deepEqual(raw, { names: ['my-key', 'my-other-key'], continue_at: '' });
    await expectKesError(client.createKey('my-key'), 400, 'key already exists');
    await client.deleteKey('zzz');
    await expectKesError(client.describeKey('zzz'), 404, 'key does not exist');
    await expectKesError(client.deleteKey('zzz'), 404, 'key does not exist');
    await expectKesError(client.generateKey('zzz'), 404, 'key does not exist');
  });

  test('generate → decrypt round trip; wrong context is not authentic', async () => {
    await client.createKey('dek-key');
    const context = utf8('{"bucket":"photos/a.jpg"}');
    const { plaintext, ciphertext } = await client.generateKey('dek-key', context);
    assert.equal(plaintext.length, 32);
    assert.equal(ciphertext.length, 76); // 32 + 16 tag + 16 iv + 12 nonce (§14.5)
    assert.deepEqual(await client.decrypt('dek-key', ciphertext, context), plaintext);
    await expectKesError(client.decrypt('dek-key', ciphertext, utf8('{"bucket":"photos/b.jpg"}')), 400, 'decryption failed: ciphertext is not authentic');
    await expectKesError(client.decrypt('dek-key', ciphertext), 400, 'decryption failed: ciphertext is not authentic');
    const tampered = Buffer.from(ciphertext);
    tampered[0]! ^= 1;
    await expectKesError(client.decrypt('dek-key', tampered, context), 400, 'decryption failed: ciphertext is not authentic');
    // No body at all: empty associated data (what `kes key dek` sends).
    const bare = await client.generateKey('dek-key');
    assert.deepEqual(await client.decrypt('dek-key', bare.ciphertext), bare.plaintext);
  });

  test('encrypt/decrypt and hmac', async () => {
    await client.createKey('enc-key');
    const encrypted = (await client.call('PUT', '/v1/key/encrypt/enc-key', { plaintext: utf8('hello').toString('base64'), context: 'AA==' })) as { ciphertext: string };
    assert.deepEqual(await client.decrypt('enc-key', b64(encrypted.ciphertext), Buffer.from([0])), utf8('hello'));
    const mac1 = (await client.call('PUT', '/v1/key/hmac/enc-key', { message: 'aGk=' })) as { hmac: string };
    const mac2 = (await client.call('PUT', '/v1/key/hmac/enc-key', { message: 'aGk=' })) as { hmac: string };
    assert.equal(b64(mac1.hmac).length, 32);
    assert.equal(mac1.hmac, mac2.hmac);
    await expectKesError(client.call('PUT', '/v1/key/hmac/enc-key', { message: 'not base64!' }), 400, 'invalid request body');
  });

  test('status, api, version, identity and policy routes', async () => {
    const status = (await client.call('GET', '/v1/status')) as Record<string, unknown>;
    assert.equal(status.keystore_unreachable, false);
    assert.ok((status.keystore_latency as number) >= 1);
    const apis = (await client.call('GET', '/v1/api')) as { method: string; path: string; max_body: number; timeout: number }[];
    assert.deepEqual(
      apis.find((route) => route.path === '/v1/key/generate/'),
      { method: 'PUT', path: '/v1/key/generate/', max_body: 1024 * 1024, timeout: 15 },
    );
    assert.deepEqual(apis.find((route) => route.path === '/version'), { method: 'GET', path: '/version', max_body: 0, timeout: 10 });
    const self = (await client.call('GET', '/v1/identity/self/describe')) as Record<string, unknown>;
    assert.equal(self.identity, admin.identity);
    assert.equal(self.admin, true);
    assert.equal(((await client.call('GET', `/v1/identity/describe/${admin.identity}`)) as Record<string, unknown>).admin, true);
    await expectKesError(client.call('GET', `/v1/identity/describe/${stranger.identity}`), 404, 'identity does not exist');
    await expectKesError(client.call('GET', '/v1/policy/describe/nope'), 404, 'policy does not exist');
    assert.equal((await clientFor(server).version()).version.length > 0, true);
  });

  test('no client certificate → 400; /version needs none', async () => {
    const anonymous = clientFor(server);
    await expectKesError(anonymous.listKeys('*'), 400, 'tls: client certificate is required');
    await expectKesError(anonymous.call('GET', '/v1/identity/self/describe'), 400, 'tls: client certificate is required');
    assert.equal((await anonymous.request('GET', '/version')).status, 200);
  });

  test('unknown identity → 403', async () => {
    const intruder = clientFor(server, stranger);
    await expectKesError(intruder.createKey('evil'), 403, 'not authorized: insufficient permissions');
    await expectKesError(intruder.listKeys('*'), 403, 'not authorized: insufficient permissions');
    await expectKesError(intruder.call('GET', '/v1/status'), 403, 'not authorized: insufficient permissions');
  });

  test('POST is accepted where PUT is expected; other methods → 405 with Accept', async () => {
    assert.equal((await client.request('PUT', '/v1/key/create/via-put')).status, 200);
    assert.equal((await client.request('POST', '/v1/key/create/via-post')).status, 200);
    assert.equal((await client.request('PUT', '/v1/key/generate/via-put')).status, 200);
    assert.equal((await client.request('POST', '/v1/key/generate/via-post')).status, 200);
    const wrong = await client.request('GET', '/v1/key/generate/via-put');
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.accept, 'PUT');
    assert.deepEqual(JSON.parse(wrong.body.toString()), { message: "received method 'GET' expected 'PUT'" });
    assert.equal((await client.request('POST', '/v1/key/describe/via-put')).status, 405);
    assert.equal((await client.request('POST', '/v1/key/delete/via-put')).status, 405);
    assert.equal((await client.request('GET', '/v1/nope')).status, 404);
  });

  test('name validation', async () => {
    for (const bad of ['-bad', 'bad-', '_', 'a.b', 'x'.repeat(81), '%2e%2e%2fescape', 'a%2Fb', '']) {
      const response = await client.request('POST', `/v1/key/create/${bad}`);
      assert.equal(response.status, 400, bad);
      assert.match(JSON.parse(response.body.toString()).message, /key name '.*' is empty, too long or contains invalid characters/);
    }
    assert.equal((await client.request('POST', '/v1/key/create/%ZZ')).status, 400);
    const pattern = await client.request('GET', '/v1/key/list/a*b');
    assert.equal(pattern.status, 400);
    assert.equal(JSON.parse(pattern.body.toString()).message, "listing pattern 'a*b' is empty, too long or is invalid");
    assert.deepEqual(await fs.readdir(workDir).then((names) => names.filter((name) => name.includes('escape'))), []);
  });

  test('body limits per route', async () => {
    await client.createKey('limit-key');
    const big = { context: Buffer.alloc(800 * 1024).toString('base64') }; // > 1 MiB once base64-encoded
    const tooLarge = await client.request('POST', '/v1/key/generate/limit-key', big);
    assert.equal(tooLarge.status, 413);
    assert.match(JSON.parse(tooLarge.body.toString()).message, /request body too large/);
    const justFits = { context: Buffer.alloc(700 * 1024).toString('base64') };
    assert.equal((await client.request('POST', '/v1/key/generate/limit-key', justFits)).status, 200);
    assert.equal((await client.request('POST', '/v1/key/create/with-body', { x: 1 })).status, 413); // max_body 0
    assert.equal((await client.request('POST', '/v1/key/create/with-body')).status, 200);
  });

  test('metrics count requests by route and status', async () => {
    const metrics = async (): Promise<string> => (await client.request('GET', '/v1/metrics')).body.toString();
    const count = (text: string, pattern: RegExp): number => Number(pattern.exec(text)?.[1] ?? 0);
    const describe404 = /kes_http_requests_total\{route="\/v1\/key\/describe\/",status="404"\} (\d+)\n/;
    const backendNotFound = /kes_keystore_operations_total\{operation="get",result="not_found"\} (\d+)\n/;
    const before = await metrics();
    await client.request('GET', '/v1/key/describe/no-such-key');
    await client.request('GET', '/v1/key/describe/no-such-key');
    const text = await metrics();
    assert.equal(count(text, describe404), count(before, describe404) + 2);
    assert.equal(count(text, backendNotFound), count(before, backendNotFound) + 2);
    assert.match(text, /kes_http_requests_total\{route="\/v1\/key\/create\/",status="200"\} \d+/);
    assert.match(text, /kes_http_response_time_seconds_count \d+/);
    assert.match(text, /kes_keystore_operations_total\{operation="create",result="ok"\} \d+/);
    assert.match(text, /kes_http_request_error \d+/);
  });
});

describe('policies', () => {
  let server: KesServer;
  before(async () => {
    server = await startKes(baseYaml(appPolicyYaml()));
    const adminClient = clientFor(server, admin);
    for (const name of ['app-data', 'app-secret', 'other']) await adminClient.createKey(name);
  });

  test('a policy identity can use only its allowed keys and routes', async () => {
    const client = clientFor(server, app);
    const { plaintext, ciphertext } = await client.generateKey('app-data', utf8('{}'));
    assert.deepEqual(await client.decrypt('app-data', ciphertext, utf8('{}')), plaintext);
    assert.equal((await client.describeKey('app-data')).name, 'app-data');
    assert.equal((await client.request('GET', '/v1/status')).status, 200);
    const forbidden = 'not authorized: insufficient permissions';
    await expectKesError(client.generateKey('other'), 403, forbidden);
    await expectKesError(client.decrypt('other', ciphertext), 403, forbidden);
    await expectKesError(client.createKey('app-new'), 403, forbidden);
    await expectKesError(client.deleteKey('app-data'), 403, forbidden);
    await expectKesError(client.listKeys('*'), 403, forbidden);
    // deny wins over allow
    const secret = await client.generateKey('app-secret');
    await expectKesError(client.decrypt('app-secret', secret.ciphertext), 403, forbidden);
    // a policy check sees the decoded path: an encoded name cannot dodge the deny rule
    assert.equal((await client.request('POST', '/v1/key/decrypt/app-secre%74', { ciphertext: secret.ciphertext.toString('base64') })).status, 403);
  });

  test('self-describe and identity/policy routes show the policy', async () => {
    const self = (await clientFor(server, app).call('GET', '/v1/identity/self/describe')) as { identity: string; policy: { name: string; allow: Record<string, unknown>; deny: Record<string, unknown> } };
    assert.equal(self.identity, app.identity);
    assert.equal(self.policy.name, 'app');
    assert.ok('/v1/key/generate/app-*' in self.policy.allow);
    assert.ok('/v1/key/decrypt/app-secret*' in self.policy.deny);
    const adminClient = clientFor(server, admin);
    assert.deepEqual(await adminClient.call('GET', '/v1/policy/list/*'), { names: ['app'], continue_at: '' });
    const described = (await adminClient.call('GET', `/v1/identity/describe/${app.identity}`)) as Record<string, unknown>;
    assert.equal(described.policy, 'app');
    assert.equal(described.created_by, admin.identity);
    const list = (await adminClient.call('GET', '/v1/identity/list/*')) as { identities: string[] };
    assert.deepEqual(list.identities, [admin.identity, app.identity].sort());
    await expectKesError(clientFor(server, stranger).call('GET', '/v1/identity/self/describe'), 404, 'identity does not exist');
  });

  test('API keys (kes:v1:) authenticate through their derived certificate', async () => {
    const apiKey = newApiKey();
    const { identity } = certificateFromApiKey(apiKey);
    const yaml = baseYaml(['policy:', '  api:', '    allow: [/v1/key/list/*]', `    identities: [${identity}]`].join('\n'));
    const apiServer = await startKes(yaml);
    const client = new KesClient({ server: apiServer.url, ca: serverTls.certPem, apiKey });
    assert.deepEqual(await client.listKeys('*'), []);
    await expectKesError(client.createKey('x'), 403, 'not authorized: insufficient permissions');
  });
});

describe('key stores', () => {
  test('FS key store persists across restarts; files 0600 in a 0700 directory; atomic writes', async () => {
    const keyDir = path.join(workDir, 'fs-keys');
    const yaml = baseYaml(`keystore:\n  fs:\n    path: ${keyDir}`);
    let server = await startKes(yaml);
    let client = clientFor(server, admin);
    await client.createKey('persistent');
    const context = utf8('{"a":"b"}');
    const { plaintext, ciphertext } = await client.generateKey('persistent', context);
    await Promise.all(Array.from({ length: 8 }, (_, i) => client.createKey(`parallel-${i}`)));
    const racing = await Promise.allSettled(Array.from({ length: 6 }, () => client.createKey('contended')));
    assert.equal(racing.filter((result) => result.status === 'fulfilled').length, 1, 'exactly one concurrent create wins');
    await server.close();

    const dirStat = await fs.stat(keyDir);
    assert.equal(dirStat.mode & 0o777, 0o700);
    const names = (await fs.readdir(keyDir)).sort();
    assert.deepEqual(names, ['contended', 'parallel-0', 'parallel-1', 'parallel-2', 'parallel-3', 'parallel-4', 'parallel-5', 'parallel-6', 'parallel-7', 'persistent']);
    for (const name of names) assert.equal((await fs.stat(path.join(keyDir, name))).mode & 0o777, 0o600, name);
    const stored = JSON.parse(await fs.readFile(path.join(keyDir, 'persistent'), 'utf8')) as Record<string, string>;
    assert.equal(b64(stored.bytes!).length, 32);
    assert.equal(stored.algorithm, 'AES256');
    assert.equal(b64(stored.hmac_key!).length, 32);
    assert.equal(stored.created_by, admin.identity);

    server = await startKes(yaml);
    client = clientFor(server, admin);
    assert.deepEqual(await client.decrypt('persistent', ciphertext, context), plaintext);
    await client.deleteKey('persistent');
    assert.ok(!(await fs.readdir(keyDir)).includes('persistent'));
    await expectKesError(client.createKey('contended'), 400, 'key already exists');
  });

  test('FS key store reads the current KES (protobuf) and legacy JSON key files', async () => {
    const keyDir = path.join(workDir, 'kes-native');
    await fs.mkdir(keyDir, { mode: 0o700 });
    const masterKey = randomBytes(32);
    const hmacKey = randomBytes(32);
    // KeyVersion{1: SecretKey{1: key, 2: type=1}, 2: HMACKey{1: key, 2: hash=1}, 3: Timestamp{1: 1700000000}, 4: "creator"}
    const field = (number: number, bytes: Buffer): Buffer => Buffer.concat([Buffer.from([(number << 3) | 2, bytes.length]), bytes]);
    const varint = (number: number, value: number): Buffer => Buffer.from([(number << 3) | 0, value]);
    const seconds = Buffer.from([0x80, 0xe2, 0xcf, 0xaa, 0x06]); // 1700000000 as a varint
    const proto = Buffer.concat([
      field(1, Buffer.concat([field(1, masterKey), varint(2, 1)])),
      field(2, Buffer.concat([field(1, hmacKey), varint(2, 1)])),
      field(3, Buffer.concat([Buffer.from([0x08]), seconds])),
      field(4, utf8('creator')),
    ]);
    await fs.writeFile(path.join(keyDir, 'from-kes'), proto.toString('base64'), { mode: 0o600 });
    await fs.writeFile(path.join(keyDir, 'legacy'), JSON.stringify({ bytes: masterKey.toString('base64'), created_at: '2021-01-01T00:00:00Z', created_by: 'x' }), { mode: 0o600 });
    const parsed = parseKeyVersion(utf8(proto.toString('base64')));
    assert.deepEqual([parsed.algorithm, parsed.key, parsed.hmacKey, parsed.createdBy], ['AES256', masterKey, hmacKey, 'creator']);

    const server = await startKes(baseYaml(`keystore:\n  fs:\n    path: ${keyDir}`));
    const client = clientFor(server, admin);
    const info = await client.describeKey('from-kes');
    assert.equal(info.algorithm, 'AES256');
    assert.equal(info.created_at, '2023-11-14T22:13:20.000Z');
    assert.equal(info.created_by, 'creator');
    const { plaintext, ciphertext } = await client.generateKey('from-kes');
    assert.deepEqual(openBuiltinCiphertext(masterKey, ciphertext, Buffer.alloc(0)), plaintext);
    assert.deepEqual(await client.decrypt('legacy', ciphertext), plaintext);
    await expectKesError(client.call('POST', '/v1/key/hmac/legacy', { message: '' }), 409, 'key does not support HMAC');
    assert.equal(((await client.call('POST', '/v1/key/hmac/from-kes', { message: '' })) as { hmac: string }).hmac.length, 44);
  });

  test('memory key store forgets keys on restart (and the config warns)', async () => {
    const yaml = baseYaml();
    assert.ok(parseConfig(yaml).warnings.some((warning) => /IN MEMORY/.test(warning)));
    let server = await startKes(yaml);
    await clientFor(server, admin).createKey('ephemeral');
    await server.close();
    server = await startKes(yaml);
    await expectKesError(clientFor(server, admin).describeKey('ephemeral'), 404, 'key does not exist');
  });

  test('`keys:` are created at startup when missing and left alone when present', async () => {
    const keyDir = path.join(workDir, 'startup-keys');
    const yaml = baseYaml(`keystore:\n  fs:\n    path: ${keyDir}\nkeys:\n  - name: minio-default\n  - name: other-default`);
    let server = await startKes(yaml);
    let client = clientFor(server, admin);
    assert.deepEqual(await client.listKeys('*'), ['minio-default', 'other-default']);
    const { plaintext, ciphertext } = await client.generateKey('minio-default');
    await server.close();
    server = await startKes(yaml);
    client = clientFor(server, admin);
    assert.deepEqual(await client.decrypt('minio-default', ciphertext), plaintext, 'restart must not replace the key');
  });
});

describe('config', () => {
  test('${ENV} expansion in string values', async () => {
    const keyDir = path.join(workDir, 'env-keys');
    const yaml = [
      'address: ${KES_ADDR}',
      'admin:',
      '  identity: ${ADMIN_ID}',
      'tls:',
      '  key: ${TLS_KEY}',
      `  cert: ${serverTls.certFile}`,
      'keystore:',
      '  fs:',
      '    path: ${KEY_DIR}',
      'policy:',
      '  app:',
      '    allow: [/v1/key/list/*]',
      '    identities: ["${APP_ID}"]',
      'log: { error: off }',
    ].join('\n');
    const env = { KES_ADDR: '127.0.0.1:0', ADMIN_ID: admin.identity, TLS_KEY: serverTls.keyFile, KEY_DIR: keyDir, APP_ID: app.identity };
    const config = parseConfig(yaml, env);
    assert.equal(config.adminIdentity, admin.identity);
    assert.deepEqual(config.keyStore, { kind: 'fs', path: keyDir });
    assert.deepEqual(config.policies[0]!.identities, [app.identity]);
    const server = await startKes(yaml, { env });
    assert.deepEqual(await clientFor(server, app).listKeys('*'), []);
    assert.throws(() => parseConfig(yaml, { ...env, KEY_DIR: undefined as unknown as string }), /keystore\.fs\.path: environment variable 'KEY_DIR' is not set/);
  });

  test('unknown fields are an error naming them', () => {
    assert.throws(
      () => parseConfig(baseYaml('tls_typo: 1\ncache:\n  expiry:\n    unsed: 5s\nkeystore:\n  fs:\n    path: x\n    mode: 1')),
      (error: unknown) => error instanceof ConfigError && /tls_typo/.test(error.message) && /cache\.expiry\.unsed/.test(error.message) && /keystore\.fs\.mode/.test(error.message),
    );
    assert.throws(() => parseConfig(baseYaml('keystore:\n  vault:\n    endpoint: x')), /keystore\.vault: not supported/);
    assert.throws(() => parseConfig(baseYaml().replace(`identity: ${admin.identity}`, 'identity: ""')), /admin\.identity is required/);
    assert.throws(() => parseConfig(baseYaml(`policy:\n  p:\n    allow: [/v1/status]\n    identities: [${admin.identity}]`)), /admin identity cannot/);
  });

  test('cache durations: Go syntax, each default filled independently', () => {
    assert.equal(parseGoDuration('5m'), 300_000);
    assert.equal(parseGoDuration('1h30m'), 5_400_000);
    assert.equal(parseGoDuration('1.5s'), 1500);
    assert.equal(parseGoDuration('250ms'), 250);
    assert.equal(parseGoDuration('0'), 0);
    assert.equal(parseGoDuration('5'), undefined);
    assert.equal(parseGoDuration('m'), undefined);
    assert.deepEqual(parseConfig(baseYaml()).cache, { anyMs: 300_000, unusedMs: 30_000, offlineMs: 0 });
    // KES's CLI bug: leaving `unused` out turned `any` into 30 s. Here only the missing field takes its default.
    assert.deepEqual(parseConfig(baseYaml('cache:\n  expiry:\n    any: 10m')).cache, { anyMs: 600_000, unusedMs: 30_000, offlineMs: 0 });
    assert.deepEqual(parseConfig(baseYaml('cache:\n  expiry:\n    unused: 1m\n    offline: 1h')).cache, { anyMs: 300_000, unusedMs: 60_000, offlineMs: 3_600_000 });
    assert.equal(parseConfig(baseYaml('cache:\n  expiry:\n    any: 10s\n    unused: 1m')).cache.unusedMs, 0, 'unused > any has no effect');
    assert.throws(() => parseConfig(baseYaml('cache:\n  expiry:\n    any: 5')), /not a duration/);
  });
});

/** A backend that counts reads and can be switched offline. */
class CountingStore implements KeyStore {
  readonly description = 'counting';
  readonly inner = new MemoryKeyStore();
  gets = 0;
  offline = false;
  readDelayMs = 0;
  create(name: string, version: KeyVersion): Promise<void> {
    return this.inner.create(name, version);
  }
  async get(name: string): Promise<KeyVersion> {
    this.gets++;
    if (this.offline) throw new KeyStoreUnreachableError('offline');
    if (this.readDelayMs > 0) await sleep(this.readDelayMs);
    return this.inner.get(name);
  }
  delete(name: string): Promise<void> {
    return this.inner.delete(name);
  }
  list(prefix: string): Promise<KeyListPage> {
    return this.inner.list(prefix);
  }
  async status(): Promise<KeyStoreStatus> {
    if (this.offline) throw new KeyStoreUnreachableError('offline');
    return { latencyMs: 0 };
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

describe('master-key cache', () => {
  test('hits avoid the backend; concurrent misses read once', async () => {
    const store = new CountingStore();
    await store.create('k', generateKeyVersion('me'));
    store.readDelayMs = 30;
    const cache = new CachedKeyStore(store, { expiry: { anyMs: 0, unusedMs: 0, offlineMs: 0 } });
    const versions = await Promise.all(Array.from({ length: 20 }, () => cache.get('k')));
    assert.equal(store.gets, 1, 'single flight');
    assert.ok(versions.every((version) => version.key.equals(versions[0]!.key)));
    await cache.get('k');
    assert.equal(store.gets, 1);
    await assert.rejects(cache.get('missing'), (error: unknown) => (error as { status?: number }).status === kesErrors.keyNotFound().status);
    await cache.delete('k');
    await assert.rejects(cache.get('k'));
    await cache.close();
  });

  test('expiry.any drops everything; expiry.unused drops only idle keys', async () => {
    const store = new CountingStore();
    await store.create('a', generateKeyVersion('me'));
    await store.create('b', generateKeyVersion('me'));
    const anyCache = new CachedKeyStore(store, { expiry: { anyMs: 80, unusedMs: 0, offlineMs: 0 } });
    await anyCache.get('a');
    assert.equal(anyCache.size, 1);
    await sleep(200);
    assert.equal(anyCache.size, 0);
    await anyCache.close(); // closes the backend too

    const store2 = new CountingStore();
    await store2.create('a', generateKeyVersion('me'));
    await store2.create('b', generateKeyVersion('me'));
    const unusedCache = new CachedKeyStore(store2, { expiry: { anyMs: 0, unusedMs: 200, offlineMs: 0 } });
    await unusedCache.get('a');
    await unusedCache.get('b');
    for (let i = 0; i < 8; i++) {
      await sleep(50);
      await unusedCache.get('a'); // keep 'a' busy
    }
    assert.equal(unusedCache.size, 1, "'b' was idle for > unused and is gone, 'a' stayed");
    const before = store2.gets;
    await unusedCache.get('a');
    assert.equal(store2.gets, before);
    await unusedCache.close();
  });

  test('offline: status fails fast, normal expiry pauses, expiry.offline applies', async () => {
    const store = new CountingStore();
    await store.create('a', generateKeyVersion('me'));
    const cache = new CachedKeyStore(store, { expiry: { anyMs: 60, unusedMs: 0, offlineMs: 400 }, probeIntervalMs: 20 });
    await cache.get('a');
    store.offline = true;
    await sleep(60);
    assert.equal(cache.offline, true);
    await assert.rejects(cache.status(), KeyStoreUnreachableError);
    await sleep(150); // > any: would have been dropped while online
    assert.equal(cache.size, 1, 'cached key keeps serving while the backend is offline');
    assert.equal((await cache.get('a')).key.length, 32);
    await sleep(400);
    assert.equal(cache.size, 0, 'expiry.offline eventually drops it');
    store.offline = false;
    await sleep(60);
    assert.equal(cache.offline, false);
    await cache.status();
    await cache.close();
  });

  test('through the server: /v1/ready reports an offline key store (504)', async () => {
    const store = new CountingStore();
    const server = await startKes(baseYaml('cache:\n  expiry:\n    offline: 1m'), { keyStore: store, probeMs: 20 });
    const client = clientFor(server, admin);
    await client.createKey('k');
    const { plaintext, ciphertext } = await client.generateKey('k');
    assert.equal((await client.request('GET', '/v1/ready')).status, 200);
    store.offline = true;
    await sleep(80);
    const ready = await client.request('GET', '/v1/ready');
    assert.equal(ready.status, 504);
    assert.equal(JSON.parse(ready.body.toString()).message, 'key store is not reachable');
    assert.deepEqual(await client.decrypt('k', ciphertext), plaintext, 'served from the cache');
    const status = (await client.call('GET', '/v1/status')) as { keystore_unreachable: boolean };
    assert.equal(status.keystore_unreachable, true);
  });
});

describe('route timeouts', () => {
  test('a request slower than its route timeout gets 503 (api.<path>.timeout overrides the default)', async () => {
    const store = new CountingStore();
    const server = await startKes(baseYaml("api:\n  /v1/key/describe/:\n    timeout: 100ms"), { keyStore: store });
    const client = clientFor(server, admin);
    await client.createKey('slow');
    store.readDelayMs = 400;
    await expectKesError(client.describeKey('slow'), 503, /timed out/);
    store.readDelayMs = 0;
    await sleep(400);
    assert.equal((await client.describeKey('slow')).name, 'slow');
    assert.throws(() => parseConfig(baseYaml('api:\n  /v1/status:\n    skip_auht: true')), /api\.\/v1\/status\.skip_auht/);
  });
});

describe('ciphertext compatibility', () => {
  let client: KesClient;
  before(async () => {
    client = clientFor(await startKes(baseYaml()), admin);
  });

  test('server ciphertexts open with engine/kms/builtin.ts and builtin ciphertexts decrypt on the server', async () => {
    const masterKey = randomBytes(32);
    await client.importKey('imported', masterKey);
    const context = utf8('{"bucket":"b/o"}');
    const { plaintext, ciphertext } = await client.generateKey('imported', context);
    assert.deepEqual(openBuiltinCiphertext(masterKey, ciphertext, context), plaintext);

    const dek = randomBytes(32);
    assert.deepEqual(await client.decrypt('imported', sealSecretKeyCiphertext(masterKey, 'AES256', dek, context), context), dek);
    const builtin = BuiltinKms.fromMasterKey('imported', masterKey);
    const dataKey = await builtin.generateKey('imported', context);
    assert.deepEqual(await client.decrypt('imported', dataKey.ciphertext, context), dataKey.plaintext);
    await builtin.close();
  });

  test('KES vectors (internal/crypto/key_test.go) incl. ChaCha20 and the legacy JSON/msgpack forms', async () => {
    await client.importKey('kes-zero', Buffer.alloc(32));
    assert.deepEqual(
      await client.decrypt('kes-zero', b64('zwdDgHeRlIFRnJ7+DIhs/ka7GFK2CFSfDELqg1VCyTQzZ58o7MAdupMLk3ZjlMo2ZUDwldL2o41nAWDc')),
      b64('AAAAAAAAAAAAAAAAAAAAAA=='),
    );
    const kesKey = b64('dDHbTWgo+Yh3u804SYB5OyVMy6RiLeJYBQth1f6KlEU=');
    await client.importKey('kes-aes', kesKey, 'AES256');
    await client.importKey('kes-chacha', kesKey, 'XCHACHA20-POLY1305');
    assert.equal((await client.describeKey('kes-chacha')).algorithm, 'ChaCha20');
    const aad = b64('AAAAAAAAAAAAAAAAAAAAAA==');
    const expected = b64('CLcJoykFCWZDkEIiUq9bJRqwCwW9ZDvdgu8EMA==');
    assert.deepEqual(await client.decrypt('kes-aes', b64('s2gmfQHeGdlyL8x1yEWSACUV3GrSoz3t160hugMgzKWgyqesXDVUJ5Dw5Mt076rR1PNiU9X4YjLH14D8a81t2r2xsz4gVZac'), aad), expected);
    assert.deepEqual(await client.decrypt('kes-chacha', b64('gO4woRIswAJdjUjW7z2ApsSQxJlwB24yjLrmH4eI7sB0uh5nfEJfk9ybTPFft5FRFaZCVBmzhx7OJs9n0WWtxH3sySIxecIK'), aad), expected);

    // Legacy encodings of one server-made ciphertext decrypt too.
    const { plaintext, ciphertext } = await client.generateKey('kes-aes', aad);
    const sealed = ciphertext.subarray(0, ciphertext.length - 28);
    const iv = ciphertext.subarray(ciphertext.length - 28, ciphertext.length - 12);
    const nonce = ciphertext.subarray(ciphertext.length - 12);
    const json = utf8(JSON.stringify({ aead: 'AES-256-GCM-HMAC-SHA-256', iv: iv.toString('base64'), nonce: nonce.toString('base64'), bytes: sealed.toString('base64') }));
    assert.deepEqual(await client.decrypt('kes-aes', json, aad), plaintext);
    const algorithm = utf8('AES256-GCM_SHA256');
    const msgpack = Buffer.concat([
      Buffer.from([0x95, 0xa0 | algorithm.length]),
      algorithm,
      Buffer.from([0xa0]), // empty id
      Buffer.from([0xc4, 16]),
      iv,
      Buffer.from([0xc4, 12]),
      nonce,
      Buffer.from([0xc4, sealed.length]),
      sealed,
    ]);
    assert.deepEqual(parseLegacyMsgpackCiphertext(msgpack), ciphertext);
    assert.deepEqual(await client.decrypt('kes-aes', msgpack, aad), plaintext);

    await expectKesError(client.importKey('bad-size', Buffer.alloc(16)), 406, "invalid key size for 'AES256'");
    await expectKesError(client.importKey('bad-cipher', Buffer.alloc(32), 'DES'), 406, "algorithm 'DES' is not supported");
  });
});

describe('tls.auth: on', () => {
  test('client certificates must chain to tls.ca', async () => {
    const server = await startKes(baseYaml(`policy:\n  p:\n    allow: [/v1/key/list/*]\n    identities: [${app.identity}]`).replace('log:', `  ca: ${app.certFile}\n  auth: on\nlog:`));
    assert.deepEqual(await clientFor(server, app).listKeys('*'), []); // app's self-signed cert is the CA
    await assert.rejects(clientFor(server, admin).listKeys('*'), (error: unknown) => !(error instanceof KesClientError)); // handshake refused
  });
});

// ---- CLI helpers, as child processes ----

function runCli(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const code = "import { runKesCommand } from './cli/kes-command.ts'; process.exitCode = await runKesCommand(process.argv.slice(1));";
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('close', (exitCode) => resolve({ code: exitCode ?? -1, stdout, stderr })));
}

describe('coffer kes CLI', () => {
  test('identity new / identity of, then key create/list/describe/delete against a server', async () => {
    const dir = path.join(workDir, 'cli');
    await fs.mkdir(dir);
    const keyFile = path.join(dir, 'root.key');
    const certFile = path.join(dir, 'root.cert');
    const created = await runCli(['identity', 'new', '--key', keyFile, '--cert', certFile, '--ip', '127.0.0.1', '--dns', 'localhost', 'root']);
    assert.equal(created.code, 0, created.stderr);
    const identity = /Identity:\s+([0-9a-f]{64})/.exec(created.stdout)?.[1];
    assert.ok(identity, created.stdout);
    assert.equal((await fs.stat(keyFile)).mode & 0o777, 0o600);
    const of = await runCli(['identity', 'of', certFile]);
    assert.equal(of.stdout.trim(), identity);
    assert.equal((await runCli(['identity', 'new', '--key', keyFile, '--cert', certFile, 'root'])).code, 1, 'refuses to overwrite');

    const server = await startKes(baseYaml().replace(`identity: ${admin.identity}`, `identity: ${identity}`));
    const env = { KES_SERVER: server.url, KES_CLIENT_KEY: keyFile, KES_CLIENT_CERT: certFile, KES_CA_FILE: serverTls.certFile };
    const create = await runCli(['key', 'create', 'cli-key', 'cli-key-2'], env);
    assert.equal(create.code, 0, create.stderr);
    const list = await runCli(['key', 'list', 'cli-*'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout, 'Key\ncli-key\ncli-key-2\n');
    const describeResult = await runCli(['key', 'describe', 'cli-key', '--json'], env);
    assert.equal(JSON.parse(describeResult.stdout).created_by, identity);
    const duplicate = await runCli(['key', 'create', 'cli-key'], env);
    assert.equal(duplicate.code, 1);
    assert.match(duplicate.stderr, /key already exists/);
    assert.equal((await runCli(['key', 'delete', 'cli-key-2'], env)).code, 0);
    const flags = await runCli(['key', 'ls', '--server', server.url, '--key', keyFile, '--cert', certFile, '--insecure']);
    assert.equal(flags.stdout, 'Key\ncli-key\n');
    assert.equal((await runCli(['key', 'frobnicate'], env)).code, 2);
  });

  test('kes server prints its address and the admin identity, never a key', async () => {
    const keyDir = path.join(workDir, 'cli-server-keys');
    const configFile = path.join(workDir, 'cli-server.yml');
    await fs.writeFile(configFile, baseYaml(`keystore:\n  fs:\n    path: ${keyDir}\nkeys:\n  - name: boot-key`));
    const code = "import { runKesCommand } from './cli/kes-command.ts'; process.exitCode = await runKesCommand(process.argv.slice(1));";
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, 'server', '--config', configFile, '--addr', '127.0.0.1:0'], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no startup line; stderr: ${stderr}`)), 20_000);
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        const match = /listening on (https:\/\/\S+)/.exec(stdout);
        if (match && /Admin identity/.test(stdout)) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
    });
    try {
      assert.match(stdout, new RegExp(`Admin identity: ${admin.identity}`));
      const client = new KesClient({ server: url, ca: serverTls.certPem, key: admin.keyPem, cert: admin.certPem });
      assert.deepEqual(await client.listKeys('*'), ['boot-key']);
      const stored = JSON.parse(await fs.readFile(path.join(keyDir, 'boot-key'), 'utf8')) as { bytes: string; hmac_key: string };
      assert.ok(!stdout.includes(stored.bytes) && !stderr.includes(stored.bytes));
      assert.ok(!stdout.includes(stored.hmac_key));
    } finally {
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    }
  });
});
