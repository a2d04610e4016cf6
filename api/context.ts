// What every S3 operation handler receives.
import type { ObjectEngine } from '../engine/types.ts';
import type { AuthResult } from './auth/sigv4.ts';
import type { RequestBody } from './body.ts';
import type { ServerSettings } from './config.ts';
import type { S3Request } from './request.ts';
import type { SseSettings } from './sse.ts';
import type { Gauge, ServerMetrics } from './metrics.ts';
import type { HeaderList, ResponseWriter } from './response.ts';

export interface RequestContext {
  readonly req: S3Request;
  readonly res: ResponseWriter;
  /** the raw socket body; handlers read it through api/payload.ts, which applies SigV4 payload rules */
  readonly body: RequestBody;
  readonly auth: Extract<AuthResult, { kind: 'signed' }>;
  readonly engine: ObjectEngine;
  readonly settings: ServerSettings;
  /** the request came over TLS */
  readonly secure: boolean;
  readonly sse: SseSettings;
  readonly metrics: ServerMetrics;
  readonly observe: Observability;
}

/** What the operator endpoints report beyond the engine (wired by the server command). */
export interface Observability {
  readonly version: string;
  readonly drives: readonly string[];
  /** KMS calls, key-cache hits, worker-pool queue depth … as Prometheus families */
  readonly gauges: () => readonly Gauge[];
  readonly kmsStatus: () => Promise<{ name: string; defaultKey: string; status: 'online' | 'offline'; endpoints: Readonly<Record<string, string>> }>;
}

export type Handler = (ctx: RequestContext) => Promise<void>;

export const xmlContentType: readonly [string, string] = ['Content-Type', 'application/xml'];

/** Send an XML document (200 unless told otherwise). */
export function sendXml(ctx: RequestContext, xml: string, status = 200, headers: HeaderList = []): void {
  ctx.res.send(status, [xmlContentType, ...headers], xml);
}
