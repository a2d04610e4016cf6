// Self-signed X.509 certificates and KES identities (reference/sse-kms-kes.md §14.2), without a certificate library.
//
// node:crypto can sign but not issue certificates, so the DER of the TBSCertificate (RFC 5280 §4.1) is built here by
// hand and signed with `crypto.sign`. Only what KES, MinIO and Node's TLS need is encoded:
//
//   Certificate  ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, signatureValue BIT STRING }
//   TBSCertificate ::= SEQUENCE {
//     [0] EXPLICIT version INTEGER (2 = v3), serialNumber INTEGER (16 random bytes, positive),
//     signature AlgorithmIdentifier, issuer Name (= subject: CN only), validity { notBefore, notAfter },
//     subject Name, subjectPublicKeyInfo (node's SPKI DER export),
//     [3] EXPLICIT extensions { basicConstraints (critical, CA:FALSE), keyUsage (critical, digitalSignature),
//                               extKeyUsage, subjectAltName (DNS names, IP addresses) } }
//
// Signature algorithms: Ed25519 (OID 1.3.101.112, RFC 8410, the KES API-key key type) and ECDSA P-256 with SHA-256
// (OID 1.2.840.10045.4.3.2, DER-encoded (r, s) as node's `sign` emits by default).
//
// KES identity = lower-case hex SHA-256 of the DER SubjectPublicKeyInfo (not of the certificate), so any certificate
// for the same key has the same identity. A KES API key is `kes:v1:` + base64(0x00 ‖ 32-byte Ed25519 seed); the
// client turns it into a 90-day self-signed clientAuth certificate with CN = identity (kms-go `GenerateCertificate`).

import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';

export const apiKeyPrefix = 'kes:v1:';
/** Type byte 0x00 (Ed25519) + 32-byte seed. */
export const apiKeySizeBytes = 33;
export const ed25519SeedSizeBytes = 32;
/** kms-go: the certificate derived from an API key is valid for 90 days. */
export const apiKeyCertificateValidDays = 90;
/** A DNS name or CN longer than this is a caller bug, not a certificate (RFC 5280 ub-common-name is 64; KES CNs are 64-char hex). */
export const certificateNameSizeBytesMax = 255;
export const certificateAltNamesMax = 64;
/** Certificates are read from files: a PEM larger than this is not a single certificate (chain) we accept. */
export const certificatePemSizeBytesMax = 1024 * 1024;
const validDaysMax = 100 * 365;
const serialNumberSizeBytes = 16;

// PKCS#8 prefix for a raw Ed25519 private key (RFC 8410 §7): SEQUENCE { INTEGER 0, AlgorithmIdentifier { 1.3.101.112 },
// OCTET STRING { OCTET STRING (32 bytes) } } — node imports a seed only through a PKCS#8 or JWK wrapper.
const ed25519Pkcs8Prefix = Buffer.from('302e020100300506032b657004220420', 'hex');

const oid = {
  ed25519: '1.3.101.112',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

// ---- DER (X.690) encoding: small pure functions ----

function derLength(lengthBytes: number): Buffer {
  if (lengthBytes < 0x80) return Buffer.from([lengthBytes]);
  const bytes: number[] = [];
  for (let n = lengthBytes; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function derTlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), derLength(content.length), content]);
}

const derSequence = (...items: Buffer[]): Buffer => derTlv(0x30, Buffer.concat(items));
const derSet = (...items: Buffer[]): Buffer => derTlv(0x31, Buffer.concat(items));
const derOctetString = (content: Buffer): Buffer => derTlv(0x04, content);
const derUtf8String = (text: string): Buffer => derTlv(0x0c, Buffer.from(text, 'utf8'));
const derBoolean = (value: boolean): Buffer => derTlv(0x01, Buffer.from([value ? 0xff : 0x00]));
const derExplicit = (tagNumber: number, content: Buffer): Buffer => derTlv(0xa0 | tagNumber, content);

/** INTEGER from unsigned big-endian bytes: minimal, with a 0x00 pad when the top bit is set. */
function derUnsignedInteger(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return derTlv(0x02, (trimmed[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

/** BIT STRING with 0 unused bits. */
const derBitString = (content: Buffer): Buffer => derTlv(0x03, Buffer.concat([Buffer.from([0]), content]));

function derObjectIdentifier(dotted: string): Buffer {
  const arcs = dotted.split('.').map((arc) => Number.parseInt(arc, 10));
  const bytes: number[] = [arcs[0]! * 40 + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const base128: number[] = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) base128.unshift(0x80 | (n & 0x7f));
    bytes.push(...base128);
  }
  return derTlv(0x06, Buffer.from(bytes));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; seconds precision, always Zulu. */
function derTime(date: Date): Buffer {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '') + 'Z'; // YYYYMMDDHHMMSSZ
  const year = date.getUTCFullYear();
  if (year < 2050) return derTlv(0x17, Buffer.from(digits.slice(2), 'ascii'));
  return derTlv(0x18, Buffer.from(digits, 'ascii'));
}

function derName(commonName: string): Buffer {
  return derSequence(derSet(derSequence(derObjectIdentifier(oid.commonName), derUtf8String(commonName))));
}

function derExtension(extensionOid: string, critical: boolean, value: Buffer): Buffer {
  return derSequence(derObjectIdentifier(extensionOid), ...(critical ? [derBoolean(true)] : []), derOctetString(value));
}

function ipAddressBytes(address: string): Buffer {
  const family = isIP(address);
  if (family === 4) return Buffer.from(address.split('.').map((part) => Number.parseInt(part, 10)));
  if (family !== 6) throw new Error(`x509: '${address}' is not an IP address`);
  // Expand '::' and an embedded IPv4 tail, then 8 groups of 16 bits.
  let text = address;
  const v4Tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4Tail) {
    const [a, b, c, d] = v4Tail[1]!.split('.').map((part) => Number.parseInt(part, 10)) as [number, number, number, number];
    text = text.slice(0, -v4Tail[1]!.length) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16);
  }
  const [head = '', tail] = text.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  const bytes = Buffer.alloc(16);
  groups.forEach((group, i) => bytes.writeUInt16BE(Number.parseInt(group, 16), i * 2));
  return bytes;
}

interface SignatureScheme {
  readonly algorithmIdentifier: Buffer;
  sign(tbs: Buffer, privateKey: KeyObject): Buffer;
}

function signatureScheme(privateKey: KeyObject): SignatureScheme {
  if (privateKey.type !== 'private') throw new Error('x509: a private key is required to sign a certificate');
  if (privateKey.asymmetricKeyType === 'ed25519') {
    // RFC 8410 §3: parameters absent
    return { algorithmIdentifier: derSequence(derObjectIdentifier(oid.ed25519)), sign: (tbs, key) => sign(null, tbs, key) };
  }
  if (privateKey.asymmetricKeyType === 'ec' && privateKey.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    // RFC 5758 §3.2: parameters absent; signature is DER SEQUENCE { r, s }
    return { algorithmIdentifier: derSequence(derObjectIdentifier(oid.ecdsaWithSha256)), sign: (tbs, key) => sign('sha256', tbs, key) };
  }
  throw new Error(`x509: unsupported key type '${privateKey.asymmetricKeyType ?? 'unknown'}' (Ed25519 or ECDSA P-256 only)`);
}

function toPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export interface SelfSignedCertificateOptions {
  readonly privateKey: KeyObject;
  readonly commonName: string;
  readonly validDays: number;
  readonly extKeyUsage: readonly ('clientAuth' | 'serverAuth')[];
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  /** defaults to now; tests pin it */
  readonly notBefore?: Date;
}

/** A self-signed X.509 v3 certificate (DER built by hand, signed with node:crypto) for an Ed25519 (or ECDSA P-256) key. */
export function selfSignedCertificate(options: SelfSignedCertificateOptions): string {
  const { privateKey, commonName, validDays, extKeyUsage } = options;
  const dnsNames = options.dnsNames ?? [];
  const ipAddresses = options.ipAddresses ?? [];
  const scheme = signatureScheme(privateKey);
  if (!Number.isInteger(validDays) || validDays < 1 || validDays > validDaysMax) {
    throw new Error(`x509: validDays must be an integer in 1..${validDaysMax}`);
  }
  if (Buffer.byteLength(commonName) > certificateNameSizeBytesMax) throw new Error('x509: common name too long');
  if (dnsNames.length + ipAddresses.length > certificateAltNamesMax) throw new Error(`x509: more than ${certificateAltNamesMax} alternative names`);
  for (const dnsName of dnsNames) {
    if (!/^[\x21-\x7e]{1,255}$/.test(dnsName)) throw new Error(`x509: invalid DNS name '${dnsName}'`);
  }

  const notBefore = options.notBefore ?? new Date();
  const notAfter = new Date(notBefore.getTime() + validDays * 24 * 60 * 60 * 1000);
  const serialNumber = randomBytes(serialNumberSizeBytes);
  serialNumber[0] = (serialNumber[0]! & 0x7f) | 0x40; // positive, exactly 16 bytes
  const spkiDer = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });

  const extensions: Buffer[] = [
    derExtension(oid.basicConstraints, true, derSequence()), // CA:FALSE (Go: BasicConstraintsValid, !IsCA)
    derExtension(oid.keyUsage, true, derTlv(0x03, Buffer.from([0x07, 0x80]))), // digitalSignature (bit 0; 7 unused bits)
  ];
  if (extKeyUsage.length > 0) {
    extensions.push(derExtension(oid.extKeyUsage, false, derSequence(...[...new Set(extKeyUsage)].map((usage) => derObjectIdentifier(oid[usage])))));
  }
  if (dnsNames.length + ipAddresses.length > 0) {
    const generalNames = [
      ...dnsNames.map((dnsName) => derTlv(0x82, Buffer.from(dnsName, 'ascii'))), // [2] IMPLICIT IA5String
      ...ipAddresses.map((address) => derTlv(0x87, ipAddressBytes(address))), // [7] IMPLICIT OCTET STRING
    ];
    extensions.push(derExtension(oid.subjectAltName, false, derSequence(...generalNames)));
  }

  const name = derName(commonName);
  const tbsCertificate = derSequence(
    derExplicit(0, derUnsignedInteger(Buffer.from([2]))),
    derUnsignedInteger(serialNumber),
    scheme.algorithmIdentifier,
    name,
    derSequence(derTime(notBefore), derTime(notAfter)),
    name,
    spkiDer,
    derExplicit(3, derSequence(...extensions)),
  );
  const signature = scheme.sign(tbsCertificate, privateKey);
  return toPem('CERTIFICATE', derSequence(tbsCertificate, scheme.algorithmIdentifier, derBitString(signature)));
}

/** KES identity of a public key: lower-case hex SHA-256 of its DER SubjectPublicKeyInfo. */
export function identityOfPublicKey(publicKey: KeyObject): string {
  const key = publicKey.type === 'private' ? createPublicKey(publicKey) : publicKey;
  return createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex');
}

/** KES identity: lower-case hex SHA-256 of the DER SubjectPublicKeyInfo of a certificate's public key. */
export function identityOfCertificate(certPem: string | Buffer): string {
  if (certPem.length > certificatePemSizeBytesMax) throw new Error('x509: certificate too large');
  return identityOfPublicKey(new X509Certificate(certPem).publicKey);
}

/** `kes:v1:` API key → Ed25519 key pair (seed = 32 bytes after the 0x00 type byte). The error never echoes the key. */
export function keyFromApiKey(apiKey: string): { privateKey: KeyObject; publicKey: KeyObject; identity: string } {
  const invalid = (why: string): Error => new Error(`kes: invalid API key: ${why}`);
  if (!apiKey.startsWith(apiKeyPrefix)) throw invalid(`expected the prefix '${apiKeyPrefix}'`);
  const encoded = apiKey.slice(apiKeyPrefix.length);
  if (encoded.length > 64 || !/^[A-Za-z0-9+/]*={0,2}$/.test(encoded)) throw invalid('not base64');
  const decoded = Buffer.from(encoded, 'base64');
  try {
    if (decoded.length !== apiKeySizeBytes) throw invalid(`expected ${apiKeySizeBytes} bytes after decoding`);
    if (decoded[0] !== 0x00) throw invalid('unsupported key type (only 0x00 = Ed25519)');
    const pkcs8 = Buffer.concat([ed25519Pkcs8Prefix, decoded.subarray(1)]);
    const privateKey = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
    pkcs8.fill(0);
    const publicKey = createPublicKey(privateKey);
    return { privateKey, publicKey, identity: identityOfPublicKey(publicKey) };
  } finally {
    decoded.fill(0);
  }
}

/** A fresh random `kes:v1:` API key (a secret). */
export function newApiKey(): string {
  const raw = Buffer.concat([Buffer.from([0x00]), randomBytes(ed25519SeedSizeBytes)]);
  const apiKey = apiKeyPrefix + raw.toString('base64');
  raw.fill(0);
  return apiKey;
}

/** The mTLS client certificate (PEM) and key a KES client presents for an API key, like kms-go. */
export function certificateFromApiKey(apiKey: string): { certPem: string; privateKey: KeyObject; identity: string } {
  const { privateKey, identity } = keyFromApiKey(apiKey);
  const certPem = selfSignedCertificate({ privateKey, commonName: identity, validDays: apiKeyCertificateValidDays, extKeyUsage: ['clientAuth'] });
  return { certPem, privateKey, identity };
}
