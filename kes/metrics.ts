// Server metrics in the Prometheus text exposition format (version 0.0.4), served at /v1/metrics.
// The aggregate names follow minio/kes internal/metric so existing KES dashboards keep working:
//   kes_http_request_success / _error / _failure   2xx / 4xx / 5xx responses
//   kes_http_request_active                         requests being handled now
//   kes_http_response_time_seconds                  latency histogram
//   kes_system_up_time_seconds
// plus Coffer's per-route detail and key-store counters:
//   kes_http_requests_total{route, status}           kes_keystore_operations_total{operation, result}
//   kes_keystore_cache_lookups_total{result="hit"|"miss"}
// Label values come from a fixed set (route prefixes, status codes, operation names), never from request input,
// so the number of series is bounded.

export const latencyBucketsSeconds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export type KeyStoreOperation = 'create' | 'get' | 'delete' | 'list' | 'status';
export type KeyStoreResult = 'ok' | 'not_found' | 'exists' | 'error';

export class KesMetrics {
  readonly #startedMs = Date.now();
  readonly #requests = new Map<string, number>(); // `${route}\0${status}` → count
  readonly #bucketCounts = new Array<number>(latencyBucketsSeconds.length).fill(0);
  #latencySumSeconds = 0;
  #latencyCount = 0;
  #success = 0;
  #clientErrors = 0;
  #serverErrors = 0;
  #active = 0;
  readonly #keyStoreOperations = new Map<string, number>();
  #cacheHits = 0;
  #cacheMisses = 0;

  requestStarted(): void {
    this.#active++;
  }

  requestFinished(route: string, status: number, latencySeconds: number): void {
    this.#active--;
    const key = `${route}\0${status}`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    if (status < 400) this.#success++;
    else if (status < 500) this.#clientErrors++;
    else this.#serverErrors++;
    this.#latencySumSeconds += latencySeconds;
    this.#latencyCount++;
    for (let i = 0; i < latencyBucketsSeconds.length; i++) {
      if (latencySeconds <= latencyBucketsSeconds[i]!) this.#bucketCounts[i]!++;
    }
  }

  keyStoreOperation(operation: KeyStoreOperation, result: KeyStoreResult): void {
    const key = `${operation}\0${result}`;
    this.#keyStoreOperations.set(key, (this.#keyStoreOperations.get(key) ?? 0) + 1);
  }

  cacheLookup(hit: boolean): void {
    if (hit) this.#cacheHits++;
    else this.#cacheMisses++;
  }

  render(extra: { readonly cachedKeys?: number } = {}): string {
    const lines: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge' | 'histogram', help: string): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };
    metric('kes_http_request_success', 'counter', 'Number of requests answered with a 2xx/3xx status.');
    lines.push(`kes_http_request_success ${this.#success}`);
    metric('kes_http_request_error', 'counter', 'Number of requests answered with a 4xx status.');
    lines.push(`kes_http_request_error ${this.#clientErrors}`);
    metric('kes_http_request_failure', 'counter', 'Number of requests answered with a 5xx status.');
    lines.push(`kes_http_request_failure ${this.#serverErrors}`);
    metric('kes_http_request_active', 'gauge', 'Number of requests being handled.');
    lines.push(`kes_http_request_active ${this.#active}`);

    metric('kes_http_requests_total', 'counter', 'Requests by API route and HTTP status.');
    for (const [key, count] of [...this.#requests].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const [route, status] = key.split('\0') as [string, string];
      lines.push(`kes_http_requests_total{route="${escapeLabel(route)}",status="${status}"} ${count}`);
    }

    metric('kes_http_response_time_seconds', 'histogram', 'Time from receiving a request to sending its response.');
    for (let i = 0; i < latencyBucketsSeconds.length; i++) {
      lines.push(`kes_http_response_time_seconds_bucket{le="${latencyBucketsSeconds[i]}"} ${this.#bucketCounts[i]}`);
    }
    lines.push(`kes_http_response_time_seconds_bucket{le="+Inf"} ${this.#latencyCount}`);
    lines.push(`kes_http_response_time_seconds_sum ${this.#latencySumSeconds}`);
    lines.push(`kes_http_response_time_seconds_count ${this.#latencyCount}`);

    metric('kes_keystore_operations_total', 'counter', 'Operations sent to the key store backend (cache misses only for reads).');
    for (const [key, count] of [...this.#keyStoreOperations].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const [operation, result] = key.split('\0') as [string, string];
      lines.push(`kes_keystore_operations_total{operation="${operation}",result="${result}"} ${count}`);
    }
    metric('kes_keystore_cache_lookups_total', 'counter', 'Master-key cache lookups.');
    lines.push(`kes_keystore_cache_lookups_total{result="hit"} ${this.#cacheHits}`);
    lines.push(`kes_keystore_cache_lookups_total{result="miss"} ${this.#cacheMisses}`);
    if (extra.cachedKeys !== undefined) {
      metric('kes_keystore_cache_keys', 'gauge', 'Master keys in the cache.');
      lines.push(`kes_keystore_cache_keys ${extra.cachedKeys}`);
    }

    metric('kes_system_up_time_seconds', 'gauge', 'Seconds since the server started.');
    lines.push(`kes_system_up_time_seconds ${Math.floor((Date.now() - this.#startedMs) / 1000)}`);
    return lines.join('\n') + '\n';
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
