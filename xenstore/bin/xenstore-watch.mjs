#!/usr/bin/env node
// npx shim: runs the TypeScript CLI through tsx (xenstore/src/cli/watch.ts).
import { register } from 'tsx/esm/api';
register();
await import('../src/cli/watch.ts');
