// Server metrics in the Prometheus text format (GET /minio/v2/metrics/cluster, signed with the root
// credentials): requests and latency by S3 operation, bytes in/out, errors by code, drive usage, KMS calls
// and key-cache hits, worker-pool queue depth. Counters only ever hold numbers: no keys, names or paths.

/** Latency histogram bucket upper bounds, seconds (Prometheus `le`). */
const latencyBucketsSeconds = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
/** Bounds on label cardinality: operations and error codes come from closed sets, but stay defensive. */
const maxSeries = 512;

interface Histogram {
  readonly counts: number[];
  sumSeconds: number;
  count: number;
}

export interface Gauge {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter';
  readonly samples: readonly { readonly labels?: Readonly<Record<string, string>>; readonly value: number }[];
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labelText(labels: Readonly<Record<string, string>> | undefined): string {
  if (!labels || Object.keys(labels).length === 0) return '';
  return `{${Object.entries(labels).map(([name, value]) => `${name}="${escapeLabel(value)}"`).join(',')}}`;
}

export class ServerMetrics {
  readonly startedMs = Date.now();
  readonly #requests = new Map<string, number>();
  readonly #errors = new Map<string, number>();
  readonly #latency = new Map<string, Histogram>();
  bytesIn = 0;
  bytesOut = 0;

  record(operation: string, status: number, durationMs: number, bytesIn: number, bytesOut: number, errorCode: string | undefined): void {
    const requestKey = `${operation}\u0000${status}`;
    if (this.#requests.has(requestKey) || this.#requests.size < maxSeries) {
      this.#requests.set(requestKey, (this.#requests.get(requestKey) ?? 0) + 1);
    }
    if (errorCode !== undefined && (this.#errors.has(errorCode) || this.#errors.size < maxSeries)) {
      this.#errors.set(errorCode, (this.#errors.get(errorCode) ?? 0) + 1);
    }
    let histogram = this.#latency.get(operation);
    if (!histogram && this.#latency.size < maxSeries) {
      histogram = { counts: latencyBucketsSeconds.map(() => 0), sumSeconds: 0, count: 0 };
      this.#latency.set(operation, histogram);
    }
    if (histogram) {
      const seconds = durationMs / 1000;
      latencyBucketsSeconds.forEach((bound, index) => {
        if (seconds <= bound) histogram.counts[index]! += 1;
      });
      histogram.sumSeconds += seconds;
      histogram.count += 1;
    }
    this.bytesIn += bytesIn;
    this.bytesOut += bytesOut;
  }

  /** Total requests recorded for an operation (any status); for tests and admin info. */
  requestCount(operation: string): number {
    let total = 0;
    for (const [key, count] of this.#requests) if (key.startsWith(`${operation}\u0000`)) total += count;
    return total;
  }

  render(extra: readonly Gauge[]): string {
    const lines: string[] = [];
    const family = (name: string, type: string, help: string) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    family('coffer_s3_requests_total', 'counter', 'S3 requests by operation and HTTP status');
    for (const [key, count] of this.#requests) {
      const [api, status] = key.split('\u0000') as [string, string];
      lines.push(`coffer_s3_requests_total${labelText({ api, status })} ${count}`);
    }
    family('coffer_s3_errors_total', 'counter', 'S3 error responses by error code');
    for (const [code, count] of this.#errors) lines.push(`coffer_s3_errors_total${labelText({ code })} ${count}`);
    family('coffer_s3_request_duration_seconds', 'histogram', 'S3 request latency by operation');
    for (const [api, histogram] of this.#latency) {
      latencyBucketsSeconds.forEach((bound, index) => {
        lines.push(`coffer_s3_request_duration_seconds_bucket${labelText({ api, le: String(bound) })} ${histogram.counts[index]}`);
      });
      lines.push(`coffer_s3_request_duration_seconds_bucket${labelText({ api, le: '+Inf' })} ${histogram.count}`);
      lines.push(`coffer_s3_request_duration_seconds_sum${labelText({ api })} ${histogram.sumSeconds}`);
      lines.push(`coffer_s3_request_duration_seconds_count${labelText({ api })} ${histogram.count}`);
    }
    family('coffer_s3_traffic_received_bytes_total', 'counter', 'request body bytes received');
    lines.push(`coffer_s3_traffic_received_bytes_total ${this.bytesIn}`);
    family('coffer_s3_traffic_sent_bytes_total', 'counter', 'response body bytes sent');
    lines.push(`coffer_s3_traffic_sent_bytes_total ${this.bytesOut}`);
    family('coffer_uptime_seconds', 'gauge', 'seconds since the server started');
    lines.push(`coffer_uptime_seconds ${Math.floor((Date.now() - this.startedMs) / 1000)}`);
    for (const gauge of extra) {
      family(gauge.name, gauge.type, gauge.help);
      for (const sample of gauge.samples) lines.push(`${gauge.name}${labelText(sample.labels)} ${sample.value}`);
    }
    return `${lines.join('\n')}\n`;
  }
}
