// `npm run bench` (tsx bench/kernels.bench.ts): kept for the README's command; the kernels now live in
// bench/kernels/ and this runs them all (same as `npx tsx bench/kernels/run.ts`, same options).
import './kernels/run.ts';
