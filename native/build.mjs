// Builds the native addons: native/gcm.c → native/build/Release/coffer_gcm.node (AES-256-GCM for DARE),
// native/hash.c → coffer_hash.node (one-call SHA-256/HMAC-SHA256 for SigV4 and key derivations),
// native/md5.c → coffer_md5.node (the ETag MD5s of concurrent uploads across SIMD lanes) and
// native/fsops.c → coffer_fs.node (coffer.meta reads/writes and fsyncs as one thread-pool job each).
// package.json's "install" script, so `npm ci` / `npm install` run it; `node native/build.mjs` rebuilds by hand.
//
// It never fails the install: without node-gyp, a C toolchain or the running Node's headers it prints one
// warning line and exits 0, and workers/native-gcm.ts and engine/native-fs.ts find no addon, so DARE stays
// on node:crypto (same bytes, a little slower) and metadata I/O on node:fs (same files, more pool round
// trips). It never downloads headers either: node-gyp gets --nodedir pointing at the headers installed
// with this Node (include/node, OpenSSL's included). The addons are independent: make runs with -k, so
// one that does not compile leaves the other built, and each must pass its own self-test (a round trip
// against node:crypto, a write/read/fsync round trip against node:fs) or it is deleted; the warning line
// names what is missing and why.

import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const nativeDir = path.dirname(fileURLToPath(import.meta.url));
const buildDir = path.join(nativeDir, 'build');
const logPath = path.join(buildDir, 'node-gyp.log');
const buildTimeoutMs = 5 * 60_000;
/** A self-test that never settles (a broken addon) must not hang the install, nor end it with exit code 13. */
const selfTestTimeoutMs = 60_000;

/** The targets of binding.gyp: what each is for, and what Coffer uses without it. */
const addons = [
  { name: 'AES-GCM', source: 'gcm.c', file: path.join(buildDir, 'Release', 'coffer_gcm.node'), fallback: 'node:crypto', selfTest: selfTestGcm },
  { name: 'SHA-256', source: 'hash.c', file: path.join(buildDir, 'Release', 'coffer_hash.node'), fallback: 'node:crypto', selfTest: selfTestHash },
  { name: 'multi-lane MD5', source: 'md5.c', file: path.join(buildDir, 'Release', 'coffer_md5.node'), fallback: 'hash-wasm', selfTest: selfTestMd5 },
  { name: 'metadata I/O', source: 'fsops.c', file: path.join(buildDir, 'Release', 'coffer_fs.node'), fallback: 'node:fs', selfTest: selfTestFs },
];

/** Nothing can be built: one warning line naming every addon, and a successful exit. */
function skip(reason) {
  process.stderr.write(`coffer: native ${addons.map((addon) => addon.name).join(' and ')} not built (${reason}); using ${addons.map((addon) => addon.fallback).join(' and ')}\n`);
  process.exit(0);
}

const isFile = (file) => {
  try {
    return file !== undefined && file !== '' && existsSync(file);
  } catch {
    return false;
  }
};

/** npm's own node-gyp (npm passes its path to scripts), else the one bundled next to this Node, else a local one. */
function findNodeGyp() {
  const execDir = path.dirname(realpathOr(process.execPath));
  const candidates = [
    process.env.npm_config_node_gyp,
    process.env.npm_execpath && path.join(path.dirname(path.dirname(realpathOr(process.env.npm_execpath))), 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    path.join(execDir, '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    path.join(execDir, 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed locally: fine
  }
  return candidates.find((candidate) => typeof candidate === 'string' && candidate.endsWith('.js') && isFile(candidate));
}

function realpathOr(file) {
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
}

/**
 * A directory with include/node/{node_api.h,uv.h} for this Node: npm's nodedir, else this Node's prefix.
 * One with OpenSSL's headers too (coffer_gcm needs them) is preferred; without them only coffer_fs builds.
 */
function findNodeDir() {
  const candidates = [
    process.env.npm_config_nodedir,
    path.resolve(path.dirname(process.execPath), '..'),
    path.resolve(path.dirname(realpathOr(process.execPath)), '..'),
  ];
  const usable = candidates.filter(
    (dir) => typeof dir === 'string' && dir !== '' && isFile(path.join(dir, 'include', 'node', 'node_api.h')) && isFile(path.join(dir, 'include', 'node', 'uv.h')),
  );
  return usable.find((dir) => isFile(path.join(dir, 'include', 'node', 'openssl', 'evp.h'))) ?? usable[0];
}

function onPath(command) {
  const extensions = process.platform === 'win32' ? (process.env.PATHEXT ?? '.EXE').split(';') : [''];
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir !== '' && extensions.some((extension) => isFile(path.join(dir, command + extension))));
}

/** The addon must agree with node:crypto, refuse a wrong tag, and load (so the running Node has every symbol). */
function selfTestGcm(addonPath) {
  const gcm = createRequire(import.meta.url)(addonPath);
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const aad = randomBytes(4);
  const plaintext = randomBytes(1000);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const expected = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const expectedTag = cipher.getAuthTag();
  const sealed = Buffer.alloc(plaintext.length);
  const tag = Buffer.alloc(16);
  gcm.seal(key, iv, aad, plaintext, sealed, tag);
  if (!sealed.equals(expected) || !tag.equals(expectedTag)) throw new Error('ciphertext differs from node:crypto');
  const opened = Buffer.alloc(plaintext.length);
  if (gcm.open(key, iv, aad, sealed, opened, tag) !== true || !opened.equals(plaintext)) throw new Error('round trip failed');
  tag[0] ^= 1;
  if (gcm.open(key, iv, aad, sealed, opened, tag) !== false) throw new Error('a wrong tag was accepted');
  // The SSE key calls (native/sse_keys.c): their HMACs and seals against node:crypto's.
  const kesOut = Buffer.concat([Buffer.alloc(48), randomBytes(28)]);
  gcm.kesSeal(key, aad, plaintext.subarray(0, 32), kesOut);
  const kesCipher = createCipheriv('aes-256-gcm', createHmac('sha256', key).update(kesOut.subarray(48, 64)).digest(), kesOut.subarray(64));
  kesCipher.setAAD(aad);
  const kesExpected = Buffer.concat([kesCipher.update(plaintext.subarray(0, 32)), kesCipher.final(), kesCipher.getAuthTag()]);
  if (!kesOut.subarray(0, 48).equals(kesExpected)) throw new Error('kesSeal differs from node:crypto');
  const [random, sealIv, nonce] = [randomBytes(32), randomBytes(32), randomBytes(12)];
  const objectKey = Buffer.alloc(32);
  const sealedKey = Buffer.alloc(64);
  gcm.newSealedObjectKey(key, random, sealIv, nonce, 'SSE-S3DAREv2-HMAC-SHA256bucket/é', objectKey, sealedKey);
  if (!objectKey.equals(createHmac('sha256', key).update('object-encryption-key generation').update(random).digest())) throw new Error('object key differs');
  const header = Buffer.concat([Buffer.from([0x20, 0, 31, 0]), nonce]);
  header[4] |= 0x80;
  const kek = createHmac('sha256', key).update(sealIv).update('SSE-S3DAREv2-HMAC-SHA256bucket/é').digest();
  const keyCipher = createCipheriv('aes-256-gcm', kek, header.subarray(4));
  keyCipher.setAAD(header.subarray(0, 4));
  const sealedExpected = Buffer.concat([header, keyCipher.update(objectKey), keyCipher.final(), keyCipher.getAuthTag()]);
  if (!sealedKey.equals(sealedExpected)) throw new Error('sealed object key differs from node:crypto');
  return gcm.implementation === 'vaes-avx512' ? `VAES/AVX-512 on this CPU; ${gcm.openssl} elsewhere` : gcm.openssl;
}

/** SHA-256 and HMAC-SHA256 must give node:crypto's bytes, for strings, Buffers and a key longer than a block. */
function selfTestHash(addonPath) {
  const hash = createRequire(import.meta.url)(addonPath);
  const out = Buffer.alloc(32);
  const data = randomBytes(300);
  hash.sha256(out, 'AWS4-HMAC-SHA256\n', data);
  if (!out.equals(createHash('sha256').update('AWS4-HMAC-SHA256\n').update(data).digest())) throw new Error('SHA-256 differs from node:crypto');
  for (const key of [randomBytes(32), randomBytes(100), 'AWS4secret-é']) {
    hash.hmacSha256(out, key, data, 'ü');
    if (!out.equals(createHmac('sha256', key).update(data).update('ü').digest())) throw new Error('HMAC-SHA256 differs from node:crypto');
  }
  return 'one call per digest';
}

/**
 * Every kernel this CPU has must give node:crypto's MD5 for lanes of unequal lengths, continued across calls
 * from partial blocks, with states at odd offsets.
 */
function selfTestMd5(addonPath) {
  const md5 = createRequire(import.meta.url)(addonPath);
  for (let kernel = 0; kernel < md5.kernels.length; kernel++) {
    const messages = [0, 1, 63, 64, 65, 1000, 4096 + 7, 20_000, 70_001].map((length) => randomBytes(length));
    const memory = Buffer.alloc(messages.length * (md5.stateBytes + 3));
    const states = messages.map((_, i) => memory.subarray(i * (md5.stateBytes + 3) + 1, (i + 1) * (md5.stateBytes + 3)));
    for (const state of states) md5.init(state);
    const cuts = [0.3, 0.7, 1];
    let from = messages.map(() => 0);
    for (const cut of cuts) {
      const to = messages.map((message) => Math.floor(message.length * cut));
      md5.update(states, messages.map((message, i) => message.subarray(from[i], to[i])), kernel);
      from = to;
    }
    const out = Buffer.alloc(16);
    messages.forEach((message, i) => {
      md5.final(states[i], out);
      if (!out.equals(createHash('md5').update(message).digest())) throw new Error(`MD5 (${md5.kernels[kernel]}) of ${message.length} bytes differs from node:crypto`);
    });
  }
  return `${md5.kernels.at(-1)} lanes on this CPU`;
}

/** A rejection must look like node:fs's: code, syscall and path. */
async function expectFsError(promise, code, syscall, filePath) {
  try {
    await promise;
  } catch (error) {
    if (!(error instanceof Error) || error.code !== code || error.syscall !== syscall || error.path !== filePath) {
      throw new Error(`expected ${code} from ${syscall}, got ${error instanceof Error ? `${error.code} from ${error.syscall}: ${error.message}` : String(error)}`);
    }
    return;
  }
  throw new Error(`expected ${code} from ${syscall}, but it succeeded`);
}

/** The addon must load and write, rewrite, fsync and read back a file exactly as node:fs sees it, with fs-style errors. */
async function selfTestFs(addonPath) {
  const addon = createRequire(import.meta.url)(addonPath);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'coffer-fs-selftest-'));
  try {
    const file = path.join(dir, 'probe');
    const bytes = randomBytes(5000);
    await addon.writeFileDurable(file, bytes);
    await addon.fsyncPath(dir, true);
    await addon.fsyncPath(file, false);
    if (!readFileSync(file).equals(bytes)) throw new Error('writeFileDurable wrote other bytes');
    const whole = await addon.readFileHead(file, 1 << 20);
    if (!Buffer.isBuffer(whole.bytes) || !whole.bytes.equals(bytes) || whole.sizeBytes !== bytes.length) throw new Error('readFileHead read other bytes');
    const head = await addon.readFileHead(file, 100);
    if (!head.bytes.equals(bytes.subarray(0, 100)) || head.sizeBytes !== bytes.length) throw new Error('readFileHead ignored maxBytes');
    await expectFsError(addon.writeFileDurable(file, bytes.subarray(0, 1)), 'EEXIST', 'open', file);
    await expectFsError(addon.readFileHead(path.join(dir, 'missing'), 10), 'ENOENT', 'open', path.join(dir, 'missing'));
    if (!readFileSync(file).equals(bytes)) throw new Error('a refused writeFileDurable changed the file');
    await addon.rewriteFileDurable(file, bytes.subarray(100, 300));
    if (!readFileSync(file).equals(bytes.subarray(100, 300))) throw new Error('rewriteFileDurable left other bytes');
    await expectFsError(addon.rewriteFileDurable(path.join(dir, 'missing'), bytes), 'ENOENT', 'open', path.join(dir, 'missing'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return 'one pool job per call';
}

const nodeGyp = findNodeGyp();
if (nodeGyp === undefined) skip('node-gyp not found');
const nodeDir = findNodeDir();
if (nodeDir === undefined) skip(`no Node headers next to ${process.execPath} (set npm's nodedir)`);
if (process.platform !== 'win32') {
  const compiler = process.env.CC?.split(' ')[0] || 'cc';
  if (!onPath(compiler) && !isFile(compiler)) skip(`no C compiler (${compiler}) on PATH`);
  if (!onPath('make')) skip('no make on PATH');
}

const startedMs = Date.now();
const result = spawnSync(process.execPath, [nodeGyp, 'rebuild', '--release', `--nodedir=${nodeDir}`], {
  cwd: nativeDir,
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'pipe'],
  timeout: buildTimeoutMs,
  // -k: a target that does not compile must not keep the other from being built
  env: { ...process.env, npm_config_nodedir: nodeDir, MAKEFLAGS: `${process.env.MAKEFLAGS ?? ''} -k`.trim() },
});
const log = `${result.stdout ?? ''}${result.stderr ?? ''}`;
try {
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(logPath, log);
} catch {
  // the log is a courtesy
}
const logLines = log.split('\n').reverse();
const isErrorLine = (line) => /error/i.test(line) && !/gyp ERR! (cwd|node -v|node-gyp -v|command|System|not ok)/.test(line);
/** Why `addon` is not there after the build: node-gyp's failure and the last compiler error about its source. */
function buildFailure(addon) {
  const cause = result.error?.message ?? (result.status === 0 ? 'node-gyp succeeded but made no addon' : `node-gyp exited with ${result.status ?? result.signal}`);
  const lastError = logLines.find((line) => line.includes(addon.source) && isErrorLine(line)) ?? logLines.find(isErrorLine);
  return `${cause}${lastError === undefined ? '' : `: ${lastError.trim().slice(0, 160)}`}; log in ${path.relative(process.cwd(), logPath)}`;
}

const built = [];
const missing = [];
for (const addon of addons) {
  if (!isFile(addon.file)) {
    missing.push({ addon, reason: buildFailure(addon) });
    continue;
  }
  let timer;
  try {
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${selfTestTimeoutMs / 1000} s`)), selfTestTimeoutMs);
    });
    built.push({ addon, detail: await Promise.race([addon.selfTest(addon.file), timeout]) });
  } catch (error) {
    rmSync(addon.file, { force: true });
    missing.push({ addon, reason: `the built addon failed its self-test: ${error instanceof Error ? error.message : String(error)}` });
  } finally {
    clearTimeout(timer);
  }
}
const elapsed = `${Date.now() - startedMs} ms`;
if (built.length > 0) {
  const lines = built.map(({ addon, detail }) => `native ${addon.name} built (${path.relative(process.cwd(), addon.file)}, ${detail})`);
  process.stdout.write(`coffer: ${lines.join('; ')}; ${elapsed}\n`);
}
if (missing.length > 0) {
  const lines = missing.map(({ addon, reason }) => `native ${addon.name} not built (${reason}); using ${addon.fallback}`);
  process.stderr.write(`coffer: ${lines.join('; ')}\n`);
}
// Lingering work (a self-test that timed out) must not keep the install waiting.
process.exit(0);
