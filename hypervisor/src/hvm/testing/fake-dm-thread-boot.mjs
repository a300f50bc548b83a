// Worker-thread entry for the fake device model of the ioreq tests: registers the TypeScript
// loader in this thread (workers do not inherit --import hooks), then loads fake-dm-thread.ts.
import { register } from 'tsx/esm/api';
register();
await import('./fake-dm-thread.ts');
