// Server settings, read from MinIO's own environment variables so MinIO's guides work unchanged.
export const defaultAccessKey = 'minioadmin';
export const defaultSecretKey = 'minioadmin';
const minAccessKeyLength = 3;
const minSecretKeyLength = 8;

export interface ServerSettings {
  readonly accessKey: string;
  readonly secretKey: string;
  /** true when neither MINIO_ROOT_* nor MINIO_ACCESS_KEY/SECRET_KEY were set */
  readonly usingDefaultCredentials: boolean;
  /** domains for virtual-host-style requests (MINIO_DOMAIN, comma separated) */
  readonly domains: readonly string[];
  readonly region: string;
}

export function settingsFromEnv(env: NodeJS.ProcessEnv): ServerSettings {
  const accessKey = env.MINIO_ROOT_USER || env.MINIO_ACCESS_KEY || '';
  const secretKey = env.MINIO_ROOT_PASSWORD || env.MINIO_SECRET_KEY || '';
  if ((accessKey === '') !== (secretKey === '')) {
    throw new Error('set both MINIO_ROOT_USER and MINIO_ROOT_PASSWORD (or MINIO_ACCESS_KEY and MINIO_SECRET_KEY), or neither');
  }
  if (accessKey !== '' && accessKey.length < minAccessKeyLength) {
    throw new Error(`the access key must be at least ${minAccessKeyLength} characters`);
  }
  if (secretKey !== '' && secretKey.length < minSecretKeyLength) {
    throw new Error(`the secret key must be at least ${minSecretKeyLength} characters`);
  }
  const domains = (env.MINIO_DOMAIN ?? '')
    .split(',')
    .map((domain) => domain.trim().toLowerCase())
    .filter((domain) => domain !== '');
  // `*.localhost` resolves to loopback on most systems, so SDKs defaulting to virtual-host style work locally.
  if (!domains.includes('localhost')) domains.push('localhost');
  return {
    accessKey: accessKey || defaultAccessKey,
    secretKey: secretKey || defaultSecretKey,
    usingDefaultCredentials: accessKey === '',
    domains,
    region: env.MINIO_SITE_REGION || env.MINIO_REGION || 'us-east-1',
  };
}
