/**
 * The nodes blkback writes under `/local/domain/<be>/backend/vbd/<fe-domid>/<devid>/` (fact sheet
 * §2.3, io/blkif.h), as pure functions of the image and the features offered, so a test can pin
 * them and the xenbus machine (xenbus-backend.ts) can write them at the right state.
 *   - `featureKeys`: written before InitWait, so the frontend can read them while it sets up.
 *   - `connectKeys`: written just before Connected: the disk's size and kind.
 */
import { VDISK } from '@xenlab/ring-buffers';
import { SECTOR_SIZE } from './disk-image.ts';

export interface BlkImageInfo {
  /** Image size in bytes; a partial last sector is not part of the disk. */
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  readonly cdrom?: boolean;
  readonly removable?: boolean;
}

export interface BlkFeatures {
  readonly flush: boolean;
  readonly discard: boolean;
  /** `feature-persistent`: the backend keeps grant mappings of the frontend's data pages (persistent-grants.ts). */
  readonly persistent: boolean;
}

export const DEFAULT_FEATURES: BlkFeatures = { flush: true, discard: true, persistent: true };

export function featureKeys(features: Partial<BlkFeatures> = {}): Record<string, string> {
  const f = { ...DEFAULT_FEATURES, ...features };
  const keys: Record<string, string> = {
    'feature-flush-cache': f.flush ? '1' : '0',
    'feature-barrier': '0',
    'feature-persistent': f.persistent ? '1' : '0',
    'feature-discard': f.discard ? '1' : '0',
    'max-ring-page-order': '0',
    'multi-queue-max-queues': '1',
  };
  // No feature-max-indirect-segments: the node's presence would promise BLKIF_OP_INDIRECT.
  if (f.discard) {
    keys['discard-granularity'] = String(SECTOR_SIZE);
    keys['discard-alignment'] = '0';
    keys['discard-secure'] = '0';
  }
  return keys;
}

export function connectKeys(img: BlkImageInfo): Record<string, string> {
  let info = 0;
  if (img.cdrom) info |= VDISK.CDROM;
  if (img.removable) info |= VDISK.REMOVABLE;
  if (img.readOnly) info |= VDISK.READONLY;
  return {
    sectors: String(Math.floor(img.sizeBytes / SECTOR_SIZE)),
    'sector-size': String(SECTOR_SIZE),
    'physical-sector-size': String(SECTOR_SIZE),
    info: String(info),
  };
}
