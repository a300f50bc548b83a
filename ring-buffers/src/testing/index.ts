/**
 * @xenlab/ring-buffers/testing: two-process ring exchanges and ping-pongs, shared by the tests,
 * the demo and the ring benchmark. Not part of the library's runtime API.
 */
export { runPeerPair, type PairResult } from './spawn-peers.ts';
export { createRingFile, type PeerOptions, type PeerReport } from './blkif-peers.ts';
export { pingPong, PING_FILE_BYTES, type PingMode } from './ping-pong.ts';
export const PING_PONG_SCRIPT = new URL('./ping-pong.ts', import.meta.url);
