/** `xenstore-exists`, as Xen's: see xenstore-client.ts. */
import { run } from './xenstore-client.ts';

await run('exists');
