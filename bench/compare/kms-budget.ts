// `coffer bench compare --kms-budget get=0,put=1`: the KMS calls a step may make per request, checked on every
// measured run of a `metrics` case. A cache that stops holding keys shows up as SSE GETs calling the KMS; the
// session-17 CLOCK bug made 1,111 decrypt calls in one 4 KiB GET step while throughput only dipped into the noise.

import { UsageError } from '../load/units.ts';

/** Calls per request, by step operation (put, get, stat). */
export type KmsBudget = Readonly<Partial<Record<string, number>>>;

export interface KmsOverBudget {
  readonly round: number;
  readonly step: string;
  readonly case: string;
  readonly kmsCalls: number;
  readonly requests: number;
  /** the budget per request that was exceeded */
  readonly budgetPerRequest: number;
}

/** `get=0,put=1` → { get: 0, put: 1 }; each op at most once, each value a number ≥ 0. */
export function parseKmsBudget(text: string, ops: readonly string[]): KmsBudget {
  const budget: Record<string, number> = {};
  for (const item of text.split(',')) {
    const match = /^([a-z]+)=([0-9]+(?:\.[0-9]+)?)$/.exec(item.trim());
    if (match === null) throw new UsageError(`--kms-budget: expected OP=CALLS_PER_REQUEST, e.g. get=0,put=1; got ${JSON.stringify(item)}`);
    const [, op, value] = match;
    if (!ops.includes(op!)) throw new UsageError(`--kms-budget: unknown operation ${JSON.stringify(op)} (one of ${ops.join(', ')})`);
    if (op! in budget) throw new UsageError(`--kms-budget: ${op} given twice`);
    budget[op!] = Number(value);
  }
  return budget;
}

/**
 * Every measured run whose KMS calls exceed `budget` × its requests. A run's requests are the ones that
 * succeeded; runs of cases without `metrics` (kmsCalls unknown) and of operations without a budget pass.
 */
export function kmsOverBudget(
  runs: readonly { round: number; step: string; case: string; kmsCalls?: number; measured: { succeeded: number } }[],
  opOfStep: (step: string) => string | undefined,
  budget: KmsBudget,
): KmsOverBudget[] {
  const over: KmsOverBudget[] = [];
  for (const run of runs) {
    if (run.kmsCalls === undefined) continue;
    const op = opOfStep(run.step);
    const perRequest = op === undefined ? undefined : budget[op];
    if (perRequest === undefined) continue;
    if (run.kmsCalls > perRequest * run.measured.succeeded) {
      over.push({ round: run.round, step: run.step, case: run.case, kmsCalls: run.kmsCalls, requests: run.measured.succeeded, budgetPerRequest: perRequest });
    }
  }
  return over;
}

/** `round 5 get:4KiB sse-s3: 1111 KMS calls for 20000 requests (budget 0 per request)` */
export function formatOverBudget(over: KmsOverBudget): string {
  return `round ${over.round} ${over.step} ${over.case}: ${over.kmsCalls} KMS calls for ${over.requests} requests (budget ${over.budgetPerRequest} per request)`;
}
