// KES client + hand-built X.509 (engine/kms/kes-client.ts, engine/kms/x509.ts) against small fake KES servers:
// node:https with requestCert (KES' RequireAnyClientCert, §14.2), identity = SPKI hash of the client certificate,
// a policy set of allowed identities, AES-256-GCM under a per-key random master key, plus failure switches.

import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, describe, test } from 'node:test';
import type { KesClientConfig } from '../engine/kms/from-env.ts';
import { KesKms, type KesClientOptions } from '../engine/kms/kes-client.ts';
import { isKmsError } from '../engine/kms/kms.ts';
import {
  certificateFromApiKey,
  identityOfCertificate,
  identityOfPublicKey,
  keyFromApiKey,
  newApiKey,
  selfSignedCertificate,
} from '../engine/kms/x509.ts';

const tempDir = mkdtempSync(path.join(tmpdir(), 'coffer-kes-'));
after(() => rmSync(tempDir, { recursive: true, force: true }));

function pem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}

function writeTemp(name: string, content: string): string {
  const filePath = path.join(tempDir, name);
  writeFileSync(filePath, content, { mode: 0o600 });
  return filePath;
}

// The fake KES servers' TLS identity, trusted by the client through caPath.
const serverKeys = generateKeyPairSync('ed25519');
const serverCertPem = selfSignedCertificate({
  privateKey: serverKeys.privateKey,
  commonName: 'fake-kes',
  validDays: 1,
  extKeyUsage: ['serverAuth'],
  dnsNames: ['localhost'],
  ipAddresses: ['127.0.0.1'],
});
const caPath = writeTemp('kes-ca.crt', serverCertPem);

// A client identity from certificate files (ECDSA P-256, to cover the second signature scheme).
const clientKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const clientCertPem = selfSignedCertificate({ privateKey: clientKeys.privateKey, commonName: 'coffer', validDays: 30, extKeyUsage: ['clientAuth'] });
const clientIdentity = identityOfCertificate(clientCertPem);
const clientCertFile = writeTemp('client.crt', clientCertPem);
const clientKeyFile = writeTemp('client.key', pem(clientKeys.privateKey));

const fastOptions: KesClientOptions = { requestTimeoutMs: 2000, benchMs: 30_000, retries: 2, keepWarmMs: 0, retryDelayMs: 5, retryJitterMs: 5 };

interface FakeKes {
  readonly url: string;
  readonly keys: Map<string, Buffer>;
  readonly allowed: Set<string>;
  readonly requests: { method: string; path: string; identity: string }[];
  /** answer this many requests with 503 first */
  fail503: number;
  /** answer every request with this status (e.g. 500) */
  failAll: number | undefined;
  /** accept the request and never answer */
  hang: boolean;
  /** send a 2 MiB body */
  huge: boolean;
  close(): Promise<void>;
}

function kesError(response: import('node:http').ServerResponse, status: number, message: string): void {
  const body = JSON.stringify({ message });
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}

function kesJson(response: import('node:http').ServerResponse, object: unknown): void {
  const body = JSON.stringify(object);
  response.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}

function seal(masterKey: Buffer, plaintext: Buffer, context: Buffer): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', masterKey, nonce).setAAD(context);
  const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return Buffer.concat([sealed, randomBytes(16), nonce]); // KES layout: AEAD output ‖ iv(16) ‖ nonce(12)
}

function open(masterKey: Buffer, ciphertext: Buffer, context: Buffer): Buffer | undefined {
  if (ciphertext.length < 16 + 16 + 12) return undefined;
  const nonce = ciphertext.subarray(ciphertext.length - 12);
  const sealed = ciphertext.subarray(0, ciphertext.length - 28);
  try {
    const decipher = createDecipheriv('aes-256-gcm', masterKey, nonce).setAAD(context);
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
  } catch {
    return undefined;
  }
}

async function startFakeKes(allowed: Iterable<string>, keys: Iterable<string> = []): Promise<FakeKes> {
  const state = {
    keys: new Map<string, Buffer>([...keys].map((name) => [name, randomBytes(32)])),
    allowed: new Set(allowed),
    requests: [] as FakeKes['requests'],
    fail503: 0,
    failAll: undefined as number | undefined,
    hang: false,
    huge: false,
  };
  const server = https.createServer(
    { key: pem(serverKeys.privateKey), cert: serverCertPem, requestCert: true, rejectUnauthorized: false },
    (request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const peer = (request.socket as tls.TLSSocket).getPeerCertificate();
        if (peer.raw === undefined) return kesError(response, 400, 'tls: client certificate is required');
        const identity = identityOfCertificate(peer.raw);
        const url = request.url ?? '';
        state.requests.push({ method: request.method ?? '', path: url, identity });
        if (state.hang) return; // never answer
        if (state.huge) {
          response.writeHead(200, { 'Content-Type': 'application/json' });
          response.end(Buffer.alloc(2 * 1024 * 1024, 0x20));
          return;
        }
        if (state.fail503 > 0) {
          state.fail503--;
          return kesError(response, 503, 'service unavailable');
        }
        if (state.failAll !== undefined) return kesError(response, state.failAll, 'internal error');
        if (!state.allowed.has(identity)) return kesError(response, 403, 'not authorized: insufficient permissions');
        if (url === '/v1/status') return kesJson(response, { version: 'fake', uptime: 1 });
        const match = /^\/v1\/key\/(create|generate|decrypt|describe)\/([0-9A-Za-z_-]{1,80})$/.exec(url);
        if (match === null) return kesError(response, 404, '404 page not found');
        const [, route, name] = match as unknown as [string, string, string];
        const masterKey = state.keys.get(name);
        if (route === 'create') {
          if (masterKey !== undefined) return kesError(response, 400, 'key already exists');
          state.keys.set(name, randomBytes(32));
          response.writeHead(200).end();
          return;
        }
        if (masterKey === undefined) return kesError(response, 404, 'key does not exist');
        if (route === 'describe') return kesJson(response, { name, algorithm: 'AES256' });
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { context?: string; ciphertext?: string };
        const context = Buffer.from(body.context ?? '', 'base64');
        if (route === 'generate') {
          const plaintext = randomBytes(32);
          return kesJson(response, { plaintext: plaintext.toString('base64'), ciphertext: seal(masterKey, plaintext, context).toString('base64') });
        }
        const plaintext = open(masterKey, Buffer.from(body.ciphertext ?? '', 'base64'), context);
        if (plaintext === undefined) return kesError(response, 400, 'decryption failed: ciphertext is not authentic');
        return kesJson(response, { plaintext: plaintext.toString('base64') });
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return Object.assign(state, {
    url: `https://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });
}

/** A TCP server that accepts and immediately resets every connection, counting them. */
async function startDeadServer(): Promise<{ url: string; connections: () => number; close(): Promise<void> }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A port with nothing listening (bound, then released). */
async function closedPortUrl(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `https://127.0.0.1:${port}`;
}

function certConfig(endpoints: string[], keyName = 'coffer-key'): KesClientConfig {
  return { endpoints, keyName, certFile: clientCertFile, keyFile: clientKeyFile, caPath };
}

const context = Buffer.from('{"bucket":"photos"}');

describe('x509', () => {
  test('Ed25519 certificate: parses, self-verifies, carries CN, SAN, EKU and validity', () => {
    const keys = generateKeyPairSync('ed25519');
    const notBefore = new Date('2030-01-02T03:04:05Z');
    const certPem = selfSignedCertificate({
      privateKey: keys.privateKey,
      commonName: 'kes.example.net',
      validDays: 365,
      extKeyUsage: ['serverAuth', 'clientAuth'],
      dnsNames: ['kes.example.net', 'localhost'],
      ipAddresses: ['127.0.0.1', '::1', '2001:db8::7'],
      notBefore,
    });
    const certificate = new X509Certificate(certPem);
    assert.equal(certificate.verify(keys.publicKey), true);
    assert.equal(certificate.subject, 'CN=kes.example.net');
    assert.equal(certificate.issuer, 'CN=kes.example.net');
    assert.equal(certificate.ca, false);
    assert.deepEqual(certificate.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(certificate.subjectAltName, 'DNS:kes.example.net, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:2001:DB8:0:0:0:0:0:7');
    assert.equal(new Date(certificate.validFrom).toISOString(), '2030-01-02T03:04:05.000Z');
    assert.equal(new Date(certificate.validTo).toISOString(), '2031-01-02T03:04:05.000Z');
    assert.equal(certificate.checkHost('kes.example.net'), 'kes.example.net');
    assert.equal(certificate.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(identityOfCertificate(certPem), identityOfPublicKey(keys.publicKey));
    assert.equal(identityOfCertificate(Buffer.from(certPem)), identityOfPublicKey(keys.privateKey));
  });

  test('ECDSA P-256 certificate verifies; GeneralizedTime after 2049', () => {
    const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const certPem = selfSignedCertificate({ privateKey: keys.privateKey, commonName: 'ec', validDays: 36500, extKeyUsage: ['clientAuth'], notBefore: new Date('2040-06-01T00:00:00Z') });
    const certificate = new X509Certificate(certPem);
    assert.equal(certificate.verify(keys.publicKey), true);
    assert.equal(new Date(certificate.validTo).getUTCFullYear(), 2140);
  });

  test('unsupported keys and bad options are refused', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    assert.throws(() => selfSignedCertificate({ privateKey: rsa.privateKey, commonName: 'x', validDays: 1, extKeyUsage: [] }), /unsupported key type/);
    const ed = generateKeyPairSync('ed25519');
    assert.throws(() => selfSignedCertificate({ privateKey: ed.publicKey, commonName: 'x', validDays: 1, extKeyUsage: [] }), /private key/);
    assert.throws(() => selfSignedCertificate({ privateKey: ed.privateKey, commonName: 'x', validDays: 0, extKeyUsage: [] }), /validDays/);
    assert.throws(() => selfSignedCertificate({ privateKey: ed.privateKey, commonName: 'x', validDays: 1, extKeyUsage: [], ipAddresses: ['nope'] }), /not an IP/);
  });

  test('API keys: kms-go identity vectors, round trip, errors never echo the key', () => {
    // kms-go kes/apikey_test.go
    assert.equal(keyFromApiKey('kes:v1:ACQpoGqx3rHHjT938Hfu5hVVQJHZWSqVI2Xp1KlYxFVw').identity, '0426fa9a04bc2756b92fbe8a97e1a1e07b53ecf04ed33da22c33e5c9faeb8cbb');
    assert.equal(keyFromApiKey('kes:v1:AMxvd2uV1l5dDSRwuKZxSjuM5BDemlr+685+JAHA1TuJ').identity, 'ab785e3b95d80d72cc9c27cb9fde886a0bf9068a69d40e3bd08a54e68c3f2bf7');
    assert.equal(keyFromApiKey('kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs').identity, 'ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6');
    const apiKey = newApiKey();
    assert.match(apiKey, /^kes:v1:[A-Za-z0-9+/]{44}$/);
    const { privateKey, publicKey, identity } = keyFromApiKey(apiKey);
    assert.equal(privateKey.asymmetricKeyType, 'ed25519');
    assert.equal(identity, identityOfPublicKey(publicKey));
    const { certPem } = certificateFromApiKey(apiKey);
    const certificate = new X509Certificate(certPem);
    assert.equal(certificate.subject, `CN=${identity}`);
    assert.equal(identityOfCertificate(certPem), identity);
    assert.equal(Math.round((Date.parse(certificate.validTo) - Date.parse(certificate.validFrom)) / 86_400_000), 90);
    for (const bad of ['v1:AM0F5TP43FYEShMzA42f2drFYGnBOiNx7UH4DK0nm08E', 'kes:v1:sbDvZFqUPFFwxRS4EkuoEb2nyyInkdKSUEYHXFHeTouW', 'kes:v1:AAAA', 'kes:v1:!!!']) {
      assert.throws(() => keyFromApiKey(bad), (error: Error) => !error.message.includes(bad.slice(7)) && /invalid API key/.test(error.message));
    }
  });

  test("Node's TLS accepts the certificates as server and client certificate; the peer sees the same identity", async () => {
    const { certPem: apiCertPem, privateKey: apiPrivateKey, identity } = certificateFromApiKey(newApiKey());
    const seen: string[] = [];
    const server = tls.createServer({ key: pem(serverKeys.privateKey), cert: serverCertPem, requestCert: true, rejectUnauthorized: false }, (socket) => {
      seen.push(identityOfCertificate(socket.getPeerCertificate().raw));
      socket.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    try {
      for (const [cert, key, expected] of [
        [apiCertPem, pem(apiPrivateKey), identity],
        [clientCertPem, pem(clientKeys.privateKey), clientIdentity],
      ] as const) {
        const reply = await new Promise<string>((resolve, reject) => {
          const socket = tls.connect({ host: '127.0.0.1', port, ca: serverCertPem, cert, key }, () => assert.equal(socket.authorized, true));
          let text = '';
          socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
          socket.on('end', () => resolve(text));
          socket.on('error', reject);
        });
        assert.equal(reply, 'ok');
        assert.equal(seen.at(-1), expected);
      }
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('KesKms', () => {
  test('startup creates the missing default key; generate/decrypt round trip; identity seen by KES', async () => {
    const kes = await startFakeKes([clientIdentity]);
    const kms = await KesKms.connect(certConfig([kes.url]), fastOptions);
    try {
      assert.ok(kes.keys.has('coffer-key'));
      assert.deepEqual(kes.requests.slice(0, 2).map((r) => `${r.method} ${r.path}`), ['POST /v1/key/generate/coffer-key', 'POST /v1/key/create/coffer-key']);
      assert.ok(kes.requests.every((r) => r.identity === clientIdentity));
      assert.equal(kms.identity, clientIdentity);

      const dataKey = await kms.generateKey('coffer-key', context);
      assert.equal(dataKey.plaintext.length, 32);
      assert.equal(dataKey.ciphertext.length, 76);
      assert.deepEqual(await kms.decrypt('coffer-key', dataKey.ciphertext, context), dataKey.plaintext);
      assert.deepEqual(await kms.describeKey('coffer-key'), { name: 'coffer-key' });

      const tampered = Buffer.from(dataKey.ciphertext);
      tampered[0]! ^= 1;
      await assert.rejects(kms.decrypt('coffer-key', tampered, context), (e) => isKmsError(e, 'DecryptionFailed'));
      await assert.rejects(kms.decrypt('coffer-key', dataKey.ciphertext, Buffer.from('{}')), (e) => isKmsError(e, 'DecryptionFailed'));
      await assert.rejects(kms.generateKey('other-key', context), (e) => isKmsError(e, 'KeyNotFound') && /other-key/.test(e.message));
      await assert.rejects(kms.generateKey('../etc', context), (e) => isKmsError(e, 'KeyNotFound'));
      await assert.rejects(kms.generateKey('coffer-key', Buffer.alloc(0)), (e) => isKmsError(e, 'InvalidArgument'));
      await assert.rejects(kms.createKey('coffer-key'), (e) => isKmsError(e, 'KeyExists'));
      await kms.createKey('other-key');
      await kms.generateKey('other-key', context);

      assert.deepEqual(await kms.status(), { name: 'kes', defaultKeyName: 'coffer-key', endpoints: { [kes.url]: 'online' } });
      const stats = kms.stats();
      assert.ok(stats.requests >= 10 && stats.errors >= 5 && stats.latencyMsTotal > 0);
      assert.equal(stats.requestsByRoute['generate'], 4); // startup, coffer-key, other-key twice; invalid input never leaves the process
    } finally {
      await kms.close();
      await kes.close();
    }
    await assert.rejects(kms.generateKey('coffer-key', context), (e) => isKmsError(e, 'Unavailable') && /closed/.test(e.message));
  });

  test('API-key login; an existing default key is not re-created; password-protected key files load', async () => {
    const apiKey = newApiKey();
    const { identity } = keyFromApiKey(apiKey);
    const kes = await startFakeKes([identity, clientIdentity], ['coffer-key']);
    const encryptedKeyFile = writeTemp('client-encrypted.key', clientKeys.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'hunter2' }) as string);
    try {
      const kms = await KesKms.connect({ endpoints: [kes.url], keyName: 'coffer-key', apiKey, caPath }, fastOptions);
      assert.equal(kms.identity, identity);
      assert.deepEqual(kes.requests.map((r) => [r.path, r.identity]), [['/v1/key/generate/coffer-key', identity]]);
      await kms.close();

      const withPassword = await KesKms.connect({ ...certConfig([kes.url]), keyFile: encryptedKeyFile, keyPassword: 'hunter2' }, fastOptions);
      assert.equal(kes.requests.at(-1)?.identity, clientIdentity);
      await withPassword.close();
      await assert.rejects(
        KesKms.connect({ ...certConfig([kes.url]), keyFile: encryptedKeyFile, keyPassword: 'Xq9-bad-password' }, fastOptions),
        (e: Error) => /cannot read the private key/.test(e.message) && !e.message.includes('Xq9-bad-password'),
      );
    } finally {
      await kes.close();
    }
  });

  test('an identity outside every policy is a clear startup error (403)', async () => {
    const kes = await startFakeKes([]);
    try {
      await assert.rejects(KesKms.connect(certConfig([kes.url]), fastOptions), (e: Error) => {
        assert.match(e.message, /^KES at https:\/\/127\.0\.0\.1:\d+: not authorized \(403\) — is this client's identity [0-9a-f]{64} in a KES policy/);
        return true;
      });
    } finally {
      await kes.close();
    }
  });

  test('a server certificate the client does not trust is a clear TLS startup error, not retried', async () => {
    const kes = await startFakeKes([clientIdentity]);
    const otherKeys = generateKeyPairSync('ed25519');
    const otherCa = writeTemp('other-ca.crt', selfSignedCertificate({ privateKey: otherKeys.privateKey, commonName: 'other', validDays: 1, extKeyUsage: ['serverAuth'] }));
    try {
      const startMs = Date.now();
      await assert.rejects(KesKms.connect({ ...certConfig([kes.url]), caPath: otherCa }, { ...fastOptions, retryDelayMs: 1000 }), (e: Error) => {
        assert.match(e.message, /not reachable: .*TLS: .*MINIO_KMS_KES_CAPATH/);
        return true;
      });
      assert.ok(Date.now() - startMs < 1000, 'certificate errors are not retried');
      assert.equal(kes.requests.length, 0);
    } finally {
      await kes.close();
    }
  });

  test('two endpoints, one dead: requests succeed and the dead one is benched; a probe follows the bench', async () => {
    const dead = await startDeadServer();
    const kes = await startFakeKes([clientIdentity], ['coffer-key']);
    // Both are localhost; the dead one is listed first, so it is also the "try first" endpoint.
    const kms = await KesKms.connect(certConfig([dead.url, kes.url]), { ...fastOptions, benchMs: 300 });
    try {
      assert.equal(dead.connections(), 3, 'first request: 1 attempt + 2 retries, then benched');
      assert.deepEqual(kms.stats().benchedEndpoints, [dead.url]);
      for (let i = 0; i < 20; i++) {
        const dataKey = await kms.generateKey('coffer-key', context);
        assert.deepEqual(await kms.decrypt('coffer-key', dataKey.ciphertext, context), dataKey.plaintext);
      }
      assert.equal(dead.connections(), 3, 'a benched endpoint gets no requests');
      assert.equal(kms.stats().failovers, 1);

      await new Promise((resolve) => setTimeout(resolve, 350));
      await kms.generateKey('coffer-key', context); // the one probe
      assert.equal(dead.connections(), 6);
      await kms.generateKey('coffer-key', context);
      assert.equal(dead.connections(), 6, 'the failed probe re-benched it');

      assert.deepEqual(await kms.status(), { name: 'kes', defaultKeyName: 'coffer-key', endpoints: { [dead.url]: 'offline', [kes.url]: 'online' } });
    } finally {
      await kms.close();
      await kes.close();
      await dead.close();
    }
  });

  test('5xx (not 501) benches an endpoint; the other one answers', async () => {
    const broken = await startFakeKes([clientIdentity], ['coffer-key']);
    const healthy = await startFakeKes([clientIdentity], ['coffer-key']);
    broken.failAll = 500;
    const kms = await KesKms.connect(certConfig([broken.url, healthy.url]), fastOptions);
    try {
      for (let i = 0; i < 10; i++) await kms.generateKey('coffer-key', context);
      assert.equal(broken.requests.length, 1);
      assert.equal(healthy.requests.length, 11);
    } finally {
      await kms.close();
      await broken.close();
      await healthy.close();
    }
  });

  test('503 is retried on the same endpoint', async () => {
    const kes = await startFakeKes([clientIdentity], ['coffer-key']);
    const kms = await KesKms.connect(certConfig([kes.url]), fastOptions);
    try {
      kes.fail503 = 2;
      const before = kes.requests.length;
      await kms.generateKey('coffer-key', context);
      assert.equal(kes.requests.length - before, 3);
      kes.fail503 = 3;
      await assert.rejects(kms.generateKey('coffer-key', context), (e) => isKmsError(e, 'Unavailable') && /503/.test(e.message));
    } finally {
      await kms.close();
      await kes.close();
    }
  });

  test('all endpoints down: KmsError Unavailable quickly, naming endpoints but no key material', async () => {
    const first = await startFakeKes([clientIdentity], ['coffer-key']);
    const second = await startFakeKes([clientIdentity], ['coffer-key']);
    const kms = await KesKms.connect(certConfig([first.url, second.url]), fastOptions);
    try {
      const dataKey = await kms.generateKey('coffer-key', context);
      await first.close();
      await second.close();
      const startMs = Date.now();
      await assert.rejects(kms.decrypt('coffer-key', dataKey.ciphertext, context), (e) => {
        assert.ok(isKmsError(e, 'Unavailable'));
        assert.ok(e.message.includes(first.url) && e.message.includes(second.url));
        assert.ok(!e.message.includes(dataKey.ciphertext.toString('base64')) && !e.message.includes(dataKey.plaintext.toString('base64')));
        return true;
      });
      assert.ok(Date.now() - startMs < 1000);
      // Both benched now: the next request skips both, then makes one pass ignoring the benches.
      await assert.rejects(kms.generateKey('coffer-key', context), (e) => isKmsError(e, 'Unavailable'));
    } finally {
      await kms.close();
    }
    const unreachable = await closedPortUrl();
    await assert.rejects(KesKms.connect(certConfig([unreachable]), fastOptions), (e: Error) => /^KES at https:\/\/127\.0\.0\.1:\d+: not reachable/.test(e.message));
  });

  test('timeouts are bounded: a hanging server fails the request within the timeout budget', async () => {
    const kes = await startFakeKes([clientIdentity], ['coffer-key']);
    const kms = await KesKms.connect(certConfig([kes.url]), { ...fastOptions, requestTimeoutMs: 200, retries: 1 });
    try {
      kes.hang = true;
      const startMs = Date.now();
      await assert.rejects(kms.generateKey('coffer-key', context), (e) => isKmsError(e, 'Unavailable') && /200 ms/.test(e.message));
      const elapsedMs = Date.now() - startMs;
      assert.ok(elapsedMs >= 380 && elapsedMs < 1500, `took ${elapsedMs} ms`);
      assert.equal(kes.requests.length, 1 + 2);
    } finally {
      await kms.close();
      await kes.close();
    }
  });

  test('the operation deadline bounds retries across endpoints', async () => {
    const kes = await startFakeKes([clientIdentity], ['coffer-key']);
    const kms = await KesKms.connect(certConfig([kes.url]), { ...fastOptions, requestTimeoutMs: 1000, retries: 10, operationDeadlineMs: 300 });
    try {
      kes.hang = true;
      const startMs = Date.now();
      await assert.rejects(kms.generateKey('coffer-key', context), (e) => isKmsError(e, 'Unavailable'));
      assert.ok(Date.now() - startMs < 800);
    } finally {
      await kms.close();
      await kes.close();
    }
  });

  test('responses are bounded in size', async () => {
    const kes = await startFakeKes([clientIdentity], ['coffer-key']);
    const kms = await KesKms.connect(certConfig([kes.url]), fastOptions);
    try {
      kes.huge = true;
      await assert.rejects(kms.generateKey('coffer-key', context), (e) => isKmsError(e, 'Unavailable') && /larger than 1048576/.test(e.message));
      assert.equal(kes.requests.length, 2, 'an oversized response is not retried');
    } finally {
      await kms.close();
      await kes.close();
    }
  });

  test('keep-warm describes the default key periodically and stops on close', async () => {
    const kes = await startFakeKes([clientIdentity], ['coffer-key']);
    const kms = await KesKms.connect(certConfig([kes.url]), { ...fastOptions, keepWarmMs: 40 });
    await new Promise((resolve) => setTimeout(resolve, 250));
    await kms.close();
    const describes = kes.requests.filter((r) => r.path === '/v1/key/describe/coffer-key').length;
    assert.ok(describes >= 3, `${describes} keep-warm requests`);
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.equal(kes.requests.filter((r) => r.path === '/v1/key/describe/coffer-key').length, describes);
    await kes.close();
  });
});
