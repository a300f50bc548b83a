// Worker-thread entry for a pCPU: registers the TypeScript loader in this thread, then loads
// the pCPU loop (pcpu-thread.ts). Worker threads do not inherit the parent's --import hooks here.
import { register } from 'tsx/esm/api';
register();
await import('./pcpu-thread.ts');
