#!/usr/bin/env node
// npx shim for xenstored: its prebuilt bundle (dist/xenstored.mjs) while that is newer than its sources, else
// the TypeScript source through tsx (@xenlab/xen-public/process-entry decides).
import { pathToFileURL } from 'node:url';
import { freshBundle } from '@xenlab/xen-public/process-entry';

const bundle = freshBundle('xenstored');
if (bundle) {
  await import(pathToFileURL(bundle).href);
} else {
  (await import('tsx/esm/api')).register();
  await import('../src/main.ts');
}
