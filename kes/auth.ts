// Who is calling, and may they (reference/sse-kms-kes.md §14.2; minio/kes auth.go). Kept apart from the HTTP
// handlers: server.ts asks `identify` for the identity of a TLS connection and `authorize` whether that identity
// may request a path, before any handler runs.
//
// - Identity = lower-case hex SHA-256 of the client certificate's DER SubjectPublicKeyInfo, so every certificate
//   for the same key is the same identity. The chain is not verified unless `tls.auth: on` (then node verified it
//   during the handshake against `tls.ca`): identity + policy is the gate.
// - The admin identity may do everything. Any other identity needs a policy: a request is allowed iff no `deny`
//   pattern and at least one `allow` pattern matches the URL path. A pattern matches exactly, or, ending in '*',
//   as a prefix. An unknown identity and a policy rejection look the same to the client (403).

import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { identityOfPublicKey } from '../engine/kms/x509.ts';
import type { PolicyConfig } from './config.ts';
import { kesErrors } from './errors.ts';

export interface Policy {
  readonly name: string;
  readonly allow: readonly string[];
  readonly deny: readonly string[];
}

export type Caller = { readonly kind: 'admin'; readonly identity: string } | { readonly kind: 'policy'; readonly identity: string; readonly policy: Policy };

/** Exact match, or prefix match when the pattern ends in '*'. */
export function patternMatches(pattern: string, path: string): boolean {
  if (pattern.endsWith('*')) return path.startsWith(pattern.slice(0, -1));
  return pattern === path;
}

export function policyAllows(policy: Policy, path: string): boolean {
  if (policy.deny.some((pattern) => patternMatches(pattern, path))) return false;
  return policy.allow.some((pattern) => patternMatches(pattern, path));
}

/**
 * The identity of the client certificate on this connection. Throws the KES 400 errors when there is none (or,
 * with `verify`, when node could not verify it — only reachable when a route skips auth, see server.ts).
 */
export function identify(socket: TLSSocket, verify: boolean): string {
  const peer = socket.getPeerCertificate(false);
  if (peer === null || peer === undefined || peer.raw === undefined || peer.raw.length === 0) {
    throw kesErrors.clientCertificateRequired();
  }
  if (verify && !socket.authorized) {
    throw kesErrors.clientCertificateNotVerified(String(socket.authorizationError ?? 'unknown reason'));
  }
  const certificate = new X509Certificate(peer.raw);
  if (certificate.ca) throw kesErrors.clientCertificateRequired(); // KES skips CA certificates when looking for the leaf
  return identityOfPublicKey(certificate.publicKey);
}

export class Authorizer {
  /** '' when the admin is disabled */
  readonly adminIdentity: string;
  readonly policies: ReadonlyMap<string, Policy>;
  /** identity → policy name */
  readonly identities: ReadonlyMap<string, string>;

  constructor(adminIdentity: string, policies: readonly PolicyConfig[]) {
    this.adminIdentity = adminIdentity;
    const policyMap = new Map<string, Policy>();
    const identityMap = new Map<string, string>();
    for (const policy of policies) {
      policyMap.set(policy.name, { name: policy.name, allow: [...policy.allow], deny: [...policy.deny] });
      for (const identity of policy.identities) {
        if (identity === adminIdentity) throw new Error(`the admin identity cannot have policy '${policy.name}'`);
        if (identityMap.has(identity)) throw new Error(`identity '${identity}' already has policy '${identityMap.get(identity)}'`);
        identityMap.set(identity, policy.name);
      }
    }
    this.policies = policyMap;
    this.identities = identityMap;
  }

  /** Who the identity is; undefined for an identity the server does not know. */
  caller(identity: string): Caller | undefined {
    if (this.adminIdentity !== '' && identity === this.adminIdentity) return { kind: 'admin', identity };
    const policyName = this.identities.get(identity);
    if (policyName === undefined) return undefined;
    return { kind: 'policy', identity, policy: this.policies.get(policyName)! };
  }

  /** The caller if `identity` may request `path` (the decoded URL path); otherwise throws 403. */
  authorize(identity: string, path: string): Caller {
    const caller = this.caller(identity);
    if (caller === undefined) throw kesErrors.notAllowed();
    if (caller.kind === 'policy' && !policyAllows(caller.policy, path)) throw kesErrors.notAllowed();
    return caller;
  }
}
