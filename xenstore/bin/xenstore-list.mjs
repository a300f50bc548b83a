#!/usr/bin/env node
// npx shim: runs the TypeScript CLI through tsx (xenstore/src/cli/list.ts).
import { register } from 'tsx/esm/api';
register();
await import('../src/cli/list.ts');
