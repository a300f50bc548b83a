/** The `xenlab-bench` command (tools/bin/xenlab-bench.mjs); see index.ts for the options. */
import { CommanderError } from 'commander';
import { benchMain, parseArgs } from './index.ts';

async function main(): Promise<void> {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof CommanderError) process.exit(e.exitCode);
    throw e;
  }
  const r = await benchMain(o);
  process.stdout.write(`${r.summary}\n\nwrote ${r.written.json}\n      ${r.written.csv}\n      ${r.written.html}\n      ${r.written.charts.length} chart files in ${r.written.html.replace(/report\.html$/, 'charts/')}\n`);
  const failures = r.doc.scenarios.reduce((a, sc) => a + sc.results.reduce((b, x) => b + x.failures, 0), 0);
  if (failures > 0) {
    process.stderr.write(`xenlab-bench: ${failures} run(s) failed; their errors are in results.json and the report\n`);
    process.exit(1);
  }
}

main().catch((e) => {
  process.stderr.write(`xenlab-bench: ${(e as Error).message ?? e}\n`);
  if (process.env.XENLAB_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
