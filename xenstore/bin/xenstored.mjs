#!/usr/bin/env node
// npx shim: runs the TypeScript daemon through tsx (xenstore/src/main.ts).
import { register } from 'tsx/esm/api';
register();
await import('../src/main.ts');
