/** `npm run bench -- pv-vs-hvm [options]`: the PV vs HVM runner (pv-vs-hvm/index.ts, docs/benchmarks.md). */
export { run } from './pv-vs-hvm/index.ts';
