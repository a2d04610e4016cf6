// Builds the native AES-256-GCM addon (native/gcm.c → native/build/Release/coffer_gcm.node). package.json's
// "install" script, so `npm ci` / `npm install` run it; `node native/build.mjs` rebuilds by hand.
//
// It never fails the install: without node-gyp, a C toolchain or the running Node's headers it prints one
// warning line and exits 0, and workers/native-gcm.ts finds no addon, so DARE stays on node:crypto (same
// bytes, a little slower). It never downloads headers either: node-gyp gets --nodedir pointing at the
// headers installed with this Node (include/node, OpenSSL's included). A build that does not pass a
// round trip against node:crypto is deleted.

import { spawnSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const nativeDir = path.dirname(fileURLToPath(import.meta.url));
const buildDir = path.join(nativeDir, 'build');
const addonPath = path.join(buildDir, 'Release', 'coffer_gcm.node');
const logPath = path.join(buildDir, 'node-gyp.log');
const buildTimeoutMs = 5 * 60_000;

function skip(reason) {
  process.stderr.write(`coffer: native AES-GCM not built (${reason}); using node:crypto\n`);
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

/** A directory with include/node/{node_api.h,openssl/evp.h} for this Node: npm's nodedir, else this Node's prefix. */
function findNodeDir() {
  const candidates = [
    process.env.npm_config_nodedir,
    path.resolve(path.dirname(process.execPath), '..'),
    path.resolve(path.dirname(realpathOr(process.execPath)), '..'),
  ];
  return candidates.find(
    (dir) => typeof dir === 'string' && dir !== '' && isFile(path.join(dir, 'include', 'node', 'node_api.h')) && isFile(path.join(dir, 'include', 'node', 'openssl', 'evp.h')),
  );
}

function onPath(command) {
  const extensions = process.platform === 'win32' ? (process.env.PATHEXT ?? '.EXE').split(';') : [''];
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir !== '' && extensions.some((extension) => isFile(path.join(dir, command + extension))));
}

/** The addon must agree with node:crypto, refuse a wrong tag, and load (so the running Node has every symbol). */
function selfTest() {
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
  return gcm.openssl;
}

const nodeGyp = findNodeGyp();
if (nodeGyp === undefined) skip('node-gyp not found');
const nodeDir = findNodeDir();
if (nodeDir === undefined) skip(`no Node headers with OpenSSL next to ${process.execPath} (set npm's nodedir)`);
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
  env: { ...process.env, npm_config_nodedir: nodeDir },
});
const log = `${result.stdout ?? ''}${result.stderr ?? ''}`;
try {
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(logPath, log);
} catch {
  // the log is a courtesy
}
if (result.error !== undefined || result.status !== 0) {
  const cause = result.error?.message ?? `node-gyp exited with ${result.status ?? result.signal}`;
  const lastError = log.split('\n').reverse().find((line) => /error/i.test(line) && !/gyp ERR! (cwd|node -v|node-gyp -v|command|System|not ok)/.test(line));
  skip(`${cause}${lastError === undefined ? '' : `: ${lastError.trim().slice(0, 160)}`}; log in ${path.relative(process.cwd(), logPath)}`);
}
let openssl;
try {
  openssl = selfTest();
} catch (error) {
  rmSync(addonPath, { force: true });
  skip(`the built addon failed its self-test: ${error instanceof Error ? error.message : String(error)}`);
}
process.stdout.write(`coffer: native AES-GCM built (${path.relative(process.cwd(), addonPath)}, ${openssl}, ${Date.now() - startedMs} ms)\n`);
