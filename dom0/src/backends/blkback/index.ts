/**
 * blkback core (dom0's block backend): the request parser/validator, the device that serves a
 * ring, the disk image, the xenstore keys it publishes and the backend half of the xenbus
 * handshake. The grant-copy interface is what the hypervisor's GNTTABOP_copy must satisfy.
 */
export { BlkbackDevice, type BlkbackCounters, type BlkbackOptions } from './blkback.ts';
export { parseRequest, opName, SECTORS_PER_PAGE, type BlkRequest, type BlkRejected, type BlkSegment, type BlkDeviceLimits } from './request.ts';
export { PersistentGrants, DEFAULT_PERSISTENT_GRANTS, type PersistentGrantCounters } from './persistent-grants.ts';
export { DiskImage, SECTOR_SIZE, type BlockDisk } from './disk-image.ts';
export type { GrantCopyInterface, GrantCopyOp, GrantMapInterface, GrantMapOp, GrantMapResult } from './grant-copy.ts';
export { featureKeys, connectKeys, DEFAULT_FEATURES, type BlkImageInfo, type BlkFeatures } from './xenstore-keys.ts';
export {
  backendStep,
  createBackendMachine,
  parseFrontendRing,
  NATIVE_PROTOCOL,
  type BackendMachine,
  type BackendInput,
  type BackendAction,
  type FrontendRing,
  type FrontendNodes,
} from './xenbus-backend.ts';
export { BackendXenbusDriver, errorPath, type BackendDriverOptions, type XenbusStore } from './xenbus-driver.ts';
