// Worker threads do not inherit tsx's loader hooks: register them, then load the TS worker.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
