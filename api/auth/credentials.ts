// Where the request-authentication layer looks up secrets. One interface, so that a static table (tests, a
// single-user server), a file-backed store or a cached remote store can be swapped without touching sigv4.ts.

/** Resolves an access key id to its secret access key, or undefined when the key is unknown. */
export interface CredentialStore {
  secretFor(accessKeyId: string): string | undefined;
}

/** Longest access key id we accept; AWS ids are 16..128 characters. Bounds the work done for garbage input. */
export const accessKeyIdLengthMax = 128;

/** A fixed in-memory table of access key id -> secret; for tests and single-tenant deployments. */
export class StaticCredentialStore implements CredentialStore {
  readonly #secrets: ReadonlyMap<string, string>;

  constructor(entries: Iterable<readonly [accessKeyId: string, secretAccessKey: string]>) {
    const secrets = new Map<string, string>();
    for (const [accessKeyId, secretAccessKey] of entries) {
      if (accessKeyId.length === 0 || accessKeyId.length > accessKeyIdLengthMax) {
        throw new Error(`access key id must be 1..${accessKeyIdLengthMax} characters`);
      }
      if (secretAccessKey.length === 0) throw new Error(`empty secret for access key ${accessKeyId}`);
      if (secrets.has(accessKeyId)) throw new Error(`duplicate access key id ${accessKeyId}`);
      secrets.set(accessKeyId, secretAccessKey);
    }
    this.#secrets = secrets;
  }

  secretFor(accessKeyId: string): string | undefined {
    return this.#secrets.get(accessKeyId);
  }
}
