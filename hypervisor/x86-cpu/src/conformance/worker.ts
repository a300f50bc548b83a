/** Conformance worker thread: runs the files main.ts hands it, one at a time. */
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { runFile, type SuiteSpec } from './harness.ts';

const { verbose } = workerData as { verbose: number };
parentPort!.on('message', (s: SuiteSpec) => {
  parentPort!.postMessage(runFile(s, readFileSync(s.file), verbose));
});
