#!/usr/bin/env node
// npx shim for xenlab: its prebuilt bundle (dist/xenlab.mjs) while that is newer than its sources, else
// the TypeScript source through tsx (@xenlab/xen-public/process-entry decides).
import { pathToFileURL } from 'node:url';
import { freshBundle } from '@xenlab/xen-public/process-entry';

const bundle = freshBundle('xenlab');
if (bundle) {
  await import(pathToFileURL(bundle).href);
} else {
  (await import('tsx/esm/api')).register();
  await import('../src/xenlab/main.ts');
}
