// `npx tsx bench/kernels/run.ts [--quick] [--only=aead,hash,sigv4,meta,pool] [--time=MS]`: every CPU kernel,
// one table, one JSON file in bench/results/ (bench/kernels/suite.ts).
import { UsageError } from '../load/units.ts';
import { runKernels } from './suite.ts';

try {
  process.exitCode = await runKernels(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`kernels: ${(error as Error).message}\n`);
  process.exitCode = error instanceof UsageError ? 2 : 1;
}
