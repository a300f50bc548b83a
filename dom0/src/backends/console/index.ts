/** The console backend core (xenconsoled role): see console-backend.ts. */
export { ConsoleBackend, type ConsoleBackendCounters, type ConsoleBackendOptions } from './console-backend.ts';
