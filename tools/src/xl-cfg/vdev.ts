/**
 * Virtual-device names to the number a frontend writes to `virtual-device` (xen-vbd-interface(7),
 * fact sheet §2.3): `xvdX[N]`, `sdX[N]`, `hdX[N]`, `dNpM`, or the number itself. Disk letters are
 * bijective base 26 (a = 0, z = 25, aa = 26), partitions 0 (whole disk) upward.
 */

export interface Vdev {
  /** The device as the user named it. */
  readonly name: string;
  readonly number: number;
  /** Disk index (xvda = 0) and partition (0 = the whole disk). */
  readonly disk: number;
  readonly partition: number;
}

const XVD_MAJOR = 202;
const SD_MAJOR = 8;
const HD_MAJOR_01 = 3;
const HD_MAJOR_23 = 22;
const EXTENDED = 1 << 28;
/** Extended numbers keep the disk in bits 8..27: 2^20 disks. */
const MAX_EXTENDED_DISK = (1 << 20) - 1;

function letters(s: string): number {
  let n = 0;
  for (const ch of s) n = n * 26 + (ch.charCodeAt(0) - 96);
  return n - 1;
}

/** Encodes a vdev name, or returns an explanation of why it is not one. */
export function parseVdev(name: string): Vdev | string {
  const expected = 'expected xvdX[N], sdX[N], hdX[N] (X: a..z, aa.., N: partition), dNpM or a number';
  let m = /^(xvd|sd|hd)([a-z]+)([0-9]*)$/.exec(name);
  if (m) {
    const [, kind, ls, ps] = m;
    const disk = letters(ls!);
    if (ps!.length > 1 && ps!.startsWith('0')) return `partition '${ps}' has a leading zero (${expected})`;
    const part = ps === '' ? 0 : Number(ps);
    if (ps !== '' && part === 0) return `partition 0 is the whole disk: write '${kind}${ls}' (${expected})`;
    if (kind === 'xvd') {
      if (disk <= 15 && part <= 15) return { name, number: (XVD_MAJOR << 8) | (disk << 4) | part, disk, partition: part };
      if (disk > MAX_EXTENDED_DISK || part > 255) return `'${name}' is beyond the extended vbd range`;
      return { name, number: EXTENDED | (disk << 8) | part, disk, partition: part };
    }
    if (kind === 'sd') {
      if (disk > 15 || part > 15) return `'${name}': sd disks go up to sdp and partitions up to 15; use xvd names beyond that`;
      return { name, number: (SD_MAJOR << 8) | (disk << 4) | part, disk, partition: part };
    }
    if (disk > 3 || part > 63) return `'${name}': hd disks go up to hdd and partitions up to 63`;
    const number = disk < 2 ? (HD_MAJOR_01 << 8) | (disk << 6) | part : (HD_MAJOR_23 << 8) | ((disk - 2) << 6) | part;
    return { name, number, disk, partition: part };
  }
  m = /^d([0-9]+)(?:p([0-9]+))?$/.exec(name);
  if (m) {
    const disk = Number(m[1]);
    const part = m[2] === undefined ? 0 : Number(m[2]);
    if (disk > MAX_EXTENDED_DISK || part > 255) return `'${name}' is beyond the extended vbd range`;
    if (disk <= 15 && part <= 15) return { name, number: (XVD_MAJOR << 8) | (disk << 4) | part, disk, partition: part };
    return { name, number: EXTENDED | (disk << 8) | part, disk, partition: part };
  }
  if (/^[0-9]+$/.test(name)) {
    const number = Number(name);
    if (number <= 0 || number > 0x7fffffff) return `device number ${name} is out of range`;
    return { name, number, ...decodeVdevNumber(number) };
  }
  return `'${name}' is not a virtual device name (${expected})`;
}

/** Disk and partition of a raw number (for display; unknown majors give disk = the number). */
export function decodeVdevNumber(n: number): { disk: number; partition: number } {
  if (n & EXTENDED) return { disk: (n >>> 8) & MAX_EXTENDED_DISK, partition: n & 0xff };
  const major = n >>> 8;
  if (major === XVD_MAJOR || major === SD_MAJOR) return { disk: (n >>> 4) & 15, partition: n & 15 };
  if (major === HD_MAJOR_01) return { disk: (n >>> 6) & 3, partition: n & 63 };
  if (major === HD_MAJOR_23) return { disk: 2 + ((n >>> 6) & 3), partition: n & 63 };
  return { disk: n, partition: 0 };
}
